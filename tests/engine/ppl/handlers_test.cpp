// Every effect handler, in its scope and wrapper forms, and their composition.
#include "test_util.hpp"

namespace ember {
namespace {

using test::f64;

class HandlersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_param_store();
    set_rng_seed(11);
  }
};

// A small model: z ~ Normal(0, 1); x ~ Normal(z, 1) observed (3 points) in a plate.
Tensor model(const Tensor& data) {
  const Tensor loc = param("loc", scalar_tensor(0.0, f64()));
  const Tensor z = sample("z", dist::Normal(loc, 1.0));
  auto p = plate("data", data.size(0));
  sample("x", dist::Normal(z, 1.0), data);
  return z;
}

const Tensor& data() {
  static const Tensor d = tensor({0.5, 1.0, 1.5}, f64());
  return d;
}

TEST_F(HandlersTest, TraceRecordsSitesInOrder) {
  const Trace tr = handlers::trace(model).get_trace(data());
  ASSERT_EQ(tr.size(), 4u);
  EXPECT_EQ(tr.sites()[0].name, "loc");
  EXPECT_EQ(tr.sites()[0].type, SiteType::Param);
  EXPECT_EQ(tr.sites()[1].name, "z");
  EXPECT_FALSE(tr.sites()[1].is_observed);
  EXPECT_EQ(tr.sites()[2].type, SiteType::Subsample);
  EXPECT_TRUE(tr.at("x").is_observed);
  EXPECT_EQ(tr.stochastic_nodes().size(), 1u);
  EXPECT_EQ(tr.observation_nodes().size(), 1u);
  // log p(z) + sum log p(x | z), by hand.
  const double z = tr.at("z").value.item();
  double expect = -0.5 * z * z - 0.5 * std::log(2 * M_PI);
  for (double x : {0.5, 1.0, 1.5}) expect += -0.5 * (x - z) * (x - z) - 0.5 * std::log(2 * M_PI);
  EXPECT_NEAR(tr.log_prob_sum().item(), expect, 1e-12);
}

TEST_F(HandlersTest, DuplicateSampleSitesThrowButParamsMayRepeat) {
  auto twice = [] {
    param("p", 1.0);
    param("p", 1.0);
    sample("a", dist::Normal(0.0, 1.0));
    sample("a", dist::Normal(0.0, 1.0));
  };
  EMBER_EXPECT_THROW_WITH(handlers::trace(twice).get_trace(), ValueError, "two sites named 'a'");
  EXPECT_TRUE(handler_stack_empty());  // the handler left the stack as the exception passed
}

TEST_F(HandlersTest, ReplayGivesTheModelTheGuidesValues) {
  auto guide = [](const Tensor&) { sample("z", dist::Normal(5.0, 0.1)); };
  const Trace g = handlers::trace(guide).get_trace(data());
  const Trace m = handlers::trace(handlers::replay(model, g)).get_trace(data());
  EXPECT_EQ(m.at("z").value.data_ptr(), g.at("z").value.data_ptr());
  EXPECT_TRUE(m.at("x").is_observed);  // observed sites are not replayed
  // An observed site in the replayed trace may not feed a latent one.
  auto observed_guide = [] { sample("z", dist::Normal(0.0, 1.0), scalar_tensor(1.0)); };
  const Trace bad = handlers::trace(observed_guide).get_trace();
  EMBER_EXPECT_THROW_WITH(handlers::replay(model, bad)(data()), ValueError, "replay", "'z'",
                          "observed");
}

TEST_F(HandlersTest, ReplayReusesAPlatesSubsample) {
  auto prog = [] {
    auto p = plate("rows", 1000, {.subsample_size = 5});
    sample("r", dist::Normal(0.0, 1.0));
  };
  const Trace first = handlers::trace(prog).get_trace();
  const Trace again = handlers::trace(handlers::replay(prog, first)).get_trace();
  test::expect_close(again.at("rows").value, first.at("rows").value, 0, 0);
  test::expect_close(again.at("r").value, first.at("r").value, 0, 0);
}

