// Traces: cached log-densities, lookups and the format_shapes table.
#include "test_util.hpp"

namespace ember {
namespace {

using test::f64;

TEST(TraceTest, LogProbIsComputedOnceAndCached) {
  clear_param_store();
  auto prog = [] {
    auto p = plate("p", 3);
    sample("a", dist::Normal(zeros({1}, f64()), 2.0));
  };
  const Trace tr = handlers::trace(prog).get_trace();
  const Site& a = tr.at("a");
  EXPECT_FALSE(a.has_log_prob());
  const Tensor& lp = a.log_prob();
  EXPECT_TRUE(a.has_log_prob());
  EXPECT_EQ(&a.log_prob(), &lp);
  EXPECT_EQ(a.log_prob().data_ptr(), lp.data_ptr());
  test::expect_close(lp, dist::Normal(zeros({3}, f64()), 2.0).log_prob(a.value), 1e-12, 0);
  EXPECT_NEAR(a.log_prob_sum().item(), sum(lp).item(), 1e-12);
}

TEST(TraceTest, LookupsAndErrorsNameTheSite) {
  auto prog = [] { sample("a", dist::Normal(0.0, 1.0)); };
  Trace tr = handlers::trace(prog).get_trace();
  EXPECT_TRUE(tr.contains("a"));
  EXPECT_EQ(tr.find("b"), nullptr);
  EMBER_EXPECT_THROW_WITH(tr.at("b"), ValueError, "no site named 'b'");
  // A value outside the support fails at log_prob with the site named.
  auto bad = [] { sample("rate", dist::Exponential(1.0), scalar_tensor(-1.0)); };
  const Trace bt = handlers::trace(bad).get_trace();
  EMBER_EXPECT_THROW_WITH(bt.at("rate").log_prob(), ValueError, "site 'rate'", "support");
  param("w", 1.0);
  const Trace pt = handlers::trace([] { param("w", 1.0); }).get_trace();
  EMBER_EXPECT_THROW_WITH(pt.at("w").log_prob(), ValueError, "site 'w'", "param");
}

// Small traces are searched in order, larger ones through an index built as they grow: every
// site is found by name at every size, in order of recording, and a repeated name is an
// error on either side of the switch.
TEST(TraceTest, LookupsHoldAtEverySize) {
  for (int n : {1, 15, 16, 17, 40}) {
    SCOPED_TRACE(n);
    auto prog = [n] {
      for (int i = 0; i < n; ++i) sample("x" + std::to_string(i), dist::Normal(0.0, 1.0));
    };
    const Trace tr = handlers::trace(prog).get_trace();
    ASSERT_EQ(tr.size(), static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      const std::string name = "x" + std::to_string(i);
      ASSERT_TRUE(tr.contains(name)) << name;
      EXPECT_EQ(tr.find(name), &tr.sites()[i]) << name;
      EXPECT_EQ(tr.at(name).name, name);
    }
    EXPECT_FALSE(tr.contains("x" + std::to_string(n)));
    auto twice = [n] {
      for (int i = 0; i < n; ++i) sample("x" + std::to_string(i), dist::Normal(0.0, 1.0));
      sample("x" + std::to_string(n - 1), dist::Normal(0.0, 1.0));
    };
    EMBER_EXPECT_THROW_WITH(handlers::trace(twice).get_trace(), ValueError,
                            "two sites named 'x" + std::to_string(n - 1) + "'");
  }
}

TEST(TraceTest, FormatShapesPrintsTheTable) {
  clear_param_store();
  auto prog = [] {
    param("locs", zeros({2}, f64()));
    auto x_axis = plate("x_axis", 3, {.dim = -2});
    auto y_axis = plate("y_axis", 2, {.dim = -3});
    sample("xy", dist::Normal(0.0, 1.0));
    sample("z", dist::Normal(0.0, 1.0).expand({5}).to_event(1));
  };
  const Trace tr = handlers::trace(prog).get_trace();
  tr.compute_log_prob();
  const std::string table = tr.format_shapes();
  // Every line of the expected table, as Pyro prints it (batch dims | event dims).
  const std::vector<std::string> lines = {"Trace Shapes:",    "Plates:",          "x_axis size 3",
                                          "y_axis size 2",    "Param Sites:",     "locs",
                                          "Sample Sites:",    "xy dist 2 3 1 |",  "value 2 3 1 |",
                                          "log_prob 2 3 1 |", "z dist 2 3 1 | 5", "value 2 3 1 | 5",
                                          "log_prob 2 3 1 |"};
  std::istringstream in(table);
  std::vector<std::string> got;
  for (std::string line; std::getline(in, line);) {
    // Collapse the padding so the test checks content, not column widths.
    std::string squeezed;
    std::istringstream words(line);
    for (std::string w; words >> w;) squeezed += (squeezed.empty() ? "" : " ") + w;
    got.push_back(squeezed);
  }
  std::vector<std::string> expect = lines;
  expect[5] = "locs 2";
  EXPECT_EQ(got, expect) << table;
}

}  // namespace
}  // namespace ember
