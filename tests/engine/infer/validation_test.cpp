// Validation of model and guide (while validation is on), as Pyro's check_model_guide_match
// and check_site_shape: names that do not match warn, shapes that make the loss wrong throw,
// and an invalid distribution argument names its site; with validation off nothing is checked.
#include <memory>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace ember {
namespace {

using test::f64;

// Collects the warnings given while it lives.
class Warnings {
 public:
  Warnings()
      : previous_(set_warning_handler([this](const std::string& m) { messages_.push_back(m); })) {}
  ~Warnings() { set_warning_handler(previous_); }
  Warnings(const Warnings&) = delete;
  Warnings& operator=(const Warnings&) = delete;

  const std::vector<std::string>& messages() const { return messages_; }
  std::string all() const {
    std::string out;
    for (const std::string& m : messages_) out += m + "\n";
    return out;
  }

 private:
  std::vector<std::string> messages_;
  WarningHandler previous_;
};

Tensor flips() { return tensor({1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0}, f64()); }

void coin_model() {
  const Tensor f = sample("fairness", dist::Beta(scalar_tensor(10.0, f64()), 10.0));
  auto data = plate("data", 10);
  sample("obs", dist::Bernoulli(f), flips());
}

void coin_guide_named(const std::string& site) {
  const Tensor a = param("alpha_q", scalar_tensor(15.0, f64()), constraints::positive);
  const Tensor b = param("beta_q", scalar_tensor(15.0, f64()), constraints::positive);
  sample(site, dist::Beta(a, b));
}
void coin_guide() { coin_guide_named("fairness"); }

// A Normal mean with data of shape (10, 1) observed inside a plate of 10: the log-density
// broadcasts to (10, 10).
void column_model() {
  const Tensor loc = sample("loc", dist::Normal(scalar_tensor(0.0, f64()), 10.0));
  auto data = plate("data", 10);
  sample("obs", dist::Normal(loc, 1.0), zeros({10, 1}, f64()));
}
void loc_guide() { sample("loc", dist::Normal(param("m", scalar_tensor(0.0, f64())), 1.0)); }

class ValidationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_param_store();
    set_rng_seed(7);
  }
};

template <typename Elbo>
class ValidationElboTest : public ValidationTest {};
using Elbos = ::testing::Types<Trace_ELBO, TraceMeanField_ELBO, TraceGraph_ELBO>;
TYPED_TEST_SUITE(ValidationElboTest, Elbos);

TYPED_TEST(ValidationElboTest, TheCorrectModelPassesWithoutAWord) {
  Warnings w;
  TypeParam elbo;
  EXPECT_NO_THROW(elbo.loss_and_grads(coin_model, coin_guide));
  EXPECT_TRUE(w.messages().empty()) << w.all();
}

TYPED_TEST(ValidationElboTest, AMisspelledGuideSiteWarnsNamingBothSpellings) {
  Warnings w;
  TypeParam elbo;
  // TraceMeanField_ELBO then stops at the model latent without a guide site.
  try {
    elbo.loss_and_grads(coin_model, [] { coin_guide_named("fairnes"); });
  } catch (const ValueError&) {
  }
  ASSERT_EQ(w.messages().size(), 2u) << w.all();
  EXPECT_NE(w.messages()[0].find("guide site 'fairnes' is not in the model"), std::string::npos)
      << w.all();
  EXPECT_NE(w.messages()[0].find("the model's site 'fairness'"), std::string::npos) << w.all();
  EXPECT_NE(w.messages()[1].find("model site 'fairness' is not in the guide"), std::string::npos)
      << w.all();
  EXPECT_NE(w.messages()[1].find("the guide's site 'fairnes'"), std::string::npos) << w.all();
}

