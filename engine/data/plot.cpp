// The line-plot renderer: axis limits and 1-2-5 ticks, a float RGB canvas with alpha
// blending, anti-aliased strokes from distance-to-segment coverage, and a 5x7 bitmap font.
#include "ember/data/plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <limits>
#include <string_view>
#include <utility>

#include "ember/data/image.hpp"
#include "ember/error.hpp"
#include "engine/data/plot_axis.hpp"

namespace ember::data {
namespace {

using detail::Axis;
using detail::make_axis;

// Printable ASCII (32 to 126) in 5 columns by 7 rows: a byte a row, top row first, bit 4 the
// leftmost column. Drawn for this file, in the manner of the classic 5x7 LCD fonts.
constexpr int kGlyphWidth = 5, kGlyphHeight = 7, kAdvance = 6;
constexpr std::uint8_t kGlyphs[95][kGlyphHeight] = {
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},  // space
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04},  // !
    {0x0A, 0x0A, 0x0A, 0x00, 0x00, 0x00, 0x00},  // "
    {0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A},  // #
    {0x04, 0x0F, 0x14, 0x0E, 0x05, 0x1E, 0x04},  // $
    {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03},  // %
    {0x0C, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0D},  // &
    {0x0C, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00},  // '
    {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02},  // (
    {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08},  // )
    {0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00},  // *
    {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00},  // +
    {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08},  // ,
    {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00},  // -
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C},  // .
    {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00},  // /
    {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E},  // 0
    {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E},  // 1
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F},  // 2
    {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E},  // 3
    {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02},  // 4
    {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E},  // 5
    {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E},  // 6
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08},  // 7
    {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E},  // 8
    {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C},  // 9
    {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00},  // :
    {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x04, 0x08},  // ;
    {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02},  // <
    {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00},  // =
    {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08},  // >
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04},  // ?
    {0x0E, 0x11, 0x01, 0x0D, 0x15, 0x15, 0x0E},  // @
    {0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11},  // A
    {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E},  // B
    {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E},  // C
    {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C},  // D
    {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F},  // E
    {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10},  // F
    {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F},  // G
    {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11},  // H
    {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E},  // I
    {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C},  // J
    {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11},  // K
    {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F},  // L
    {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11},  // M
    {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11},  // N
    {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E},  // O
    {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10},  // P
    {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D},  // Q
    {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11},  // R
    {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E},  // S
    {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04},  // T
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E},  // U
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04},  // V
    {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A},  // W
    {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11},  // X
    {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04},  // Y
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F},  // Z
    {0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E},  // [
    {0x00, 0x10, 0x08, 0x04, 0x02, 0x01, 0x00},  // backslash
    {0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E},  // ]
    {0x04, 0x0A, 0x11, 0x00, 0x00, 0x00, 0x00},  // ^
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F},  // _
    {0x08, 0x04, 0x02, 0x00, 0x00, 0x00, 0x00},  // `
    {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F},  // a
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E},  // b
    {0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E},  // c
    {0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F},  // d
    {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E},  // e
    {0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08},  // f
    {0x00, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x0E},  // g
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11},  // h
    {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E},  // i
    {0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0C},  // j
    {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12},  // k
    {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E},  // l
    {0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11},  // m
    {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11},  // n
    {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E},  // o
    {0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10},  // p
    {0x00, 0x00, 0x0D, 0x13, 0x0F, 0x01, 0x01},  // q
    {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10},  // r
    {0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E},  // s
    {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06},  // t
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D},  // u
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04},  // v
    {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A},  // w
    {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11},  // x
    {0x00, 0x00, 0x11, 0x11, 0x0F, 0x01, 0x0E},  // y
    {0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F},  // z
    {0x02, 0x04, 0x04, 0x08, 0x04, 0x04, 0x02},  // {
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04},  // |
    {0x08, 0x04, 0x04, 0x02, 0x04, 0x04, 0x08},  // }
    {0x00, 0x00, 0x08, 0x15, 0x02, 0x00, 0x00},  // ~
};

