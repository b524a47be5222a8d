// The finite check of an SVI step: the ELBO names the first site whose log-density is not
// finite (guide sites first, then the model's) while it still holds the particle's traces;
// SVI's check of the loss and every gradient is one backend call per step, and with
// check_finite off nothing is checked.
#include <cmath>
#include <limits>
#include <string>

#include "test_util.hpp"

namespace ember {
namespace {

using test::f64;

class FiniteCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_param_store();
    set_rng_seed(99);
  }
};

// An observation far outside a tiny scale underflows its density to -inf at index [1].
void model_with_bad_obs() {
  const Tensor w = sample("w", dist::Normal(scalar_tensor(0.0, f64()), 1.0));
  auto p = plate("data", 3);
  sample("obs", dist::Normal(w, tensor({1.0, 1e-200, 1.0}, f64())),
         tensor({0.0, 1e200, 0.0}, f64()));
}
void guide_of_w() { sample("w", dist::Normal(param("m", scalar_tensor(0.0, f64())), 1.0)); }
// The guide adds factors of log 0 to its own log-density.
void guide_with_bad_factor() {
  guide_of_w();
  auto p = plate("vetoes", 2);
  factor("veto", log(zeros({2}, f64())));
}

std::string nonfinite_message(const std::function<void()>& model,
                              const std::function<void()>& guide, ElboOptions elbo = {}) {
  SVI svi([&] { model(); }, [&] { guide(); }, optim::Adam({.lr = 0.1}), Trace_ELBO(elbo));
  try {
    svi.step();
  } catch (const NonFiniteError& e) {
    return e.site() + " | " + e.what();
  }
  return "no NonFiniteError";
}

TEST_F(FiniteCheckTest, ANonFiniteModelSiteIsNamedWithItsFamilyShapeAndIndex) {
  EXPECT_EQ(nonfinite_message(model_with_bad_obs, guide_of_w),
            "obs | SVI step 0 (Trace_ELBO): the loss is inf; the first site whose log-density is "
            "not finite is 'obs' (model, Normal, batch shape (3)): value -inf at index [1]");
}

TEST_F(FiniteCheckTest, GuideSitesAreNamedBeforeModelSites) {
  // Both programs have a site at fault; the guide ran first.
  const std::string what = nonfinite_message(model_with_bad_obs, guide_with_bad_factor);
  EXPECT_EQ(what.substr(0, what.find(" | ")), "veto");
  EXPECT_NE(what.find("the first site whose log-density is not finite is 'veto' (guide, Unit, "
                      "batch shape (2)): value -inf at index [0]"),
            std::string::npos)
      << what;
}

TEST_F(FiniteCheckTest, EveryParticleIsChecked) {
  // The second of two sequential particles goes wrong; vectorized particles carry the
  // particle dim in the site's batch shape and the index.
  int runs = 0;
  auto late = [&] {
    guide_of_w();
    if (runs++ == 1) factor("late", log(zeros({}, f64())));
  };
  const std::string sequential =
      nonfinite_message([] { factor("ok", zeros({}, f64())); }, late, {.num_particles = 2});
  EXPECT_EQ(sequential.substr(0, sequential.find(" | ")), "late") << sequential;
  EXPECT_NE(sequential.find("(guide, Unit, batch shape ()): value -inf at index []"),
            std::string::npos)
      << sequential;

  const std::string vectorized =
      nonfinite_message(model_with_bad_obs, guide_of_w,
                        {.num_particles = 4, .vectorize_particles = true, .max_plate_nesting = 1});
  EXPECT_NE(
      vectorized.find("'obs' (model, Normal, batch shape (4, 3)): value -inf at index [0, 1]"),
      std::string::npos)
      << vectorized;
}

TEST_F(FiniteCheckTest, TheElboReportsOnlyWhenAsked) {
  Trace_ELBO elbo;
  const ElboResult checked = elbo.loss_and_grads(model_with_bad_obs, guide_of_w, FiniteCheck::On);
  EXPECT_FALSE(checked.finite);
  EXPECT_EQ(checked.nonfinite_site.name, "obs");
  EXPECT_EQ(checked.nonfinite_site.details,
            "(model, Normal, batch shape (3)): value -inf at index [1]");
  for (const auto& p : checked.params) p.param.zero_grad();

  const ElboResult unchecked = elbo.loss_and_grads(model_with_bad_obs, guide_of_w);
  EXPECT_FALSE(std::isfinite(unchecked.loss.item()));
  EXPECT_TRUE(unchecked.finite);  // not checked
  EXPECT_TRUE(unchecked.nonfinite_site.name.empty());
  for (const auto& p : unchecked.params) p.param.zero_grad();
}

