// sample, param, plate (the shape rules of Pyro's tensor-shapes tutorial), subsampling,
// sequential plates, factor, deterministic, module and markov.
#include <map>
#include <set>

#include "test_util.hpp"

namespace ember {
namespace {

using test::f64;

class PrimitivesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_param_store();
    set_rng_seed(7);
  }
};

TEST_F(PrimitivesTest, SampleOutsideInferenceDraws) {
  set_rng_seed(3);
  const Tensor a = sample("x", dist::Normal(zeros({4}, f64()), 1.0));
  set_rng_seed(3);
  const Tensor b = dist::Normal(zeros({4}, f64()), 1.0).rsample();
  EXPECT_EQ(a.shape(), (Shape{4}));
  test::expect_close(a, b, 0, 0);
  const Tensor obs = tensor({1.0, 2.0}, f64());
  EXPECT_EQ(sample("y", dist::Normal(0.0, 1.0), obs).data_ptr(), obs.data_ptr());
}

TEST_F(PrimitivesTest, ParamIsCreatedOnceAndReturnedConstrained) {
  int calls = 0;
  auto init = [&] {
    ++calls;
    return tensor({2.0, 3.0}, f64());
  };
  const Tensor p = param("scale", init, constraints::positive);
  test::expect_values(p, {2.0, 3.0}, 1e-12);
  test::expect_values(get_param_store().unconstrained("scale"), {std::log(2.0), std::log(3.0)},
                      1e-12);
  EXPECT_TRUE(get_param_store().unconstrained("scale").requires_grad());
  const Tensor again = param("scale", init, constraints::positive);
  test::expect_values(again, {2.0, 3.0}, 1e-12);
  EXPECT_EQ(calls, 1);
  test::expect_values(param("scale"), {2.0, 3.0}, 1e-12);
  // Gradients reach the unconstrained leaf through the transform: d exp(u)/du = exp(u).
  sum(param("scale")).backward();
  test::expect_values(get_param_store().unconstrained("scale").grad(), {2.0, 3.0}, 1e-12);
}

TEST_F(PrimitivesTest, ParamErrorsNameTheParameter) {
  EMBER_EXPECT_THROW_WITH(param("missing"), ValueError, "param 'missing'",
                          "not in the param store");
  EMBER_EXPECT_THROW_WITH(param("neg", -1.0, constraints::positive), ValueError, "param 'neg'",
                          "positive");
  EMBER_EXPECT_THROW_WITH(param("int", zeros({2}, TensorOptions{}.with_dtype(kInt64))), DTypeError,
                          "param 'int'");
  EXPECT_FALSE(get_param_store().contains("neg"));
}