constexpr int kMinWidth = 120, kMinHeight = 90, kMaxSide = 16384;
constexpr int kTitleScale = 2;  // the title's glyphs are drawn 2x2 pixels a dot
constexpr int kTickLength = 4, kGap = 4, kEdge = 6;
constexpr int kMinPlotArea = 32;  // the least width and height left for the data
constexpr Color kInk{0, 0, 0}, kGridColor{224, 224, 224};

// A rectangle of pixels [x0, x1) x [y0, y1).
struct Rect {
  int x0, y0, x1, y1;
  int width() const { return x1 - x0; }
  int height() const { return y1 - y0; }
};

// A point in pixel coordinates: pixel (i, j) spans [i, i + 1) x [j, j + 1).
struct Point {
  double x, y;
};

// The picture: float RGB in [0, 1], white to start with.
class Canvas {
 public:
  Canvas(int width, int height)
      : width_(width), height_(height), rgb_(static_cast<std::size_t>(width) * height * 3, 1.0f) {}

  // Blends `color` over pixel (x, y) with weight `alpha`; pixels off the canvas are skipped,
  // so text and marks may run over its edge.
  void blend(int x, int y, Color color, double alpha) {
    if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
    float* p = rgb_.data() + (static_cast<std::size_t>(y) * width_ + x) * 3;
    const auto a = static_cast<float>(alpha);
    const std::uint8_t channels[] = {color.r, color.g, color.b};
    for (int c = 0; c < 3; ++c) p[c] += a * (static_cast<float>(channels[c]) / 255.0f - p[c]);
  }
  void fill(const Rect& r, Color color) {
    for (int y = r.y0; y < r.y1; ++y) {
      for (int x = r.x0; x < r.x1; ++x) blend(x, y, color, 1.0);
    }
  }
  Tensor to_tensor() const {
    return from_vector(rgb_, {height_, width_, 3}, TensorOptions{}.with_dtype(kFloat32));
  }

 private:
  int width_, height_;
  std::vector<float> rgb_;
};

int text_width(std::string_view text, int scale) {
  return text.empty() ? 0 : static_cast<int>(text.size()) * kAdvance * scale - scale;
}

// Draws `text` with the top-left corner of its first glyph at (x, y); `upward`: turned a
// quarter turn anticlockwise, so that it reads from (x, y), its bottom-left corner, upwards.
// Characters outside printable ASCII are drawn as '?'.
void draw_text(Canvas& canvas, int x, int y, std::string_view text, int scale,
               bool upward = false) {
  for (std::size_t k = 0; k < text.size(); ++k) {
    const auto code = static_cast<unsigned char>(text[k]);
    const std::uint8_t* glyph = kGlyphs[(code >= 32 && code <= 126 ? code : '?') - 32];
    for (int row = 0; row < kGlyphHeight; ++row) {
      for (int col = 0; col < kGlyphWidth; ++col) {
        if (((glyph[row] >> (kGlyphWidth - 1 - col)) & 1) == 0) continue;
        const int along = (static_cast<int>(k) * kAdvance + col) * scale, across = row * scale;
        const Rect dot = upward
                             ? Rect{x + across, y - along - scale, x + across + scale, y - along}
                             : Rect{x + along, y + across, x + along + scale, y + across + scale};
        canvas.fill(dot, kInk);
      }
    }
  }
}

// How much one series covers each pixel of the plot area (0 to 1), blended once at the end,
// so that the segments of a polyline do not darken one another where they meet.
class Coverage {
 public:
  explicit Coverage(const Rect& area)
      : area_(area), cover_(static_cast<std::size_t>(area.width()) * area.height(), 0.0f) {}