TYPED_TEST(ValidationElboTest, ADataColumnInAPlateThrowsWithBothShapes) {
  TypeParam elbo;
  try {
    elbo.loss_and_grads(column_model, loc_guide);
    FAIL() << "no ShapeError";
  } catch (const ShapeError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("site 'obs' (model, Normal) has a log-density of shape (10, 10) but its "
                        "plates 'data' (dim -1, size 10) allow (10)"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("the value has shape (10, 1)"), std::string::npos) << what;
    EXPECT_NE(what.find("to_event"), std::string::npos) << what;
  }
}

TEST_F(ValidationTest, AWarningHandlerThatThrowsMakesAMisspellingAnError) {
  WarningHandler previous = set_warning_handler([](const std::string& m) { throw ValueError(m); });
  EXPECT_THROW(Trace_ELBO().loss(coin_model, [] { coin_guide_named("fairnes"); }), ValueError);
  set_warning_handler(previous);
}

TEST_F(ValidationTest, AModelLatentMissingFromTheGuideWarnsAndTheFitRuns) {
  Warnings w;
  auto model = [] {
    sample("extra", dist::Normal(scalar_tensor(0.0, f64()), 1.0));
    coin_model();
  };
  SVI svi(model, coin_guide, optim::Adam({.lr = 0.01}), Trace_ELBO());
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(std::isfinite(svi.step().value()));
  ASSERT_EQ(w.messages().size(), 3u) << w.all();  // a handler hears every step
  EXPECT_NE(w.messages()[0].find("model site 'extra' is not in the guide: it is drawn from its "
                                 "prior at every step and not fitted"),
            std::string::npos)
      << w.all();
}

TEST_F(ValidationTest, AnAuxiliaryGuideSiteIsAccepted) {
  Warnings w;
  auto guide = [] {
    SampleOptions aux;
    aux.infer.is_auxiliary = true;
    sample("u", dist::Normal(scalar_tensor(0.0, f64()), 1.0), aux);
    coin_guide();
  };
  EXPECT_NO_THROW(Trace_ELBO().loss_and_grads(coin_model, guide));
  EXPECT_TRUE(w.messages().empty()) << w.all();
}

TEST_F(ValidationTest, AGuideSiteObservedInTheModelWarns) {
  Warnings w;
  auto guide = [] {
    coin_guide();
    auto data = plate("data", 10);
    sample("obs", dist::Bernoulli(scalar_tensor(0.5, f64())));
  };
  Trace_ELBO().loss(coin_model, guide);
  ASSERT_EQ(w.messages().size(), 1u) << w.all();
  EXPECT_NE(w.messages()[0].find("guide site 'obs' is observed in the model"), std::string::npos)
      << w.all();
}

TEST_F(ValidationTest, AGuidePlateMissingFromTheModelWarns) {
  Warnings w;
  auto guide = [] {
    coin_guide();
    auto extra = plate("extra", 3);
  };
  Trace_ELBO().loss(coin_model, guide);
  ASSERT_EQ(w.messages().size(), 1u) << w.all();
  EXPECT_NE(w.messages()[0].find("the guide's plate 'extra' is not in the model"),
            std::string::npos)
      << w.all();
}

TEST_F(ValidationTest, ModelAndGuideShapesMustAgree) {
  auto model = [] { sample("z", dist::Normal(zeros({3}, f64()), 1.0).to_event(1)); };
  auto event_guide = [] { sample("z", dist::Normal(zeros({3}, f64()), 1.0)); };
  try {
    Trace_ELBO().loss(model, event_guide);
    FAIL() << "no ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("model and guide disagree on the event dims of site 'z': "
                                         "1 in the model"),
              std::string::npos)
        << e.what();
  }
  auto wide_guide = [] { sample("z", dist::Normal(zeros({2, 3}, f64()), 1.0).to_event(1)); };
  EXPECT_THROW(Trace_ELBO().loss(model, wide_guide), ShapeError);
}

