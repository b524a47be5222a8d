// Plot: rendered pictures checked where the data land (found from the axes box and the 5%
// margins), band blending against the same plot without the band, text in its margins, the
// ticks and their labels, and the faults of bad series.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <limits>

#include "engine/data/plot_axis.hpp"
#include "engine/data/png_test_util.hpp"
#include "test_util.hpp"

namespace ember::test {
namespace {

using data::Color;
using data::Plot;
using data::PlotOptions;

using Values = std::vector<double>;

// A rendered picture's pixels, read on the host.
class Picture {
 public:
  explicit Picture(const Tensor& image)
      : height_(static_cast<int>(image.size(0))),
        width_(static_cast<int>(image.size(1))),
        rgb_(image.to_vector<float>()) {}

  int height() const { return height_; }
  int width() const { return width_; }
  std::array<float, 3> at(int row, int column) const {
    const float* p = rgb_.data() + (static_cast<std::size_t>(row) * width_ + column) * 3;
    return {p[0], p[1], p[2]};
  }
  bool is(int row, int column, Color c) const {
    const auto p = at(row, column);
    return std::abs(p[0] - c.r / 255.0f) < 1e-6f && std::abs(p[1] - c.g / 255.0f) < 1e-6f &&
           std::abs(p[2] - c.b / 255.0f) < 1e-6f;
  }
  // Black pixels (the axes, ticks and text) in rows [r0, r1) and columns [c0, c1).
  int count_black(int r0, int r1, int c0, int c1) const {
    int n = 0;
    for (int r = r0; r < r1; ++r) {
      for (int c = c0; c < c1; ++c) n += is(r, c, {0, 0, 0});
    }
    return n;
  }

 private:
  int height_, width_;
  std::vector<float> rgb_;
};

// The plot area [left, right) x [top, bottom) inside the axes box, whose lines are the rows
// and columns of the picture that are black over most of their length.
struct Frame {
  int left = -1, top = -1, right = -1, bottom = -1;
};

Frame find_frame(const Picture& p) {
  Frame f;
  for (int r = 0; r < p.height(); ++r) {
    if (p.count_black(r, r + 1, 0, p.width()) <= p.width() / 2) continue;
    if (f.top < 0) f.top = r + 1;
    f.bottom = r;
  }
  for (int c = 0; c < p.width(); ++c) {
    if (p.count_black(f.top, f.bottom, c, c + 1) <= (f.bottom - f.top) / 2) continue;
    if (f.left < 0) f.left = c + 1;
    f.right = c;
  }
  EXPECT_TRUE(f.top > 0 && f.bottom > f.top && f.left > 0 && f.right > f.left) << "no axes box";
  return f;
}

// Where data points land: the data's range widened by 5% a side maps onto the plot area.
struct Mapping {
  Frame f;
  double x_lo, x_hi, y_lo, y_hi;

