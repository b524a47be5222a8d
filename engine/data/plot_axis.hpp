// The axes of Plot: limits around the data and ticks at 1, 2 or 5 times a power of ten with
// their labels. Apart from the drawing so that the tests can check the numbers directly.
#pragma once

#include <string>
#include <vector>

namespace ember::data::detail {

struct Axis {
  double lo = 0, hi = 1;
  std::vector<double> ticks;
  std::vector<std::string> labels;

  // The pixel coordinate of `v` on an axis drawn from `from` (at lo) to `to` (at hi).
  double map(double v, double from, double to) const {
    return from + (v - lo) / (hi - lo) * (to - from);
  }
};

// The least of 1, 2 and 5 times a power of ten that is at least `raw` (> 0).
double nice_step(double raw);

// A tick's label: fixed-point with the decimals the step needs ("0.5", "-120"), or, on axes
// of large or small values, scientific without trailing zeros ("1e+04", "2.5e-05").
std::string tick_label(double v, double step, bool scientific);

// The axis over data from lo to hi, widened by 5% on each side (a constant gets a range of
// 10% of its magnitude, or 1, around it), with ticks at least `min_spacing` of `pixels`
// apart. `name` ("x", "y") is for the message of a range too wide to draw.
Axis make_axis(const char* name, double lo, double hi, int pixels, int min_spacing);

}  // namespace ember::data::detail