// Pyro's tensor-shapes tutorial: plates at dims -2 and -3, sites inside one, the other or
// both, and an event dim made with expand + to_event.
TEST_F(PrimitivesTest, NestedPlateShapesFollowTheTutorial) {
  handlers::TraceHandler tracer;
  {
    auto x_axis = plate("x_axis", 3, {.dim = -2});
    sample("x", dist::Normal(0.0, 1.0));
  }
  {
    auto y_axis = plate("y_axis", 2, {.dim = -3});
    sample("y", dist::Normal(0.0, 1.0));
  }
  {
    auto x_axis = plate("x_axis", 3, {.dim = -2});  // entered again, as Pyro's tutorial does
    auto y_axis = plate("y_axis", 2, {.dim = -3});
    sample("xy", dist::Normal(0.0, 1.0));
    sample("z", dist::Normal(0.0, 1.0).expand({5}).to_event(1));
  }
  const Trace& tr = tracer.trace();
  EXPECT_EQ(tr.at("x").value.shape(), (Shape{3, 1}));
  EXPECT_EQ(tr.at("y").value.shape(), (Shape{2, 1, 1}));
  EXPECT_EQ(tr.at("xy").value.shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(tr.at("z").value.shape(), (Shape{2, 3, 1, 5}));
  EXPECT_EQ(tr.at("z").fn.batch_shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(tr.at("z").fn.event_shape(), (Shape{5}));
  EXPECT_EQ(tr.at("z").log_prob().shape(), (Shape{2, 3, 1}));
  ASSERT_EQ(tr.at("xy").cond_indep_stack.size(), 2u);
  EXPECT_EQ(tr.at("xy").cond_indep_stack[0].name, "x_axis");  // outermost first
  EXPECT_EQ(tr.at("xy").cond_indep_stack[1].dim, -3);
}

TEST_F(PrimitivesTest, PlatesTakeTheRightmostFreeDims) {
  handlers::TraceHandler tracer;
  auto outer = plate("outer", 4);
  auto inner = plate("inner", 5);
  EXPECT_EQ(outer.dim(), -1);
  EXPECT_EQ(inner.dim(), -2);
  sample("a", dist::Bernoulli(0.3));
  EXPECT_EQ(tracer.trace().at("a").value.shape(), (Shape{5, 4}));
}

TEST_F(PrimitivesTest, DimAndShapeConflictsAreNamed) {
  auto p = plate("first", 3, {.dim = -1});
  EMBER_EXPECT_THROW_WITH(plate("second", 4, {.dim = -1}), ValueError, "plate 'second'", "dim -1",
                          "plate 'first'");
  EMBER_EXPECT_THROW_WITH(sample("bad", dist::Normal(zeros({5}), 1.0)), ShapeError,
                          "sample site 'bad'", "plate 'first'", "dim -1", "size 5", "size 3");
  EMBER_EXPECT_THROW_WITH(plate("empty", 0), ValueError, "plate 'empty'");
  EMBER_EXPECT_THROW_WITH(plate("big", 3, {.subsample_size = 4}), ValueError, "plate 'big'",
                          "subsample_size");
  // A dim no tensor can have is named with its plate when the plate is made.
  EMBER_EXPECT_THROW_WITH(plate("deep", 3, {.dim = -50}), ValueError, "plate 'deep'", "dim -50",
                          "10 dims");
  auto last = plate("last", 2, {.dim = -kMaxRank});
  EXPECT_EQ(last.dim(), -kMaxRank);
}

TEST_F(PrimitivesTest, SubsampleScalesLogProbAndSelectsData) {
  const Tensor data = arange(100.0, f64()).reshape({100, 1}) * 0.01;
  handlers::TraceHandler tracer;
  auto p = plate("data", 100, {.subsample_size = 10});
  EXPECT_EQ(p.indices().shape(), (Shape{10}));
  const Tensor batch = p.subsample(data);
  EXPECT_EQ(batch.shape(), (Shape{10, 1}));
  const auto idx = p.indices().to_vector<std::int64_t>();
  EXPECT_EQ(std::set<std::int64_t>(idx.begin(), idx.end()).size(), 10u);
  for (std::size_t i = 0; i < idx.size(); ++i) {
    EXPECT_GE(idx[i], 0);
    EXPECT_LT(idx[i], 100);
    EXPECT_NEAR(batch.select(0, i).item(), 0.01 * idx[i], 1e-12);
  }
  sample("obs", dist::Normal(0.0, 1.0), batch.squeeze(-1));
  const Site& s = tracer.trace().at("obs");
  EXPECT_DOUBLE_EQ(s.scale, 10.0);
  EXPECT_NEAR(s.log_prob_sum().item(), 10.0 * sum(s.unscaled_log_prob()).item(), 1e-9);
  const Site& sub = tracer.trace().at("data");
  EXPECT_EQ(sub.type, SiteType::Subsample);
  EXPECT_EQ(sub.plate_size, 100);
}

TEST_F(PrimitivesTest, APlateEnteredTwiceInOneRunKeepsItsSubsample) {
  handlers::TraceHandler tracer;
  Tensor first, second;
  {
    auto p = plate("data", 1000, {.subsample_size = 8});
    first = p.indices();
  }
  {
    auto p = plate("data", 1000, {.subsample_size = 8});
    second = p.indices();
  }
  test::expect_close(second, first, 0, 0);
  EXPECT_EQ(tracer.trace().size(), 1u);
  // Another size under the same name is a different plate: a clear error.
  EMBER_EXPECT_THROW_WITH(plate("data", 500, {.subsample_size = 8}), ValueError,
                          "two sites named 'data'");
}

// A plate that is not subsampled has the indices 0..n-1, built once: the next run of the
// model gets the same tensor, not a new one (a million-row plate would otherwise write 8 MB
// a step).
TEST_F(PrimitivesTest, AFullPlateReusesItsIndices) {
  Tensor first;
  {
    auto p = plate("data", 1000);
    first = p.indices();
  }
  test::expect_values(first.narrow(0, 995, 5), {995, 996, 997, 998, 999});
  EXPECT_EQ(first.size(0), 1000);
  const profile::Counters before = profile::counters();
  Tensor again;
  {
    auto p = plate("data", 1000);
    again = p.indices();
  }
  EXPECT_EQ((profile::counters() - before).allocations, 0u);
  EXPECT_EQ(again.data_ptr(), first.data_ptr());
  auto other = plate("other", 999);
  EXPECT_NE(other.indices().data_ptr(), first.data_ptr());
  EXPECT_EQ(other.indices().size(0), 999);
}

// Each index should land in a subsample of k out of n with probability k / n.
TEST_F(PrimitivesTest, SubsampleIndicesAreUniform) {
  const int n = 20, k = 5, rounds = 4000;
  std::vector<int> counts(n, 0);
  for (int r = 0; r < rounds; ++r) {
    auto p = plate("p", n, {.subsample_size = k});
    for (auto i : p.indices().to_vector<std::int64_t>()) ++counts[i];
  }
  const double expected = static_cast<double>(rounds) * k / n;
  double chi2 = 0;
  for (int c : counts) chi2 += (c - expected) * (c - expected) / expected;
  // The counts are not independent (they sum to rounds * k), so chi2 is below a chi-square
  // with n - 1 = 19 degrees of freedom; its 99.9% quantile is 43.8.
  EXPECT_LT(chi2, 43.8);
}

TEST_F(PrimitivesTest, GivenSubsampleIndicesAreUsedAndChecked) {
  const Tensor idx = test::index_tensor({4, 1});
  auto p = plate("data", 6, {.subsample = idx});
  EXPECT_EQ(p.subsample_size(), 2);
  test::expect_values(p.subsample(arange(6.0, f64())), {4.0, 1.0});
  EMBER_EXPECT_THROW_WITH(plate("bad", 3, {.subsample = test::index_tensor({5})}), ValueError,
                          "plate 'bad'", "[0, 3)");
}

TEST_F(PrimitivesTest, SequentialPlateYieldsIndicesAndMarksIterations) {
  handlers::TraceHandler tracer;
  std::vector<std::int64_t> seen;
  for (std::int64_t i : sequential_plate("points", 4)) {
    seen.push_back(i);
    sample("x_" + std::to_string(i), dist::Normal(0.0, 1.0));
  }
  EXPECT_EQ(seen, (std::vector<std::int64_t>{0, 1, 2, 3}));
  EXPECT_TRUE(handler_stack().size() == 1);  // only the tracer is left
  const Site& s = tracer.trace().at("x_2");
  ASSERT_EQ(s.cond_indep_stack.size(), 1u);
  EXPECT_FALSE(s.cond_indep_stack[0].vectorized());
  EXPECT_EQ(s.cond_indep_stack[0].counter, 2);
  int n = 0;
  for (std::int64_t i : sequential_plate("sub", 10, {.subsample_size = 2})) {
    sample("y_" + std::to_string(i), dist::Normal(0.0, 1.0));
    ++n;
  }
  EXPECT_EQ(n, 2);
  for (const Site& site : tracer.trace()) {
    if (site.name.rfind("y_", 0) == 0) EXPECT_DOUBLE_EQ(site.scale, 5.0);
  }
}

TEST_F(PrimitivesTest, BreakingOutOfASequentialPlateLeavesTheStackClean) {
  for (std::int64_t i : sequential_plate("points", 4)) {
    if (i == 1) break;
  }
  EXPECT_TRUE(handler_stack_empty());
}

TEST_F(PrimitivesTest, FactorAddsToTheLogDensity) {
  handlers::TraceHandler tracer;
  {
    auto p = plate("p", 3);
    factor("f", tensor({0.5}, f64()));
  }
  factor("g", scalar_tensor(-2.0, f64()));
  const Site& f = tracer.trace().at("f");
  EXPECT_TRUE(f.is_observed);
  EXPECT_TRUE(f.infer.is_auxiliary);
  test::expect_values(f.log_prob(), {0.5, 0.5, 0.5});
  EXPECT_NEAR(tracer.trace().log_prob_sum().item(), 1.5 - 2.0, 1e-12);
}

TEST_F(PrimitivesTest, DeterministicIsRecordedWithoutDensity) {
  handlers::TraceHandler tracer;
  const Tensor v = tensor({1.0, 2.0}, f64());
  const Tensor out = deterministic("d", v, 1);
  EXPECT_EQ(out.data_ptr(), v.data_ptr());
  const Site& d = tracer.trace().at("d");
  EXPECT_TRUE(d.infer.deterministic);
  EXPECT_EQ(d.fn.event_shape(), (Shape{2}));
  EXPECT_DOUBLE_EQ(d.log_prob_sum().item(), 0.0);
}

class TwoLayer : public nn::Module {
 public:
  TwoLayer() {
    a_ = register_module("a", std::make_shared<nn::Linear>(3, 4, true, f64()));
    b_ = register_module("b", std::make_shared<nn::Linear>(4, 1, false, f64()));
  }
  Tensor forward(const Tensor& x) override { return (*b_)(tanh((*a_)(x))); }

 private:
  std::shared_ptr<nn::Linear> a_, b_;
};

TEST_F(PrimitivesTest, ModuleRegistersNetworkParameters) {
  TwoLayer net;
  const Tensor before = net.named_parameters()[0].second->clone();
  handlers::TraceHandler tracer;
  module("net", net);
  const std::vector<std::string> names = get_param_store().names();
  EXPECT_EQ(names, (std::vector<std::string>{"net$$$a.bias", "net$$$a.weight", "net$$$b.weight"}));
  // The network now computes with the stored leaves.
  auto params = net.named_parameters();
  EXPECT_EQ(params[0].second->data_ptr(),
            get_param_store().unconstrained("net$$$a.weight").data_ptr());
  test::expect_close(*params[0].second, before, 0, 0);
  sum(net(ones({2, 3}, f64()))).backward();
  EXPECT_TRUE(get_param_store().unconstrained("net$$$b.weight").grad().defined());
  EXPECT_EQ(tracer.trace().param_nodes().size(), 3u);
}

TEST_F(PrimitivesTest, MarkovAnnotatesSteps) {
  handlers::TraceHandler tracer;
  Tensor x = scalar_tensor(0.0, f64());
  for (std::int64_t t : markov(3)) {
    x = sample("x_" + std::to_string(t), dist::Normal(x, 1.0));
  }
  EXPECT_TRUE(handler_stack().size() == 1);
  EXPECT_EQ(tracer.trace().at("x_0").markov_step, 0);
  EXPECT_EQ(tracer.trace().at("x_2").markov_step, 2);
  EXPECT_EQ(tracer.trace().at("x_2").markov_history, 1);
}

}  // namespace
}  // namespace ember