  Mapping(const Picture& p, double x0, double x1, double y0, double y1)
      : f(find_frame(p)),
        x_lo(x0 - 0.05 * (x1 - x0)),
        x_hi(x1 + 0.05 * (x1 - x0)),
        y_lo(y0 - 0.05 * (y1 - y0)),
        y_hi(y1 + 0.05 * (y1 - y0)) {}
  int column(double x) const {
    return static_cast<int>(std::floor(f.left + (x - x_lo) / (x_hi - x_lo) * (f.right - f.left)));
  }
  int row(double y) const {
    return static_cast<int>(std::floor(f.bottom - (y - y_lo) / (y_hi - y_lo) * (f.bottom - f.top)));
  }
};

TEST(Plot, RendersTheRequestedSizeOnWhite) {
  const Values x{0, 1, 2, 3}, y{0, 2, 1, 3};
  const Tensor image = Plot({.width = 300, .height = 200}).line(x, y).render();
  ASSERT_EQ(image.shape(), Shape({200, 300, 3}));
  EXPECT_EQ(image.dtype(), kFloat32);
  EXPECT_TRUE(image.device().is_cpu());
  EXPECT_GE(min(image).item(), 0.0);
  EXPECT_LE(max(image).item(), 1.0);
  const Picture p(image);
  const Color white{255, 255, 255};
  for (const auto& [r, c] : {std::pair{0, 0}, {0, 299}, {199, 0}, {199, 299}}) {
    EXPECT_TRUE(p.is(r, c, white)) << r << ", " << c;
  }
  // The plot area is mostly white: the line and grid lines cover little of it.
  const Frame f = find_frame(p);
  int white_pixels = 0;
  for (int r = f.top; r < f.bottom; ++r) {
    for (int c = f.left; c < f.right; ++c) white_pixels += p.is(r, c, white);
  }
  EXPECT_GT(white_pixels, (f.bottom - f.top) * (f.right - f.left) * 3 / 4);
}

TEST(Plot, ALinePassesThroughItsMappedPointsAntiAliased) {
  const Values x{0, 1, 2, 3}, y{0, 2, 1, 3};
  const Color red{200, 30, 30};
  const Picture p(Plot().line(x, y, red, 3.0).render());
  const Mapping m(p, 0, 3, 0, 3);
  for (std::size_t i = 0; i < x.size(); ++i) {
    EXPECT_TRUE(p.is(m.row(y[i]), m.column(x[i]), red)) << "point " << i;
    if (i + 1 < x.size()) {
      const double mx = (x[i] + x[i + 1]) / 2, my = (y[i] + y[i + 1]) / 2;
      EXPECT_TRUE(p.is(m.row(my), m.column(mx), red)) << "the middle of segment " << i;
    }
  }
  // Away from the line (above the peak at (1, 2)) the line's colour is absent.
  EXPECT_GT(p.at(m.row(2) - 12, m.column(1))[1], 0.8f);
  // Its edges blend into the background: pixels between red and white.
  int partial = 0;
  for (int r = m.f.top; r < m.f.bottom; ++r) {
    for (int c = m.f.left; c < m.f.right; ++c) {
      const auto px = p.at(r, c);
      partial += px[1] > 0.15f && px[1] < 0.8f && px[0] > px[1] + 0.05f;
    }
  }
  EXPECT_GT(partial, 20);
}

TEST(Plot, ABandBlendsItsColourOverWhatIsBehind) {
  const Values x{0, 4}, lo{0, 0}, hi{1, 3};
  const Color blue{0, 0, 255};
  // The same plot with an invisible band: the same limits, nothing drawn.
  const Picture base(Plot().band(x, lo, hi, blue, 0.0).render());
  const Picture banded(Plot().band(x, lo, hi, blue, 0.4).render());
  const Mapping m(base, 0, 4, 0, 3);
  for (const auto& [px, py] : {std::pair{2.0, 0.5}, {3.5, 2.0}, {0.5, 0.2}, {1.0, 1.3}}) {
    const auto under = base.at(m.row(py), m.column(px));
    const auto over = banded.at(m.row(py), m.column(px));
    const float colour[] = {0.0f, 0.0f, 1.0f};
    for (int c = 0; c < 3; ++c) {
      EXPECT_NEAR(over[c], 0.6f * under[c] + 0.4f * colour[c], 1e-5) << px << ", " << py;
    }
  }
  for (const auto& [px, py] : {std::pair{0.5, 2.5}, {1.0, 2.8}, {3.0, 2.9}}) {
    EXPECT_EQ(banded.at(m.row(py), m.column(px)), base.at(m.row(py), m.column(px)))
        << "outside the band at " << px << ", " << py;
  }
}

TEST(Plot, PointsAreFilledDiscsAtTheirMappedLocations) {
  const Values x{0, 1, 2}, y{0, 1, 4};
  const Color green{0, 160, 0};
  const Picture p(Plot().points(x, y, green, 4.0).render());
  const Mapping m(p, 0, 2, 0, 4);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const int r = m.row(y[i]), c = m.column(x[i]);
    for (const auto& [dr, dc] : {std::pair{0, 0}, {2, 0}, {-2, 0}, {0, 2}, {0, -2}}) {
      EXPECT_TRUE(p.is(r + dr, c + dc, green)) << "point " << i << " + " << dr << ", " << dc;
    }
    EXPECT_GT(p.at(r, c + 8)[0], 0.5f) << "point " << i << " reaches 8 pixels";
  }
}

TEST(Plot, TheTitleAndLabelsAreDrawnAsText) {
  const Values x{0, 10}, y{0, 1};
  auto render = [&](const PlotOptions& options) {
    return Picture(Plot(options).line(x, y).render());
  };
  const Picture plain = render({});
  const Frame fp = find_frame(plain);
  // A 4-letter word has between 5 and 35 dots a glyph.
  auto expect_word = [](int dots, int pixels_a_dot) {
    EXPECT_GT(dots, 4 * 5 * pixels_a_dot);
    EXPECT_LT(dots, 4 * 35 * pixels_a_dot);
  };

  // The title, at double size, above the axes box; nothing is there without it.
  const Picture titled = render({.title = "Loss"});
  const Frame ft = find_frame(titled);
  EXPECT_EQ(plain.count_black(0, fp.top - 1, 0, plain.width()), 0);
  expect_word(titled.count_black(0, ft.top - 1, 0, titled.width()), 4);

  // The x label below the tick labels; the y label left of them.
  const Picture x_labelled = render({.x_label = "step"});
  const Frame fx = find_frame(x_labelled);
  expect_word(x_labelled.count_black(fx.bottom + 3, x_labelled.height(), 0, x_labelled.width()) -
                  plain.count_black(fp.bottom + 3, plain.height(), 0, plain.width()),
              1);
  const Picture y_labelled = render({.y_label = "loss"});
  const Frame fy = find_frame(y_labelled);
  expect_word(y_labelled.count_black(fy.top, fy.bottom, 0, fy.left - 1) -
                  plain.count_black(fp.top, fp.bottom, 0, fp.left - 1),
              1);
}

TEST(Plot, AConstantSeriesStillRenders) {
  const Values x{0, 1, 2}, y{5, 5, 5};
  const Color red{255, 0, 0};
  const Picture p(Plot().line(x, y, red).render());
  const Frame f = find_frame(p);
  // A constant gets a range around it: the line runs through the middle of the plot area.
  const int middle = (f.top + f.bottom) / 2;
  EXPECT_TRUE(p.is(middle, (f.left + f.right) / 2, red));
  EXPECT_NO_THROW(Plot().line(Values{0, 0}, Values{0, 0}).render());
  EXPECT_NO_THROW(Plot().points(Values{3}, Values{-7}).render());
}

TEST(Plot, WritePngWritesTheRenderWithItsTitle) {
  TempDir dir;
  const Values x{0, 1, 2}, y{3, 1, 2};
  const Plot plot({.width = 200, .height = 150, .title = "ELBO loss"});
  Plot with_line = plot;  // a copy: `plot` stays without series
  with_line.line(x, y).write_png(dir.file("p.png"));
  const DecodedPng png = decode_png(dir.file("p.png"));
  EXPECT_EQ(png.width, 200u);
  EXPECT_EQ(png.height, 150u);
  EXPECT_EQ(png.color_type, 2);
  EXPECT_EQ(png.text, (std::vector<std::pair<std::string, std::string>>{{"Title", "ELBO loss"}}));
  const std::vector<double> rendered = with_line.render().to_vector<double>();
  ASSERT_EQ(png.samples.size(), rendered.size());
  for (std::size_t i = 0; i < rendered.size(); ++i) {
    ASSERT_EQ(png.samples[i], std::lround(rendered[i] * 255.0)) << "sample " << i;
  }
  EMBER_EXPECT_THROW_WITH(plot.write_png(dir.file("q.png")), ValueError, "no series");

  Plot({.width = 200, .height = 150}).line(x, y).write_png(dir.file("untitled.png"));
  EXPECT_TRUE(decode_png(dir.file("untitled.png")).text.empty());
}

TEST(Plot, BadSeriesAndSizesSayWhatIsWrong) {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const Values three{0, 1, 2}, two{0, 1}, none, with_nan{0, kNaN, 2};
  Plot plot;
  EMBER_EXPECT_THROW_WITH(plot.line(three, two), ValueError, "Plot::line",
                          "series 0 has 3 x values but 2 y values");
  plot.line(three, three);
  EMBER_EXPECT_THROW_WITH(plot.band(three, three, with_nan), ValueError, "Plot::band",
                          "series 1 has a non-finite value hi[1] = nan");
  EMBER_EXPECT_THROW_WITH(plot.band(three, two, three), ValueError,
                          "series 1 has 3 x values but 2 lo values");
  EMBER_EXPECT_THROW_WITH(plot.points(none, none), ValueError, "Plot::points",
                          "series 1 has no values");
  EMBER_EXPECT_THROW_WITH(plot.points(Values{0, kInf}, two), ValueError,
                          "series 1 has a non-finite value x[1] = inf");
  EMBER_EXPECT_THROW_WITH(plot.line(three, three, {}, 0.0), ValueError, "Plot::line", "width 0");
  EMBER_EXPECT_THROW_WITH(plot.points(three, three, {}, -1.0), ValueError, "Plot::points",
                          "radius -1");
  EMBER_EXPECT_THROW_WITH(plot.band(three, three, three, {}, 1.5), ValueError, "Plot::band",
                          "opacity 1.5");
  // The refused series were not added: the plot renders its one line.
  EXPECT_NO_THROW(plot.render());

  EMBER_EXPECT_THROW_WITH(Plot().render(), ValueError, "Plot::render", "no series");
  EMBER_EXPECT_THROW_WITH(Plot({.width = 50}), ValueError, "Plot: width 50");
  EMBER_EXPECT_THROW_WITH(Plot({.height = 20000}), ValueError, "Plot: height 20000");
  // Big enough to make, too small for a title, tick labels, an x label and the data.
  EMBER_EXPECT_THROW_WITH(
      Plot({.width = 120, .height = 90, .title = "T", .x_label = "x"}).line(three, three).render(),
      ValueError, "Plot::render", "a height of 90 pixels leaves 30");
}

using data::detail::make_axis;
using data::detail::nice_step;
using data::detail::tick_label;

TEST(PlotAxis, StepsAreOneTwoOrFiveTimesAPowerOfTen) {
  EXPECT_DOUBLE_EQ(nice_step(0.3), 0.5);
  EXPECT_DOUBLE_EQ(nice_step(1.1), 2.0);
  EXPECT_DOUBLE_EQ(nice_step(2.0), 2.0);
  EXPECT_DOUBLE_EQ(nice_step(4.9), 5.0);
  EXPECT_DOUBLE_EQ(nice_step(7.0), 10.0);
  EXPECT_DOUBLE_EQ(nice_step(1000.0), 1000.0);
  EXPECT_DOUBLE_EQ(nice_step(0.00013), 0.0002);
}

TEST(PlotAxis, TickLabelsAreCompact) {
  EXPECT_EQ(tick_label(0.0, 0.5, false), "0");
  EXPECT_EQ(tick_label(0.5, 0.5, false), "0.5");
  EXPECT_EQ(tick_label(-120.0, 20.0, false), "-120");
  EXPECT_EQ(tick_label(3 * 0.1, 0.1, false), "0.3");
  EXPECT_EQ(tick_label(0.25, 0.05, false), "0.25");
  EXPECT_EQ(tick_label(1e4, 1e4, true), "1e+04");
  EXPECT_EQ(tick_label(1.5e5, 5e4, true), "1.5e+05");
  EXPECT_EQ(tick_label(2e5, 5e4, true), "2e+05");
  EXPECT_EQ(tick_label(2.5e-5, 5e-6, true), "2.5e-05");
  EXPECT_EQ(tick_label(-3e-4, 1e-4, true), "-3e-04");
}

TEST(PlotAxis, LimitsHoldTheDataWithAMarginAndTicksFitThePixels) {
  const auto a = make_axis("x", 0, 10, 500, 60);
  EXPECT_DOUBLE_EQ(a.lo, -0.5);
  EXPECT_DOUBLE_EQ(a.hi, 10.5);
  EXPECT_EQ(a.ticks, (Values{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(a.labels, (std::vector<std::string>{"0", "2", "4", "6", "8", "10"}));
  EXPECT_DOUBLE_EQ(a.map(0, 100, 650), 125.0);

  // A constant gets 10% of its magnitude on each side, zero gets 1.
  const auto c = make_axis("y", 5, 5, 200, 30);
  EXPECT_DOUBLE_EQ(c.lo, 4.5);
  EXPECT_DOUBLE_EQ(c.hi, 5.5);
  EXPECT_EQ(c.labels, (std::vector<std::string>{"4.6", "4.8", "5.0", "5.2", "5.4"}));
  const auto z = make_axis("y", 0, 0, 200, 30);
  EXPECT_DOUBLE_EQ(z.lo, -1.0);
  EXPECT_DOUBLE_EQ(z.hi, 1.0);

  // Large values are labelled in scientific notation, every tick alike.
  const auto big = make_axis("y", 0, 3e5, 300, 30);
  EXPECT_EQ(big.labels, (std::vector<std::string>{"0", "5e+04", "1e+05", "1.5e+05", "2e+05",
                                                  "2.5e+05", "3e+05"}));
  EMBER_EXPECT_THROW_WITH(make_axis("y", -1e308, 1e308, 300, 30), ValueError, "the y values span",
                          "too wide a range");
}

}  // namespace
}  // namespace ember::test