  // The pixels whose centres lie within `radius` of the segment from a to b (a disc when they
  // are equal), with a one-pixel ramp at the edge for anti-aliasing.
  void capsule(Point a, Point b, double radius) {
    const Rect box = clip(static_cast<int>(std::floor(std::min(a.x, b.x) - radius - 1)),
                          static_cast<int>(std::floor(std::min(a.y, b.y) - radius - 1)),
                          static_cast<int>(std::ceil(std::max(a.x, b.x) + radius + 1)),
                          static_cast<int>(std::ceil(std::max(a.y, b.y) + radius + 1)));
    const double dx = b.x - a.x, dy = b.y - a.y, length2 = dx * dx + dy * dy;
    for (int y = box.y0; y < box.y1; ++y) {
      for (int x = box.x0; x < box.x1; ++x) {
        const double px = x + 0.5 - a.x, py = y + 0.5 - a.y;
        const double t = length2 > 0 ? std::clamp((px * dx + py * dy) / length2, 0.0, 1.0) : 0.0;
        const double distance = std::hypot(px - t * dx, py - t * dy);
        cover(x, y, std::clamp(radius + 0.5 - distance, 0.0, 1.0));
      }
    }
  }

  // The pixels whose centres lie inside the polygon (even-odd rule), by scanlines.
  void polygon(const std::vector<Point>& vertices) {
    std::vector<double> crossings;
    for (int y = area_.y0; y < area_.y1; ++y) {
      const double yc = y + 0.5;
      crossings.clear();
      for (std::size_t i = 0; i < vertices.size(); ++i) {
        const Point& p = vertices[i];
        const Point& q = vertices[(i + 1) % vertices.size()];
        if ((p.y <= yc) != (q.y <= yc))
          crossings.push_back(p.x + (yc - p.y) * (q.x - p.x) / (q.y - p.y));
      }
      std::sort(crossings.begin(), crossings.end());
      for (std::size_t i = 0; i + 1 < crossings.size(); i += 2) {
        // Pixels whose centre x + 0.5 lies in [crossings[i], crossings[i + 1]).
        const double from = std::max<double>(std::ceil(crossings[i] - 0.5), area_.x0);
        const double to = std::min<double>(std::ceil(crossings[i + 1] - 0.5), area_.x1);
        for (auto x = static_cast<int>(from); x < static_cast<int>(to); ++x) cover(x, y, 1.0);
      }
    }
  }

  void blend_onto(Canvas& canvas, Color color, double opacity) const {
    for (int y = area_.y0; y < area_.y1; ++y) {
      for (int x = area_.x0; x < area_.x1; ++x) {
        const float c = cover_[index(x, y)];
        if (c > 0) canvas.blend(x, y, color, c * opacity);
      }
    }
  }

 private:
  Rect clip(int x0, int y0, int x1, int y1) const {
    return {std::max(x0, area_.x0), std::max(y0, area_.y0), std::min(x1, area_.x1),
            std::min(y1, area_.y1)};
  }
  std::size_t index(int x, int y) const {
    return static_cast<std::size_t>(y - area_.y0) * area_.width() + (x - area_.x0);
  }
  void cover(int x, int y, double amount) {
    float& c = cover_[index(x, y)];
    c = std::max(c, static_cast<float>(amount));
  }

  Rect area_;
  std::vector<float> cover_;
};

// The widest of the labels, in pixels of the unscaled font.
int widest_label(const Axis& axis) {
  int widest = 0;
  for (const std::string& label : axis.labels) widest = std::max(widest, text_width(label, 1));
  return widest;
}

// Checks a series before it is added: spans of equal, nonzero length and finite values.
void check_series(const char* method, std::size_t index,
                  std::initializer_list<std::pair<const char*, std::span<const double>>> spans) {
  const auto& [first_name, first] = *spans.begin();
  for (const auto& [name, values] : spans) {
    EMBER_CHECK(values.size() == first.size(), method, ": series ", index, " has ", first.size(),
                " ", first_name, " values but ", values.size(), " ", name, " values");
  }
  EMBER_CHECK(!first.empty(), method, ": series ", index, " has no values");
  for (const auto& [name, values] : spans) {
    for (std::size_t i = 0; i < values.size(); ++i) {
      EMBER_CHECK(std::isfinite(values[i]), method, ": series ", index, " has a non-finite value ",
                  name, "[", i, "] = ", values[i]);
    }
  }
}

}  // namespace