TEST_F(ValidationTest, PlatesDeeperThanMaxPlateNestingThrow) {
  auto model = [] {
    auto a = plate("a", 2);
    auto b = plate("b", 3);
    sample("x", dist::Normal(0.0, 1.0), zeros({3, 2}));
  };
  auto guide = [] {};
  try {
    Trace_ELBO({.max_plate_nesting = 1}).loss(model, guide);
    FAIL() << "no ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("raise max_plate_nesting to at least 2"),
              std::string::npos)
        << e.what();
  }
  EXPECT_NO_THROW(Trace_ELBO({.max_plate_nesting = 2}).loss(model, guide));
}

TEST_F(ValidationTest, VectorizedParticlesAndFreeDimsPass) {
  Warnings w;
  // A plate at dim -2 leaves dim -1 to the site (any size), and the particles' plate lies
  // further left.
  auto model = [] {
    const Tensor loc = sample("loc", dist::Normal(scalar_tensor(0.0, f64()), 10.0));
    auto rows = plate("rows", 4, {.dim = -2});
    sample("obs", dist::Normal(loc, ones({5}, f64())), zeros({4, 5}, f64()));
  };
  Trace_ELBO elbo({.num_particles = 3, .vectorize_particles = true});
  EXPECT_NO_THROW(elbo.loss_and_grads(model, loc_guide));
  EXPECT_TRUE(w.messages().empty()) << w.all();
}

TEST_F(ValidationTest, ANegativeScaleNamesItsSiteAndTheConstraint) {
  auto guide = [] {
    sample("loc", dist::Normal(param("m", scalar_tensor(0.0, f64())),
                               param("s", scalar_tensor(-1.0, f64()))));
  };
  auto model = [] { sample("loc", dist::Normal(scalar_tensor(0.0, f64()), 1.0)); };
  try {
    Trace_ELBO().loss_and_grads(model, guide);
    FAIL() << "no ValueError";
  } catch (const ValueError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("site 'loc': Normal: parameter scale must be positive, got -1 at index "
                         "[] (a learnable parameter? declare it with constraints::positive)",
                         0),
              0u)
        << what;
  }
  // A constant argument gets no hint, and an argument error outside any sample site names
  // its program.
  auto constant = [] { sample("loc", dist::Normal(0.0, -1.0)); };
  try {
    Trace_ELBO().loss(model, constant);
    FAIL() << "no ValueError";
  } catch (const ValueError& e) {
    EXPECT_EQ(std::string(e.what()).find("learnable"), std::string::npos) << e.what();
  }
  auto bounds = [] { sample("loc", dist::Uniform(1.0, 0.0)); };
  try {
    Trace_ELBO().loss(model, bounds);
    FAIL() << "no ValueError";
  } catch (const ValueError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("site 'loc': Uniform: parameter low must be less", 0),
              0u)
        << e.what();
  }
  auto unused = [] { (void)dist::Normal(0.0, -1.0); };
  try {
    Trace_ELBO().loss([] {}, unused);
    FAIL() << "no ValueError";
  } catch (const ValueError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("the guide: Normal: parameter scale", 0), 0u) << e.what();
  }
}

TEST_F(ValidationTest, ALogDensityErrorKeepsItsTypeAndNamesTheSite) {
  handlers::TraceHandler tracer;
  sample("x", dist::Normal(zeros({3}, f64()), 1.0), zeros({4}, f64()));
  const Trace tr = tracer.take();
  try {
    tr.at("x").log_prob();
    FAIL() << "no ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("site 'x' (Normal): ", 0), 0u) << e.what();
  }
}

TEST_F(ValidationTest, WithValidationOffNothingIsChecked) {
  ValidationScope off(false);
  Warnings w;
  EXPECT_NO_THROW(Trace_ELBO().loss(coin_model, [] { coin_guide_named("fairnes"); }));
  EXPECT_NO_THROW(Trace_ELBO().loss(column_model, loc_guide));
  auto deep = [] {
    auto a = plate("a", 2);
    auto b = plate("b", 3);
  };
  EXPECT_NO_THROW(Trace_ELBO({.max_plate_nesting = 1}).loss(deep, [] {}));
  EXPECT_TRUE(w.messages().empty()) << w.all();
}

}  // namespace
}  // namespace ember