TEST_F(HandlersTest, ConditionObservesSites) {
  auto conditioned = handlers::condition(model, {{"z", scalar_tensor(2.0, f64())}});
  const Trace tr = handlers::trace(conditioned).get_trace(data());
  EXPECT_TRUE(tr.at("z").is_observed);
  EXPECT_DOUBLE_EQ(tr.at("z").value.item(), 2.0);
  EXPECT_TRUE(tr.stochastic_nodes().empty());
  // The scope form does the same.
  handlers::TraceHandler tracer;
  handlers::ConditionHandler c({{"z", scalar_tensor(3.0, f64())}});
  EXPECT_DOUBLE_EQ(model(data()).item(), 3.0);
  EXPECT_TRUE(tracer.trace().at("z").is_observed);
}

TEST_F(HandlersTest, DoInterventionCutsDependence) {
  auto chain = [] {
    const Tensor a = sample("a", dist::Normal(0.0, 1.0));
    return sample("b", dist::Normal(a, 0.001));
  };
  auto intervened = handlers::do_(chain, {{"a", scalar_tensor(10.0)}});
  const Trace tr = handlers::trace(intervened).get_trace();
  // b follows the intervention; a itself is still sampled (and recorded) from its prior.
  EXPECT_NEAR(tr.at("b").value.item(), 10.0, 0.01);
  EXPECT_FALSE(tr.at("a").is_observed);
  EXPECT_LT(std::abs(tr.at("a").value.item()), 6.0);
  EXPECT_FALSE(tr.contains("a__CONDITIONED"));
  EXPECT_EQ(tr.size(), 2u);
}

TEST_F(HandlersTest, DoInsideAPlateAppliesThePlateOnce) {
  auto prog = [] {
    auto p = plate("p", 4, {});
    handlers::DoHandler d({{"a", zeros({4})}});
    sample("a", dist::Normal(0.0, 1.0));
  };
  const Trace tr = handlers::trace(prog).get_trace();
  EXPECT_EQ(tr.at("a").cond_indep_stack.size(), 1u);
  EXPECT_EQ(tr.at("a").value.shape(), (Shape{4}));
}