namespace detail {

double nice_step(double raw) {
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (const double m : {1.0, 2.0, 5.0}) {
    if (m * power >= raw * (1 - 1e-9)) return m * power;
  }
  return 10 * power;
}

std::string tick_label(double v, double step, bool scientific) {
  if (v == 0) return "0";
  const int step_exponent = static_cast<int>(std::floor(std::log10(step) + 1e-9));
  char text[64];
  if (!scientific) {
    std::snprintf(text, sizeof text, "%.*f", std::max(0, -step_exponent), v);
    return text;
  }
  const int exponent = static_cast<int>(std::floor(std::log10(std::abs(v)) + 1e-9));
  std::snprintf(text, sizeof text, "%.*e", std::clamp(exponent - step_exponent, 0, 15), v);
  std::string s = text;
  const std::size_t e = s.find('e');
  std::size_t end = e;
  if (s.find('.') < e) {
    while (s[end - 1] == '0') --end;
    if (s[end - 1] == '.') --end;
  }
  return s.substr(0, end) + s.substr(e);
}

Axis make_axis(const char* name, double lo, double hi, int pixels, int min_spacing) {
  Axis axis;
  const double magnitude = std::max(std::abs(lo), std::abs(hi));
  if (hi - lo <= magnitude * 1e-9) {
    const double middle = lo + (hi - lo) / 2, half = magnitude > 0 ? magnitude * 0.1 : 1.0;
    axis.lo = middle - half;
    axis.hi = middle + half;
  } else {
    const double margin = (hi - lo) * 0.05;
    axis.lo = lo - margin;
    axis.hi = hi + margin;
  }
  EMBER_CHECK(std::isfinite(axis.hi - axis.lo), "Plot::render: the ", name, " values span ", lo,
              " to ", hi, ", too wide a range to draw");
  const double step = nice_step((axis.hi - axis.lo) * min_spacing / pixels);
  // The tolerance keeps a tick that lands on the limit but for rounding (33 * 0.1 > 3.3).
  for (double k = std::ceil(axis.lo / step - 1e-9); k * step <= axis.hi + step * 1e-9; ++k) {
    axis.ticks.push_back(k * step);
  }
  double largest = 0;
  for (const double t : axis.ticks) largest = std::max(largest, std::abs(t));
  const bool scientific = largest >= 1e5 || step < 1e-3;
  for (const double t : axis.ticks) axis.labels.push_back(tick_label(t, step, scientific));
  return axis;
}

}  // namespace detail

Plot::Plot(PlotOptions options) : options_(std::move(options)) {
  EMBER_CHECK(options_.width >= kMinWidth && options_.width <= kMaxSide, "Plot: width ",
              options_.width, " is outside ", kMinWidth, " to ", kMaxSide, " pixels");
  EMBER_CHECK(options_.height >= kMinHeight && options_.height <= kMaxSide, "Plot: height ",
              options_.height, " is outside ", kMinHeight, " to ", kMaxSide, " pixels");
}

Plot& Plot::line(std::span<const double> x, std::span<const double> y, Color color, double width) {
  check_series("Plot::line", series_.size(), {{"x", x}, {"y", y}});
  EMBER_CHECK(std::isfinite(width) && width > 0, "Plot::line: series ", series_.size(),
              " has width ", width, "; it must be positive");
  series_.push_back({Kind::Line, {x.begin(), x.end()}, {y.begin(), y.end()}, {}, color, width});
  return *this;
}