TEST_F(FiniteCheckTest, ANonFiniteGradientNamesTheFirstParamAtFault) {
  // sqrt at 0 has an infinite derivative while the loss stays finite; "a" is fine.
  auto model = [] {
    factor("fine", -square(param("a", scalar_tensor(1.0, f64()))));
    factor("steep", sum(sqrt(param("p", tensor({4.0, 0.0}, f64())))));
  };
  SVI svi(
      model, [] {}, optim::SGD({.lr = 0.1}), Trace_ELBO());
  try {
    svi.step();
    ADD_FAILURE() << "expected NonFiniteError";
  } catch (const NonFiniteError& e) {
    EXPECT_EQ(e.site(), "p");
    EXPECT_STREQ(e.what(),
                 "SVI step 0 (Trace_ELBO): the loss is finite (-1) but a gradient is not; the "
                 "first param whose gradient is not finite is 'p': value -inf at index [1]");
  }
  // The gradients are released; the params did not move.
  EXPECT_FALSE(get_param_store().unconstrained("p").grad().defined());
  EXPECT_DOUBLE_EQ(param("a").item(), 1.0);
}

TEST_F(FiniteCheckTest, SkippingCountsTheStepAndLeavesTheParams) {
  SVI svi(model_with_bad_obs, guide_of_w, optim::Adam({.lr = 0.1}), Trace_ELBO(),
          {.skip_nonfinite = true});
  const RunResult r = svi.run(3, RunOptions{.progress = Progress::None});
  EXPECT_EQ(r.skipped_steps, 3);
  EXPECT_EQ(svi.skipped_steps(), 3);
  ASSERT_EQ(r.losses.size(), 3u);
  EXPECT_FALSE(std::isfinite(r.losses[0]));
  EXPECT_DOUBLE_EQ(param("m").item(), 0.0);
  EXPECT_FALSE(get_param_store().unconstrained("m").grad().defined());
}

TEST_F(FiniteCheckTest, OffMeansNoCheckAndNoException) {
  SVI svi(model_with_bad_obs, guide_of_w, optim::Adam({.lr = 0.1}), Trace_ELBO(),
          {.check_finite = false});
  const double loss = svi.step();
  EXPECT_FALSE(std::isfinite(loss));
  EXPECT_EQ(svi.skipped_steps(), 0);
  EXPECT_EQ(svi.num_steps_taken(), 1);
}

// The launcher calls of one step after a warm-up step (params made, caches filled).
std::uint64_t calls_per_step(bool check_finite, ElboOptions elbo = {}) {
  clear_param_store();
  set_rng_seed(5);
  auto model = [] {
    const Tensor w = sample("w", dist::Normal(zeros({3}, f64()), 1.0).to_event(1));
    auto data = plate("data", 4);
    sample("y", dist::Normal(sum(w, {-1}), 1.0), tensor({0.5, 1.0, 1.5, 2.0}, f64()));
  };
  auto guide = [] {
    const Tensor loc = param("loc", zeros({3}, f64()));
    const Tensor scale = param("scale", full({3}, 0.5, f64()), constraints::positive);
    const Tensor shift = param("shift", zeros({}, f64()));
    sample("w", dist::Normal(loc + shift, scale).to_event(1));
  };
  SVI svi(model, guide, optim::Adam({.lr = 0.01}), Trace_ELBO(elbo),
          {.check_finite = check_finite});
  svi.step();
  const profile::Counters before = profile::counters();
  svi.step();
  return (profile::counters() - before).backend_calls;
}

TEST_F(FiniteCheckTest, TheCheckIsOneLauncherCallPerStep) {
  // The loss and the three gradients are read in one pass: on a GPU one launch and one
  // device-to-host read, whatever the number of params. With check_finite off there is none.
  EXPECT_EQ(calls_per_step(true), calls_per_step(false) + 1);
  EXPECT_EQ(calls_per_step(true, {.num_particles = 4, .vectorize_particles = true}),
            calls_per_step(false, {.num_particles = 4, .vectorize_particles = true}) + 1);
  // Sequential particles: each particle's estimate is checked while its traces are alive,
  // the last together with the gradients.
  EXPECT_EQ(calls_per_step(true, {.num_particles = 3}),
            calls_per_step(false, {.num_particles = 3}) + 3);
}

}  // namespace
}  // namespace ember
