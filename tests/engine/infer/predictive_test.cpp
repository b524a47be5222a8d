// Predictive: prior and posterior predictive draws against hand-written loops, one by one and
// at once, return sites, and the errors.
#include "engine/data/data_test_util.hpp"
#include "test_util.hpp"

namespace ember {
namespace {

using test::f64;

class PredictiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_param_store();
    set_rng_seed(99);
  }
};

// mu ~ N(0, 1); y_i ~ N(mu, 0.5) over a plate; "twice" = 2 mu.
void model(const Tensor& y) {
  const Tensor mu = sample("mu", dist::Normal(scalar_tensor(0.0, f64()), 1.0));
  deterministic("twice", mul(mu, 2.0));
  auto data = plate("data", 3);
  sample("y", dist::Normal(mu, 0.5), y);
}

void guide(const Tensor&) {
  const Tensor loc = param("loc", scalar_tensor(1.5, f64()));
  sample("mu", dist::Normal(loc, 0.1));
}

const Tensor& observed() {
  static const Tensor y = tensor({1.0, 2.0, 1.5}, f64());
  return y;
}

TEST_F(PredictiveTest, PosteriorPredictiveFromAGuideMatchesAHandWrittenLoop) {
  Predictive predictive(model, guide, {.num_samples = 5});
  set_rng_seed(5);
  const handlers::ValueMap draws = predictive(observed());
  // Default: the sites the guide does not give.
  EXPECT_EQ(draws.size(), 2u);
  ASSERT_TRUE(draws.contains("y") && draws.contains("twice"));
  EXPECT_EQ(draws.at("y").shape(), Shape({5, 3}));
  EXPECT_EQ(draws.at("twice").shape(), Shape({5}));
  // The same draws by hand: guide, then the model replayed and unconditioned.
  set_rng_seed(5);
  std::vector<Tensor> ys, twice;
  for (int i = 0; i < 5; ++i) {
    const Trace g = handlers::trace(guide).get_trace(observed());
    const Trace m =
        handlers::trace(handlers::uncondition(handlers::replay(model, g))).get_trace(observed());
    ys.push_back(m.at("y").value);
    twice.push_back(m.at("twice").value);
  }
  test::expect_close(draws.at("y"), stack(ys), 0, 0);
  test::expect_close(draws.at("twice"), stack(twice), 0, 0);
  // The observations were drawn afresh, near the guide's mu.
  EXPECT_FALSE(all(eq(draws.at("y").select(0, 0), observed())));
  EXPECT_NEAR(ember::mean(draws.at("twice")).item(), 3.0, 0.3);
}

TEST_F(PredictiveTest, KeepingObservationsReturnsThem) {
  Predictive predictive(model, guide, {.num_samples = 2, .resample_observed = false});
  const handlers::ValueMap draws = predictive(observed());
  test::expect_close(draws.at("y").select(0, 1), observed(), 0, 0);
}

TEST_F(PredictiveTest, PriorPredictiveReturnsEverySampleSite) {
  Predictive predictive(model, {.num_samples = 2000});
  const handlers::ValueMap draws = predictive(observed());
  EXPECT_TRUE(draws.contains("mu") && draws.contains("y") && draws.contains("twice"));
  // y = mu + N(0, 0.5): variance 1.25.
  const Tensor y0 = draws.at("y").select(1, 0);
  const double m = ember::mean(y0).item();
  const double var = ember::mean(square(sub(y0, m))).item();
  EXPECT_NEAR(m, 0.0, 4 * std::sqrt(1.25 / 2000));
  EXPECT_NEAR(var, 1.25, 0.15);
}

TEST_F(PredictiveTest, PosteriorSamplesDriveTheModel) {
  handlers::ValueMap samples{{"mu", tensor({0.0, 1.0, -1.0, 2.0}, f64())}};
  Predictive predictive(model, samples, PredictiveOptions{.return_sites = {"twice", "y"}});
  const handlers::ValueMap draws = predictive(observed());
  test::expect_close(draws.at("twice"), tensor({0.0, 2.0, -2.0, 4.0}, f64()), 0, 0);
  EXPECT_EQ(draws.at("y").shape(), Shape({4, 3}));
}

TEST_F(PredictiveTest, ParallelDrawsHaveTheSequentialShapesAndLaw) {
  Predictive sequential(model, guide, {.num_samples = 3000});
  Predictive parallel(model, guide, {.num_samples = 3000, .parallel = true});
  const handlers::ValueMap a = sequential(observed()), b = parallel(observed());
  for (const char* name : {"y", "twice"}) {
    EXPECT_EQ(a.at(name).shape(), b.at(name).shape()) << name;
    EXPECT_NEAR(ember::mean(a.at(name)).item(), ember::mean(b.at(name)).item(), 0.06) << name;
  }
  // With posterior samples too.
  handlers::ValueMap samples{{"mu", tensor({0.0, 1.0, -1.0}, f64())}};
  Predictive at_once(model, samples, PredictiveOptions{.parallel = true});
  const handlers::ValueMap c = at_once(observed());
  test::expect_close(c.at("twice"), tensor({0.0, 2.0, -2.0}, f64()), 0, 0);
  EXPECT_EQ(c.at("y").shape(), Shape({3, 3}));
}

TEST_F(PredictiveTest, AnAutoguideServesAsTheGuide) {
  auto auto_guide = autoguide::AutoNormal(model);
  SVI svi(model, auto_guide, optim::Adam({.lr = 0.05}), Trace_ELBO());
  for (int i = 0; i < 300; ++i) svi.step(observed());
  Predictive predictive(model, auto_guide, {.num_samples = 500, .parallel = true});
  const handlers::ValueMap draws = predictive(observed());
  EXPECT_EQ(draws.at("y").shape(), Shape({500, 3}));
  // mu's posterior mean is 4.5 / 3.25 * ... = sum(y) / 0.25 / (1 + 3 / 0.25).
  EXPECT_NEAR(ember::mean(draws.at("twice")).item(), 2 * (4.5 / 0.25) / 13, 0.2);
  // The draws can be written as an npz archive.
  const test::TempDir temp;
  const std::string path = temp.file("predictive.npz");
  data::write_npz(path, std::map<std::string, Tensor>(draws.begin(), draws.end()));
  EXPECT_EQ(data::read_npz(path).at("y").shape(), Shape({500, 3}));
  // And as safetensors, read back bit for bit.
  const std::string st = temp.file("predictive.safetensors");
  data::write_safetensors(st, std::map<std::string, Tensor>(draws.begin(), draws.end()));
  const std::map<std::string, Tensor> back = data::read_safetensors(st);
  test::expect_close(back.at("y"), draws.at("y"), 0, 0);
  test::expect_close(back.at("twice"), draws.at("twice"), 0, 0);
}

TEST_F(PredictiveTest, ErrorsNameTheSite) {
  try {
    Predictive p(model, guide, {.num_samples = 2, .return_sites = {"nope"}});
    p(observed());
    ADD_FAILURE() << "no exception";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("'nope'"), std::string::npos) << e.what();
  }
  try {
    handlers::ValueMap samples{{"mu", tensor({0.0, 1.0}, f64())}};
    Predictive p(model, samples, PredictiveOptions{.num_samples = 3});
    p(observed());
    ADD_FAILURE() << "no exception";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("'mu'"), std::string::npos) << e.what();
  }
  Predictive none(model, guide, {});
  EXPECT_THROW(none(observed()), ValueError);
}

}  // namespace
}  // namespace ember