Plot& Plot::points(std::span<const double> x, std::span<const double> y, Color color,
                   double radius) {
  check_series("Plot::points", series_.size(), {{"x", x}, {"y", y}});
  EMBER_CHECK(std::isfinite(radius) && radius > 0, "Plot::points: series ", series_.size(),
              " has radius ", radius, "; it must be positive");
  series_.push_back({Kind::Points, {x.begin(), x.end()}, {y.begin(), y.end()}, {}, color, radius});
  return *this;
}

Plot& Plot::band(std::span<const double> x, std::span<const double> lo, std::span<const double> hi,
                 Color color, double opacity) {
  check_series("Plot::band", series_.size(), {{"x", x}, {"lo", lo}, {"hi", hi}});
  EMBER_CHECK(opacity >= 0 && opacity <= 1, "Plot::band: series ", series_.size(), " has opacity ",
              opacity, "; it must be in [0, 1]");
  series_.push_back({Kind::Band,
                     {x.begin(), x.end()},
                     {lo.begin(), lo.end()},
                     {hi.begin(), hi.end()},
                     color,
                     opacity});
  return *this;
}

Tensor Plot::render() const {
  EMBER_CHECK(!series_.empty(),
              "Plot::render: the plot has no series (add one with line, points "
              "or band)");
  constexpr double kInf = std::numeric_limits<double>::infinity();
  double x_lo = kInf, x_hi = -kInf, y_lo = kInf, y_hi = -kInf;
  for (const Series& s : series_) {
    const auto [x_min, x_max] = std::minmax_element(s.x.begin(), s.x.end());
    x_lo = std::min(x_lo, *x_min);
    x_hi = std::max(x_hi, *x_max);
    for (const std::vector<double>* ys : {&s.y, &s.y2}) {
      for (const double v : *ys) {
        y_lo = std::min(y_lo, v);
        y_hi = std::max(y_hi, v);
      }
    }
  }

  // The layout, from the outside in: the title above, the x tick labels and label below, the
  // y label and tick labels on the left. The y ticks come first, as their labels' width sets
  // the room left for the x axis.
  const int width = options_.width, height = options_.height;
  const int top =
      options_.title.empty() ? 2 * kEdge : kEdge + kGlyphHeight * kTitleScale + 2 * kGap;
  const int bottom = height - kEdge - kTickLength - kGap - kGlyphHeight -
                     (options_.x_label.empty() ? 0 : kGap + kGlyphHeight);
  EMBER_CHECK(bottom - top >= kMinPlotArea, "Plot::render: a height of ", height, " pixels leaves ",
              bottom - top, " for the data below the title and above the labels");
  const Axis y_axis = make_axis("y", y_lo, y_hi, bottom - top, 30);
  const int left = kEdge + (options_.y_label.empty() ? 0 : kGlyphHeight + kGap) +
                   widest_label(y_axis) + kGap + kTickLength;
  const int right = width - 4 * kEdge;
  EMBER_CHECK(right - left >= kMinPlotArea, "Plot::render: a width of ", width, " pixels leaves ",
              right - left, " for the data beside the y tick labels");
  // Ticks 60 pixels apart, or further where the labels are wider.
  Axis x_axis = make_axis("x", x_lo, x_hi, right - left, 60);
  for (int spacing = 60; widest_label(x_axis) + 3 * kGap > spacing;) {
    spacing = widest_label(x_axis) + 3 * kGap;
    x_axis = make_axis("x", x_lo, x_hi, right - left, spacing);
  }
  const Rect area{left, top, right, bottom};
  auto to_pixels = [&](double x, double y) {
    return Point{x_axis.map(x, left, right), y_axis.map(y, bottom, top)};
  };
  // The pixel column or row of a tick; one at the far edge goes just inside it.
  auto column_of = [&](double t) {
    return std::min(static_cast<int>(std::floor(x_axis.map(t, left, right))), right - 1);
  };
  auto row_of = [&](double t) {
    return std::min(static_cast<int>(std::floor(y_axis.map(t, bottom, top))), bottom - 1);
  };

  Canvas canvas(width, height);
  for (const double t : x_axis.ticks) {
    canvas.fill({column_of(t), top, column_of(t) + 1, bottom}, kGridColor);
  }
  for (const double t : y_axis.ticks) {
    canvas.fill({left, row_of(t), right, row_of(t) + 1}, kGridColor);
  }

  for (const Series& s : series_) {
    Coverage coverage(area);
    const std::size_t n = s.x.size();
    switch (s.kind) {
      case Kind::Line: {
        // The first point alone too, so that a one-point line still shows.
        Point from = to_pixels(s.x[0], s.y[0]);
        coverage.capsule(from, from, s.size / 2);
        for (std::size_t i = 1; i < n; ++i) {
          const Point to = to_pixels(s.x[i], s.y[i]);
          coverage.capsule(from, to, s.size / 2);
          from = to;
        }
        break;
      }
      case Kind::Points:
        for (std::size_t i = 0; i < n; ++i) {
          const Point p = to_pixels(s.x[i], s.y[i]);
          coverage.capsule(p, p, s.size);
        }
        break;
      case Kind::Band: {
        // Along the upper curve, then back along the lower one.
        std::vector<Point> outline;
        for (std::size_t i = 0; i < n; ++i) outline.push_back(to_pixels(s.x[i], s.y2[i]));
        for (std::size_t i = n; i-- > 0;) outline.push_back(to_pixels(s.x[i], s.y[i]));
        coverage.polygon(outline);
        break;
      }
    }
    coverage.blend_onto(canvas, s.color, s.kind == Kind::Band ? s.size : 1.0);
  }

  // The axes box around the plot area, the ticks outside it and their labels.
  canvas.fill({left - 1, top - 1, right + 1, top}, kInk);
  canvas.fill({left - 1, bottom, right + 1, bottom + 1}, kInk);
  canvas.fill({left - 1, top, left, bottom}, kInk);
  canvas.fill({right, top, right + 1, bottom}, kInk);
  for (std::size_t i = 0; i < x_axis.ticks.size(); ++i) {
    const int column = column_of(x_axis.ticks[i]);
    canvas.fill({column, bottom + 1, column + 1, bottom + 1 + kTickLength}, kInk);
    draw_text(canvas, column - text_width(x_axis.labels[i], 1) / 2, bottom + 1 + kTickLength + kGap,
              x_axis.labels[i], 1);
  }
  for (std::size_t i = 0; i < y_axis.ticks.size(); ++i) {
    const int row = row_of(y_axis.ticks[i]);
    canvas.fill({left - 1 - kTickLength, row, left - 1, row + 1}, kInk);
    draw_text(canvas, left - 1 - kTickLength - kGap - text_width(y_axis.labels[i], 1),
              row - kGlyphHeight / 2, y_axis.labels[i], 1);
  }

  // The title centred over the plot area, the x label under it, the y label beside it.
  // A title too long for the picture at double size is drawn at single size.
  const int title_scale =
      text_width(options_.title, kTitleScale) <= width - 2 * kEdge ? kTitleScale : 1;
  const int title_width = text_width(options_.title, title_scale);
  draw_text(canvas, std::max(kEdge, left + (right - left - title_width) / 2), kEdge, options_.title,
            title_scale);
  draw_text(canvas, left + (right - left - text_width(options_.x_label, 1)) / 2,
            height - kEdge - kGlyphHeight, options_.x_label, 1);
  draw_text(canvas, kEdge, top + (bottom - top + text_width(options_.y_label, 1)) / 2,
            options_.y_label, 1, /*upward=*/true);
  return canvas.to_tensor();
}

void Plot::write_png(const std::filesystem::path& path) const {
  PngOptions png;
  if (!options_.title.empty()) png.text.emplace_back("Title", options_.title);
  data::write_png(path, render(), png);
}

}  // namespace ember::data
