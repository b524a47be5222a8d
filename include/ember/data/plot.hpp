// A small line-plot renderer for examples: loss curves, data points, regression bands with
// their uncertainty, drawn into an RGB image tensor or a PNG file without a plotting library.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "ember/tensor.hpp"

namespace ember::data {

struct Color {
  std::uint8_t r = 0, g = 0, b = 0;
};

struct PlotOptions {
  // The image's size in pixels: at least 120 x 90 (and at most 16384 on a side).
  int width = 640;
  int height = 400;
  // Drawn above the plot, below it and beside the y axis; empty ones leave their room to it.
  std::string title, x_label, y_label;
};

// Series are drawn in the order they were added, over light grid lines and inside an axes
// box whose limits hold every series' values with a small margin; ticks fall on 1, 2 or 5
// times a power of ten. Every series is checked when it is added: its spans must have equal
// lengths, at least one element, and finite values.
class Plot {
 public:
  explicit Plot(PlotOptions options = {});

  // A polyline through (x[i], y[i]) in the given order, anti-aliased, `width` pixels thick.
  Plot& line(std::span<const double> x, std::span<const double> y, Color color = {31, 119, 180},
             double width = 2.0);
  // A filled disc of `radius` pixels at each (x[i], y[i]).
  Plot& points(std::span<const double> x, std::span<const double> y, Color color = {0, 0, 0},
               double radius = 2.5);
  // The region between the curves (x, lo) and (x, hi), filled with `color` at `opacity`
  // (0 to 1) over what is drawn before it.
  Plot& band(std::span<const double> x, std::span<const double> lo, std::span<const double> hi,
             Color color = {31, 119, 180}, double opacity = 0.25);

  // The picture as a (height, width, 3) float32 CPU tensor of values in [0, 1].
  Tensor render() const;
  // render(), written by data::write_png with the title (if any) in a "Title" tEXt chunk.
  void write_png(const std::filesystem::path& path) const;

 private:
  enum class Kind : std::uint8_t { Line, Points, Band };
  struct Series {
    Kind kind;
    std::vector<double> x, y, y2;  // y2: a band's upper curve
    Color color;
    double size;  // a line's width, a point's radius, a band's opacity
  };

  PlotOptions options_;
  std::vector<Series> series_;
};

}  // namespace ember::data