TEST_F(HandlersTest, BlockHidesSitesFromOuterHandlers) {
  auto prog = [] {
    param("w", 1.0);
    sample("a", dist::Normal(0.0, 1.0));
    sample("b", dist::Normal(0.0, 1.0));
  };
  auto names_of = [](const Trace& tr) {
    std::vector<std::string> out;
    for (const Site& s : tr) out.push_back(s.name);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(names_of(handlers::trace(handlers::block(prog)).get_trace()), V{});
  EXPECT_EQ(names_of(handlers::trace(handlers::block(prog, {.hide = {"a"}})).get_trace()),
            (V{"w", "b"}));
  EXPECT_EQ(names_of(handlers::trace(handlers::block(prog, {.expose = {"a"}})).get_trace()),
            (V{"a"}));
  EXPECT_EQ(
      names_of(
          handlers::trace(handlers::block(prog, {.hide_types = {SiteType::Param}})).get_trace()),
      (V{"a", "b"}));
  EXPECT_EQ(
      names_of(
          handlers::trace(handlers::block(prog, {.expose_types = {SiteType::Param}})).get_trace()),
      (V{"w"}));
  auto hide_b = [](const Message& m) { return m.name == "b"; };
  EXPECT_EQ(names_of(handlers::trace(handlers::block(prog, {.hide_fn = hide_b})).get_trace()),
            (V{"w", "a"}));
  EMBER_EXPECT_THROW_WITH(handlers::BlockHandler({.hide = {"a"}, .expose = {"b"}}), ValueError,
                          "block");
}

TEST_F(HandlersTest, ScaleMultipliesLogDensities) {
  const Trace plain = handlers::trace(handlers::seed(model, 1)).get_trace(data());
  const Trace scaled =
      handlers::trace(handlers::scale(handlers::seed(model, 1), 2.5)).get_trace(data());
  EXPECT_DOUBLE_EQ(scaled.at("x").scale, 2.5);
  EXPECT_NEAR(scaled.log_prob_sum().item(), 2.5 * plain.log_prob_sum().item(), 1e-10);
  EMBER_EXPECT_THROW_WITH(handlers::ScaleHandler(-1.0), ValueError, "scale");
}

TEST_F(HandlersTest, MaskZeroesLogDensities) {
  const Tensor keep = tensor({1.0, 0.0, 1.0}).to(kBool);
  const Trace tr = handlers::trace(handlers::mask(model, keep)).get_trace(data());
  const Tensor lp = tr.at("x").log_prob();
  const Tensor raw = tr.at("x").unscaled_log_prob();
  EXPECT_DOUBLE_EQ(lp.select(0, 1).item(), 0.0);
  EXPECT_DOUBLE_EQ(lp.select(0, 2).item(), raw.select(0, 2).item());
  const Trace none =
      handlers::trace(handlers::mask(model, Tensor(full({}, 0.0).to(kBool)))).get_trace(data());
  EXPECT_DOUBLE_EQ(none.log_prob_sum().item(), 0.0);
  EMBER_EXPECT_THROW_WITH(handlers::MaskHandler(ones({2})), DTypeError, "bool");
}

TEST_F(HandlersTest, SeedMakesRunsReproducible) {
  auto prog = [] { return sample("a", dist::Normal(zeros({3}, f64()), 1.0)) + randn({3}, f64()); };
  const Tensor a = handlers::seed(prog, 42)();
  const Tensor b = handlers::seed(prog, 42)();
  const Tensor c = handlers::seed(prog, 43)();
  test::expect_close(a, b, 0, 0);
  EXPECT_FALSE(test::close(a, c, 1e-3, 0));
  // The thread's own stream is untouched by seeded runs.
  set_rng_seed(5);
  const Tensor before = randn({2}, f64());
  set_rng_seed(5);
  handlers::seed(prog, 42)();
  test::expect_close(randn({2}, f64()), before, 0, 0);
}

TEST_F(HandlersTest, SubstituteReplacesParamsAndSamples) {
  auto sub = handlers::substitute(
      model, {{"loc", scalar_tensor(4.0, f64())}, {"z", scalar_tensor(-1.0, f64())}});
  const Trace tr = handlers::trace(sub).get_trace(data());
  EXPECT_DOUBLE_EQ(tr.at("loc").value.item(), 4.0);
  EXPECT_DOUBLE_EQ(tr.at("z").value.item(), -1.0);
  EXPECT_FALSE(tr.at("z").is_observed);
  EXPECT_FALSE(get_param_store().contains("loc"));  // substituted, never created
}

TEST_F(HandlersTest, UnconditionSamplesObservedSites) {
  const Trace tr = handlers::trace(handlers::uncondition(model)).get_trace(data());
  const Site& x = tr.at("x");
  EXPECT_FALSE(x.is_observed);
  EXPECT_TRUE(x.infer.was_observed);
  test::expect_close(x.infer.obs, data(), 0, 0);
  EXPECT_FALSE(test::close(x.value, data(), 1e-6, 0));
  EXPECT_EQ(x.value.shape(), (Shape{3}));
}

TEST_F(HandlersTest, LiftTurnsParamsIntoSamples) {
  auto lifted = handlers::lift(model, dist::Normal(100.0, 0.01));
  const Trace tr = handlers::trace(lifted).get_trace(data());
  const Site& loc = tr.at("loc");
  EXPECT_EQ(loc.type, SiteType::Sample);
  EXPECT_NEAR(loc.value.item(), 100.0, 0.1);
  EXPECT_TRUE(std::isfinite(loc.log_prob_sum().item()));
  EXPECT_FALSE(get_param_store().contains("loc"));
  // Per-name priors leave other params alone.
  std::unordered_map<std::string, dist::Distribution> priors{{"other", dist::Normal(0.0, 1.0)}};
  EXPECT_EQ(handlers::trace(handlers::lift(model, priors)).get_trace(data()).at("loc").type,
            SiteType::Param);
}

TEST_F(HandlersTest, HandlersCompose) {
  // condition(z) inside a seeded, scaled trace: z observed, x scaled, reproducible.
  auto composed = handlers::scale(
      handlers::condition(handlers::seed(model, 9), {{"z", scalar_tensor(0.25, f64())}}), 3.0);
  const Trace a = handlers::trace(composed).get_trace(data());
  EXPECT_TRUE(a.at("z").is_observed);
  EXPECT_DOUBLE_EQ(a.at("z").scale, 3.0);
  // Blocking inside a trace hides, the block's own trace still sees.
  handlers::TraceHandler outer;
  {
    handlers::BlockHandler hide_all;
    handlers::TraceHandler inner;
    model(data());
    EXPECT_EQ(inner.trace().size(), 4u);
  }
  EXPECT_EQ(outer.trace().size(), 0u);
}

}  // namespace
}  // namespace ember
