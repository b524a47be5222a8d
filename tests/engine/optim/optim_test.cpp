// The optimizers against float64 reference loops written here from PyTorch's documented
// algorithms (and Pyro's ClippedAdam source), over several steps of gradients that depend
// on the parameters, in float32 and float64; then convergence, per-parameter options,
// parameters that join late or have no gradient, schedules, and the argument checks.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ember/ember.hpp>
#include <ember/optim.hpp>
#include <filesystem>
#include <functional>
#include <memory>
#include <numbers>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "test_util.hpp"

using namespace ember;
using namespace ember::optim;

namespace {

using Vec = std::vector<double>;

// ------------------------------------------------------------ reference loops ----
// One parameter each; state lives in the object. Element by element, in double.

class RefOptimizer {
 public:
  virtual ~RefOptimizer() = default;
  virtual void step(Vec& p, Vec g) = 0;
};

class RefSgd final : public RefOptimizer {
 public:
  explicit RefSgd(SGDOptions o) : o_(o) {}
  void step(Vec& p, Vec g) override {
    ++t_;
    if (buf_.empty()) buf_.assign(p.size(), 0.0);
    for (std::size_t i = 0; i < p.size(); ++i) {
      double gt = g[i];
      if (o_.weight_decay != 0) gt = gt + o_.weight_decay * p[i];
      if (o_.momentum != 0) {
        if (t_ > 1) {
          buf_[i] = o_.momentum * buf_[i] + (1 - o_.dampening) * gt;
        } else {
          buf_[i] = gt;
        }
        gt = o_.nesterov ? gt + o_.momentum * buf_[i] : buf_[i];
      }
      p[i] = p[i] - o_.lr * gt;
    }
  }

 private:
  SGDOptions o_;
  int t_ = 0;
  Vec buf_;
};

// As the documentation writes it: bias-corrected moments m_hat and v_hat.
class RefAdam final : public RefOptimizer {
 public:
  explicit RefAdam(AdamOptions o) : o_(o) {}
  void step(Vec& p, Vec g) override {
    ++t_;
    if (m_.empty()) m_.assign(p.size(), 0.0), v_.assign(p.size(), 0.0);
    const auto [b1, b2] = o_.betas;
    for (std::size_t i = 0; i < p.size(); ++i) {
      const double gt = g[i] + o_.weight_decay * p[i];
      m_[i] = b1 * m_[i] + (1 - b1) * gt;
      v_[i] = b2 * v_[i] + (1 - b2) * gt * gt;
      const double m_hat = m_[i] / (1 - std::pow(b1, t_));
      const double v_hat = v_[i] / (1 - std::pow(b2, t_));
      p[i] = p[i] - o_.lr * m_hat / (std::sqrt(v_hat) + o_.eps);
    }
  }

 private:
  AdamOptions o_;
  int t_ = 0;
  Vec m_, v_;
};

// Pyro's ClippedAdam.step: group["lr"] *= lrd first, then the clamped update.
class RefClippedAdam final : public RefOptimizer {
 public:
  explicit RefClippedAdam(ClippedAdamOptions o) : o_(o), lr_(o.lr) {}
  void step(Vec& p, Vec g) override {
    lr_ *= o_.lrd;
    ++t_;
    if (m_.empty()) m_.assign(p.size(), 0.0), v_.assign(p.size(), 0.0);
    const auto [b1, b2] = o_.betas;
    const double step_size = lr_ * std::sqrt(1 - std::pow(b2, t_)) / (1 - std::pow(b1, t_));
    for (std::size_t i = 0; i < p.size(); ++i) {
      double gt = std::clamp(g[i], -o_.clip_norm, o_.clip_norm);
      gt += o_.weight_decay * p[i];
      m_[i] = b1 * m_[i] + (1 - b1) * gt;
      v_[i] = b2 * v_[i] + (1 - b2) * gt * gt;
      p[i] -= step_size * m_[i] / (std::sqrt(v_[i]) + o_.eps);
    }
  }

 private:
  ClippedAdamOptions o_;
  double lr_;
  int t_ = 0;
  Vec m_, v_;
};

class RefAdagrad final : public RefOptimizer {
 public:
  explicit RefAdagrad(AdagradOptions o) : o_(o) {}
  void step(Vec& p, Vec g) override {
    ++t_;
    if (sum_.empty()) sum_.assign(p.size(), o_.initial_accumulator_value);
    const double clr = o_.lr / (1 + (t_ - 1) * o_.lr_decay);
    for (std::size_t i = 0; i < p.size(); ++i) {
      const double gt = g[i] + o_.weight_decay * p[i];
      sum_[i] += gt * gt;
      p[i] = p[i] - clr * gt / (std::sqrt(sum_[i]) + o_.eps);
    }
  }

 private:
  AdagradOptions o_;
  int t_ = 0;
  Vec sum_;
};

class RefRmsprop final : public RefOptimizer {
 public:
  explicit RefRmsprop(RMSpropOptions o) : o_(o) {}
  void step(Vec& p, Vec g) override {
    if (v_.empty()) v_.assign(p.size(), 0.0), b_.assign(p.size(), 0.0), gave_.assign(p.size(), 0);
    for (std::size_t i = 0; i < p.size(); ++i) {
      const double gt = g[i] + o_.weight_decay * p[i];
      v_[i] = o_.alpha * v_[i] + (1 - o_.alpha) * gt * gt;
      double v_tilde = v_[i];
      if (o_.centered) {
        gave_[i] = gave_[i] * o_.alpha + (1 - o_.alpha) * gt;
        v_tilde = v_tilde - gave_[i] * gave_[i];
      }
      if (o_.momentum > 0) {
        b_[i] = o_.momentum * b_[i] + gt / (std::sqrt(v_tilde) + o_.eps);
        p[i] = p[i] - o_.lr * b_[i];
      } else {
        p[i] = p[i] - o_.lr * gt / (std::sqrt(v_tilde) + o_.eps);
      }
    }
  }

 private:
  RMSpropOptions o_;
  Vec v_, b_, gave_;
};

// --------------------------------------------------------------- the fixture ----

struct Case {
  std::string label;
  std::function<std::unique_ptr<Optimizer>()> make;
  std::function<std::unique_ptr<RefOptimizer>()> make_ref;
};

template <typename Opt, typename Ref, typename Options>
Case make_case(std::string label, Options o) {
  return {std::move(label), [o] { return std::make_unique<Opt>(o); },
          [o] { return std::make_unique<Ref>(o); }};
}

std::vector<Case> cases() {
  return {
      make_case<SGD, RefSgd>("SGD", SGDOptions{.lr = 0.05}),
      make_case<SGD, RefSgd>("SGD momentum", SGDOptions{.lr = 0.02, .momentum = 0.9}),
      make_case<SGD, RefSgd>(
          "SGD dampening, weight decay",
          SGDOptions{.lr = 0.02, .momentum = 0.8, .dampening = 0.3, .weight_decay = 0.05}),
      make_case<SGD, RefSgd>(
          "SGD nesterov",
          SGDOptions{.lr = 0.02, .momentum = 0.9, .nesterov = true, .weight_decay = 0.1}),
      make_case<Adam, RefAdam>("Adam", AdamOptions{.lr = 0.05}),
      make_case<Adam, RefAdam>(
          "Adam betas, eps, weight decay",
          AdamOptions{.lr = 0.03, .betas = {0.8, 0.99}, .eps = 1e-3, .weight_decay = 0.05}),
      make_case<ClippedAdam, RefClippedAdam>("ClippedAdam",
                                             ClippedAdamOptions{.lr = 0.05, .clip_norm = 5.0}),
      make_case<ClippedAdam, RefClippedAdam>("ClippedAdam lrd, weight decay",
                                             ClippedAdamOptions{.lr = 0.05,
                                                                .betas = {0.85, 0.995},
                                                                .eps = 1e-4,
                                                                .weight_decay = 0.02,
                                                                .clip_norm = 1.0,
                                                                .lrd = 0.9}),
      make_case<Adagrad, RefAdagrad>("Adagrad", AdagradOptions{.lr = 0.1}),
      make_case<Adagrad, RefAdagrad>("Adagrad lr_decay, accumulator, weight decay",
                                     AdagradOptions{.lr = 0.1,
                                                    .lr_decay = 0.05,
                                                    .weight_decay = 0.01,
                                                    .initial_accumulator_value = 0.5,
                                                    .eps = 1e-6}),
      make_case<RMSprop, RefRmsprop>("RMSprop", RMSpropOptions{.lr = 0.01}),
      make_case<RMSprop, RefRmsprop>("RMSprop centered",
                                     RMSpropOptions{.lr = 0.01, .centered = true}),
      make_case<RMSprop, RefRmsprop>("RMSprop momentum",
                                     RMSpropOptions{.lr = 0.01, .momentum = 0.9}),
      make_case<RMSprop, RefRmsprop>("RMSprop centered, momentum, weight decay",
                                     RMSpropOptions{.lr = 0.005,
                                                    .alpha = 0.9,
                                                    .eps = 1e-6,
                                                    .weight_decay = 0.01,
                                                    .momentum = 0.5,
                                                    .centered = true}),
  };
}

Vec uniform_values(std::size_t n, double lo, double hi) {
  std::uniform_real_distribution<double> d(lo, hi);
  Vec v(n);
  for (double& x : v) x = d(test::rng());
  return v;
}

// The values a tensor of `dtype` holds for v: float32 rounds.
Vec rounded(const Vec& v, DType dtype) {
  return from_vector(v, {static_cast<std::int64_t>(v.size())}, TensorOptions{}.with_dtype(dtype))
      .to_vector<double>();
}

// Three parameters: a vector, a matrix and one large enough that the CPU's joint range is
// split across threads in the middle of a slot. At step k the loss is
// sum(a * x^2 + w_k * x), so the gradient 2 a x + w_k depends on the parameter, and w_k
// (up to +-20) reaches past ClippedAdam's clip norms.
void check_against_reference(const Case& c, DType dtype, int steps) {
  SCOPED_TRACE(c.label + " in " + dtype_name(dtype));
  const std::vector<Shape> shapes = {{7}, {3, 4}, {40000}};
  const TensorOptions opts = TensorOptions{}.with_dtype(dtype);
  std::vector<Tensor> params, curv;
  std::vector<Vec> ref_p, ref_a;
  std::vector<std::unique_ptr<RefOptimizer>> refs;
  std::vector<NamedTensor> named;
  for (std::size_t k = 0; k < shapes.size(); ++k) {
    const auto n = static_cast<std::size_t>(shapes[k].numel());
    const Vec p0 = rounded(uniform_values(n, -2, 2), dtype);
    const Vec a = rounded(uniform_values(n, 0.1, 1.0), dtype);
    params.push_back(from_vector(p0, shapes[k], opts).requires_grad_());
    curv.push_back(from_vector(a, shapes[k], opts));
    ref_p.push_back(p0);
    ref_a.push_back(a);
    refs.push_back(c.make_ref());
    named.push_back({"p" + std::to_string(k), params.back()});
  }
  const auto opt = c.make();
  const double rtol = dtype == kFloat64 ? 1e-10 : 2e-4;
  const double atol = dtype == kFloat64 ? 1e-12 : 2e-5;
  for (int step = 0; step < steps; ++step) {
    Tensor loss = scalar_tensor(0.0, opts);
    std::vector<Vec> grads;
    for (std::size_t k = 0; k < params.size(); ++k) {
      const auto n = static_cast<std::size_t>(shapes[k].numel());
      const Vec w = rounded(uniform_values(n, -20, 20), dtype);
      const Tensor& x = params[k];
      loss = loss + sum(curv[k] * x * x + from_vector(w, shapes[k], opts) * x);
      Vec g(n);
      for (std::size_t i = 0; i < n; ++i) g[i] = 2 * ref_a[k][i] * ref_p[k][i] + w[i];
      grads.push_back(g);
      x.zero_grad();
    }
    loss.backward();
    opt->step(named);
    for (std::size_t k = 0; k < params.size(); ++k) {
      refs[k]->step(ref_p[k], grads[k]);
      ASSERT_TRUE(test::close(params[k], from_vector(ref_p[k], shapes[k], test::f64()), rtol, atol))
          << "parameter p" << k << " after step " << step + 1;
    }
  }
  EXPECT_EQ(opt->step_count("p0"), steps);
}

TEST(Optim, MatchesReferenceFloat64) {
  for (const Case& c : cases()) check_against_reference(c, kFloat64, 8);
}

TEST(Optim, MatchesReferenceFloat32) {
  for (const Case& c : cases()) check_against_reference(c, kFloat32, 8);
}

// ---------------------------------------------------------------- behaviour ----

// Sets a leaf's gradient to g (same shape) as a backward of sum(g * x) would.
void set_grad(const Tensor& x, const Tensor& g) {
  x.zero_grad();
  sum(x * g.detach()).backward();
}

TEST(Optim, QuadraticConverges) {
  std::vector<std::unique_ptr<Optimizer>> optimizers;
  optimizers.push_back(std::make_unique<Adam>(AdamOptions{.lr = 0.1}));
  optimizers.push_back(std::make_unique<ClippedAdam>(ClippedAdamOptions{.lr = 0.1}));
  optimizers.push_back(std::make_unique<SGD>(SGDOptions{.lr = 0.05, .momentum = 0.9}));
  optimizers.push_back(std::make_unique<Adagrad>(AdagradOptions{.lr = 0.5}));
  optimizers.push_back(std::make_unique<RMSprop>(RMSpropOptions{.lr = 0.01}));
  for (auto& opt : optimizers) {
    SCOPED_TRACE(opt->name());
    const Tensor x = tensor({-1.0, 0.0, 10.0}, test::f64(true));
    for (int i = 0; i < 1000; ++i) {
      x.zero_grad();
      const Tensor d = x - 3.0;
      sum(d * d).backward();
      opt->step({{"x", x}});
    }
    test::expect_values(x, {3, 3, 3}, 0, 2e-2);
  }
}

TEST(Optim, PerParameterOptionsFromACallable) {
  SGD opt([](const std::string& name) { return SGDOptions{.lr = name == "a" ? 0.1 : 0.01}; });
  const Tensor a = tensor({1.0, 2.0}, test::f64(true));
  const Tensor b = tensor({1.0, 2.0}, test::f64(true));
  set_grad(a, tensor({1.0, -1.0}, test::f64()));
  set_grad(b, tensor({1.0, -1.0}, test::f64()));
  opt.step({{"a", a}, {"b", b}});
  test::expect_values(a, {0.9, 2.1}, 1e-14);
  test::expect_values(b, {0.99, 2.01}, 1e-14);
  EXPECT_DOUBLE_EQ(opt.lr("a"), 0.1);
  EXPECT_DOUBLE_EQ(opt.lr("b"), 0.01);
  EXPECT_DOUBLE_EQ(opt.lr("not seen yet"), 0.01);
}

TEST(Optim, ParameterJoiningLateGetsFreshState) {
  Adam opt(AdamOptions{.lr = 0.1});
  const Tensor a = tensor({1.0, -1.0}, test::f64(true));
  for (int i = 0; i < 3; ++i) {
    set_grad(a, tensor({0.5, 2.0}, test::f64()));
    opt.step({{"a", a}});
  }
  const Tensor b = tensor({1.0, -1.0}, test::f64(true));
  set_grad(a, tensor({0.5, 2.0}, test::f64()));
  set_grad(b, tensor({0.5, 2.0}, test::f64()));
  opt.step({{"a", a}, {"b", b}});
  EXPECT_EQ(opt.step_count("a"), 4);
  EXPECT_EQ(opt.step_count("b"), 1);
  // Adam's first step moves each element by lr against the sign of its gradient (up to eps).
  test::expect_values(b, {0.9, -1.1}, 1e-7);
}

TEST(Optim, ParameterWithoutGradientIsSkipped) {
  ClippedAdam opt(ClippedAdamOptions{.lr = 0.1, .lrd = 0.5});
  const Tensor a = tensor({1.0}, test::f64(true));
  const Tensor c = tensor({5.0}, test::f64(true));  // never gets a gradient
  set_grad(a, tensor({1.0}, test::f64()));
  opt.step({{"a", a}, {"c", c}});
  test::expect_values(c, {5.0}, 0, 0);
  EXPECT_FALSE(c.grad().defined());
  EXPECT_EQ(opt.step_count("c"), 0);
  EXPECT_EQ(opt.step_count("a"), 1);
  // As in Pyro, lr decays at every step() call that lists the parameter.
  EXPECT_DOUBLE_EQ(opt.lr("c"), 0.05);
  // The first step with a gradient uses the decayed lr (0.1 * 0.5^2), not a fresh one.
  set_grad(c, tensor({1.0}, test::f64()));
  opt.step({{"c", c}});
  test::expect_values(c, {5.0 - 0.025}, 1e-7);
}

TEST(Optim, StepLeavesGradientsAlone) {
  SGD opt(SGDOptions{.lr = 1.0});
  const Tensor a = tensor({1.0, 2.0}, test::f64(true));
  set_grad(a, tensor({3.0, 4.0}, test::f64()));
  opt.step({{"a", a}});
  test::expect_values(a.grad(), {3.0, 4.0}, 0, 0);
  test::expect_values(a, {-2.0, -2.0}, 0, 0);
}

TEST(Optim, MixedDtypesAndEmptyParameters) {
  Adam opt(AdamOptions{.lr = 0.1});
  const Tensor d = tensor({1.0, -1.0}, test::f64(true));
  const Tensor f = tensor({1.0, -1.0}, TensorOptions{}.with_requires_grad());
  const Tensor e = zeros({0}, test::f64(true));
  set_grad(d, tensor({1.0, -1.0}, test::f64()));
  set_grad(f, tensor({1.0, -1.0}));
  e.zero_grad();
  sum(e).backward();
  opt.step({{"d", d}, {"f", f}, {"e", e}});
  test::expect_values(d, {0.9, -0.9}, 1e-7);
  test::expect_values(f, {0.9, -0.9}, 1e-6);
  EXPECT_EQ(opt.step_count("e"), 1);
}

// Steps whose parameter lists change (a dtype group present, then absent, then back; a
// parameter without a gradient) update what each lists, as fresh optimizers stepping the
// same lists do.
TEST(Optim, StepsWithChangingParameterListsUpdateWhatEachLists) {
  auto run = [](bool one_optimizer) {
    const Tensor d = tensor({1.0, -1.0}, test::f64(true));
    const Tensor f = tensor({1.0, -1.0}, TensorOptions{}.with_requires_grad());
    std::unique_ptr<SGD> kept = std::make_unique<SGD>(SGDOptions{.lr = 0.1});
    const std::vector<std::vector<NamedTensor>> lists = {
        {{"d", d}, {"f", f}}, {{"f", f}}, {{"d", d}}, {{"f", f}, {"d", d}}};
    for (const auto& list : lists) {
      set_grad(d, tensor({1.0, 2.0}, test::f64()));
      set_grad(f, tensor({3.0, 4.0}));
      if (!one_optimizer) kept = std::make_unique<SGD>(SGDOptions{.lr = 0.1});
      kept->step(list);
    }
    return std::make_pair(d.to_vector<double>(), f.to(kFloat64).to_vector<double>());
  };
  const auto [d, f] = run(true);
  EXPECT_EQ(d, run(false).first);
  EXPECT_EQ(f, run(false).second);
  // Each listed with a gradient three times of the four.
  EXPECT_NEAR(d[0], 1.0 - 0.3, 1e-12);
  EXPECT_NEAR(d[1], -1.0 - 0.6, 1e-12);
  EXPECT_NEAR(f[0], 1.0 - 0.9, 1e-6);
  EXPECT_NEAR(f[1], -1.0 - 1.2, 1e-6);
}

TEST(Optim, NonContiguousGradientIsMadeContiguous) {
  SGD opt(SGDOptions{.lr = 1.0});
  const Tensor x = zeros({2, 3}, test::f64(true));
  const Tensor g = tensor({{1, 2}, {3, 4}, {5, 6}}, test::f64()).t();  // (2, 3), strided
  ASSERT_FALSE(g.is_contiguous());
  x.impl().grad = std::make_shared<Tensor>(g);
  opt.step({{"x", x}});
  test::expect_values(x, {-1, -3, -5, -2, -4, -6}, 0, 0);
}

TEST(Optim, OptimizerIsPolymorphicAndMovable) {
  std::unique_ptr<Optimizer> opt = std::make_unique<Adagrad>();
  EXPECT_STREQ(opt->name(), "Adagrad");
  EXPECT_DOUBLE_EQ(opt->lr("x"), 1e-2);
  RMSprop a;
  RMSprop b = std::move(a);
  EXPECT_STREQ(b.name(), "RMSprop");
  EXPECT_DOUBLE_EQ(SGD().lr("x"), 1e-3);
  EXPECT_DOUBLE_EQ(Adam().lr("x"), 1e-3);
  EXPECT_DOUBLE_EQ(ClippedAdam().lr("x"), 1e-3);
}

// ---------------------------------------------------------------- schedules ----

TEST(Optim, SchedulesFollowTheClosedForms) {
  const double pi = std::numbers::pi;
  Adam opt(AdamOptions{.lr = 0.2});
  EXPECT_EQ(opt.epoch(), 0);
  opt.set_schedule(StepLR{.step_size = 3, .gamma = 0.5});
  for (int e = 0; e < 10; ++e) {
    EXPECT_DOUBLE_EQ(opt.lr("x"), 0.2 * std::pow(0.5, e / 3)) << "StepLR epoch " << e;
    opt.schedule_step();
  }
  EXPECT_EQ(opt.epoch(), 10);
  opt.set_schedule(ExponentialLR{.gamma = 0.9});
  EXPECT_EQ(opt.epoch(), 0);
  for (int e = 0; e < 10; ++e) {
    EXPECT_DOUBLE_EQ(opt.lr("x"), 0.2 * std::pow(0.9, e)) << "ExponentialLR epoch " << e;
    opt.schedule_step();
  }
  opt.set_schedule(CosineAnnealingLR{.t_max = 5, .eta_min = 0.01});
  for (int e = 0; e < 12; ++e) {
    const double expected = 0.01 + (0.2 - 0.01) * (1 + std::cos(pi * e / 5)) / 2;
    EXPECT_NEAR(opt.lr("x"), expected, 1e-15) << "CosineAnnealingLR epoch " << e;
    opt.schedule_step();
  }
  opt.set_schedule(LambdaLR{.factor = [](std::int64_t e) { return 1.0 / (1.0 + e); }});
  for (int e = 0; e < 5; ++e) {
    EXPECT_DOUBLE_EQ(opt.lr("x"), 0.2 / (1 + e)) << "LambdaLR epoch " << e;
    opt.schedule_step();
  }
  opt.set_schedule({});
  EXPECT_DOUBLE_EQ(opt.lr("x"), 0.2);
}

TEST(Optim, ScheduledLrDrivesTheUpdate) {
  SGD opt([](const std::string& name) { return SGDOptions{.lr = name == "a" ? 1.0 : 0.5}; });
  opt.set_schedule(StepLR{.step_size = 1, .gamma = 0.1});
  const Tensor a = tensor({0.0}, test::f64(true));
  const Tensor b = tensor({0.0}, test::f64(true));
  std::vector<double> expect_a = {0.0}, expect_b = {0.0};
  for (int e = 0; e < 3; ++e) {
    set_grad(a, tensor({1.0}, test::f64()));
    set_grad(b, tensor({1.0}, test::f64()));
    opt.step({{"a", a}, {"b", b}});
    expect_a[0] -= 1.0 * std::pow(0.1, e);
    expect_b[0] -= 0.5 * std::pow(0.1, e);
    test::expect_values(a, expect_a, 1e-14);
    test::expect_values(b, expect_b, 1e-14);
    opt.schedule_step();
  }
}

TEST(Optim, ClippedAdamLrComposesDecayAndSchedule) {
  ClippedAdam opt(ClippedAdamOptions{.lr = 1.0, .lrd = 0.9});
  opt.set_schedule(ExponentialLR{.gamma = 0.5});
  const Tensor a = tensor({0.0}, test::f64(true));
  EXPECT_DOUBLE_EQ(opt.lr("a"), 1.0);
  set_grad(a, tensor({1.0}, test::f64()));
  opt.step({{"a", a}});
  opt.step({{"a", a}});
  opt.schedule_step();
  EXPECT_DOUBLE_EQ(opt.lr("a"), 0.5 * 0.9 * 0.9);
}

// ------------------------------------------------------------------- checks ----

TEST(Optim, InvalidOptionsThrowNamingOptionAndValue) {
  EMBER_EXPECT_THROW_WITH(Adam(AdamOptions{.lr = -0.5}), ValueError, "Adam", "lr",
                          "every parameter", "-0.5", ">= 0");
  EMBER_EXPECT_THROW_WITH(Adam(AdamOptions{.betas = {0.9, 1.0}}), ValueError, "Adam", "betas[1]",
                          "is 1,", "[0, 1)");
  EMBER_EXPECT_THROW_WITH(Adam(AdamOptions{.eps = -1e-8}), ValueError, "eps", "-1e-08");
  EMBER_EXPECT_THROW_WITH(SGD(SGDOptions{.lr = 0.1, .nesterov = true}), ValueError, "SGD",
                          "nesterov", "momentum is 0");
  EMBER_EXPECT_THROW_WITH(SGD(SGDOptions{.momentum = 0.9, .dampening = 0.1, .nesterov = true}),
                          ValueError, "nesterov", "dampening 0.1");
  EMBER_EXPECT_THROW_WITH(SGD(SGDOptions{.momentum = -0.1}), ValueError, "momentum", "-0.1");
  EMBER_EXPECT_THROW_WITH(ClippedAdam(ClippedAdamOptions{.clip_norm = 0}), ValueError,
                          "ClippedAdam", "clip_norm", "is 0", "> 0");
  EMBER_EXPECT_THROW_WITH(ClippedAdam(ClippedAdamOptions{.lrd = -1}), ValueError, "lrd", "-1");
  EMBER_EXPECT_THROW_WITH(Adagrad(AdagradOptions{.initial_accumulator_value = -1}), ValueError,
                          "Adagrad", "initial_accumulator_value", "-1");
  EMBER_EXPECT_THROW_WITH(Adagrad(AdagradOptions{.lr_decay = -0.1}), ValueError, "lr_decay");
  EMBER_EXPECT_THROW_WITH(RMSprop(RMSpropOptions{.alpha = 1.5}), ValueError, "RMSprop", "alpha",
                          "1.5", "[0, 1]");
  EMBER_EXPECT_THROW_WITH(RMSprop(RMSpropOptions{.weight_decay = -1}), ValueError, "weight_decay");
  EMBER_EXPECT_THROW_WITH(Adam(AdamOptions{.lr = std::nan("")}), ValueError, "lr", "nan");
}

TEST(Optim, InvalidPerParameterOptionsThrowNamingTheParameter) {
  Adam opt([](const std::string& name) {
    return name == "loc" ? AdamOptions{.betas = {1.5, 0.999}} : AdamOptions{};
  });
  const Tensor ok = tensor({1.0}, test::f64(true));
  const Tensor loc = tensor({1.0}, test::f64(true));
  set_grad(ok, tensor({1.0}, test::f64()));
  set_grad(loc, tensor({1.0}, test::f64()));
  opt.step({{"ok", ok}});
  EMBER_EXPECT_THROW_WITH(opt.step({{"ok", ok}, {"loc", loc}}), ValueError, "Adam", "betas[0]",
                          "parameter 'loc'", "1.5");
  EMBER_EXPECT_THROW_WITH(opt.lr("loc"), ValueError, "parameter 'loc'");
  // The failed step changed nothing.
  EXPECT_EQ(opt.step_count("ok"), 1);
  EMBER_EXPECT_THROW_WITH(Adam(std::function<AdamOptions(const std::string&)>{}), ValueError,
                          "Adam", "callable");
}

TEST(Optim, InvalidSchedulesThrow) {
  EMBER_EXPECT_THROW_WITH(LRSchedule(StepLR{.step_size = 0}), ValueError, "StepLR", "step_size",
                          "0");
  EMBER_EXPECT_THROW_WITH(LRSchedule(ExponentialLR{.gamma = -1}), ValueError, "ExponentialLR",
                          "gamma", "-1");
  EMBER_EXPECT_THROW_WITH(LRSchedule(CosineAnnealingLR{.t_max = 0}), ValueError,
                          "CosineAnnealingLR", "t_max");
  EMBER_EXPECT_THROW_WITH(LRSchedule(CosineAnnealingLR{.t_max = 5, .eta_min = -1}), ValueError,
                          "eta_min");
  EMBER_EXPECT_THROW_WITH(LRSchedule(LambdaLR{}), ValueError, "LambdaLR");
}

TEST(Optim, InvalidParametersThrow) {
  SGD opt;
  const Tensor a = tensor({1.0, 2.0}, test::f64(true));
  set_grad(a, tensor({1.0, 1.0}, test::f64()));
  EMBER_EXPECT_THROW_WITH(opt.step({{"a", a}, {"a", a}}), ValueError, "SGD", "'a'", "twice");
  // Among many parameters too, and nothing is updated.
  std::vector<NamedTensor> many;
  for (int k = 0; k < 40; ++k) many.push_back({"p" + std::to_string(k), a});
  many.push_back({"p17", a});
  EMBER_EXPECT_THROW_WITH(opt.step(many), ValueError, "SGD", "'p17'", "twice");
  test::expect_values(a, {1.0, 2.0}, 0, 0);
  EMBER_EXPECT_THROW_WITH(opt.step({{"u", Tensor()}}), ValueError, "'u'", "undefined");

  // A leaf that is a transposed view: not contiguous, so it cannot be updated in place.
  Tensor t = zeros({2, 3}, test::f64()).t();
  t.requires_grad_();
  set_grad(t, ones({3, 2}, test::f64()));
  EMBER_EXPECT_THROW_WITH(opt.step({{"t", t}}), ValueError, "'t'", "not contiguous");

  // The same name with another shape: its state no longer fits.
  SGD momentum(SGDOptions{.momentum = 0.9});
  momentum.step({{"a", a}});
  const Tensor bigger = zeros({3}, test::f64(true));
  set_grad(bigger, ones({3}, test::f64()));
  EMBER_EXPECT_THROW_WITH(momentum.step({{"a", bigger}}), ValueError, "'a'", "(3)", "(2)");
  EXPECT_EQ(momentum.step_count("a"), 1);
}

}  // namespace

// ------------------------------------------------------------- saved state ----

std::string state_path(const std::string& tag) {
  return (std::filesystem::temp_directory_path() /
          ("ember_optim_" + std::to_string(::getpid()) + "_" + tag + ".safetensors"))
      .string();
}

// Steps [from, to) of a run over a float32 matrix, a float64 vector and a parameter that is
// listed but never has a gradient; the gradient depends on the parameters and the step, and
// the schedule advances every third step.
void run_steps(Optimizer& opt, const Tensor& x, const Tensor& y, const Tensor& z, int from,
               int to) {
  for (int k = from; k < to; ++k) {
    set_grad(x, 2.0 * x + (k % 5 - 2.0));
    set_grad(y, y * y - 0.5 * k);
    opt.step({{"x", x}, {"y", y}, {"z", z}});
    if (k % 3 == 2) opt.schedule_step();
  }
}

TEST(OptimState, ARunResumedFromASavedStateIsBitIdentical) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.label);
    const auto fresh = [] {
      return std::make_tuple(
          from_vector(Vec{0.5, -1.0, 2.0, 0.25, -3.0, 1.5}, {2, 3},
                      TensorOptions{}.with_dtype(kFloat32).with_requires_grad(true)),
          tensor({1.0, -2.0, 0.3}, test::f64(true)), tensor({4.0}, test::f64(true)));
    };
    // Uninterrupted: ten steps.
    const auto [x1, y1, z1] = fresh();
    auto whole = c.make();
    whole->set_schedule(StepLR{.step_size = 2, .gamma = 0.5});
    run_steps(*whole, x1, y1, z1, 0, 10);
    // Four steps, saved, loaded into a new optimizer, six more.
    const auto [x2, y2, z2] = fresh();
    auto first = c.make();
    first->set_schedule(StepLR{.step_size = 2, .gamma = 0.5});
    run_steps(*first, x2, y2, z2, 0, 4);
    const std::string path = state_path("resume");
    first->save(path);
    auto resumed = c.make();
    resumed->set_schedule(StepLR{.step_size = 2, .gamma = 0.5});
    resumed->load(path);
    std::filesystem::remove(path);
    EXPECT_EQ(resumed->epoch(), first->epoch());
    EXPECT_EQ(resumed->step_count("x"), 4);
    EXPECT_EQ(resumed->step_count("z"), 0);
    EXPECT_EQ(resumed->lr("x"), first->lr("x"));
    run_steps(*resumed, x2, y2, z2, 4, 10);
    EXPECT_EQ(x2.to_vector<float>(), x1.to_vector<float>());
    EXPECT_EQ(y2.to_vector<double>(), y1.to_vector<double>());
    EXPECT_EQ(z2.to_vector<double>(), z1.to_vector<double>());
  }
}

// An SVI fit checkpointed mid-way (param store, optimizer, generator position) and resumed
// in a fresh store, optimizer and generator ends exactly where the uninterrupted fit does.
TEST(OptimState, AnSviFitResumedFromCheckpointsIsBitIdentical) {
  const Tensor data = tensor({0.3, 1.2, -0.4, 2.2, 0.9}, test::f64());
  auto model = [&] {
    const Tensor mu = sample("mu", dist::Normal(0.0, 2.0));
    auto p = plate("data", 5);
    sample("obs", dist::Normal(mu, 1.0), data);
  };
  auto guide = [&] {
    const Tensor loc = param("loc", scalar_tensor(0.0, test::f64()));
    const Tensor scale = param("scale", scalar_tensor(1.0, test::f64()), constraints::positive);
    sample("mu", dist::Normal(loc, scale));
  };
  // `steps` SVI steps in `store` under `gen`, the optimizer's state loaded from `load` first
  // and saved to `save` after, where given.
  const auto fit = [&](ParamStore& store, Generator& gen, int steps, const std::string& load,
                       const std::string& save) {
    const GeneratorScope scope(gen);
    SVI svi(model, guide, Adam({.lr = 0.05}), Trace_ELBO(), {.param_store = &store});
    if (!load.empty()) svi.optimizer().load(load);
    for (int i = 0; i < steps; ++i) svi.step();
    if (!save.empty()) svi.optimizer().save(save);
  };
  ParamStore whole_store;
  Generator whole_gen(11);
  fit(whole_store, whole_gen, 40, "", "");

  const std::string params_path = state_path("svi_params"), optim_path = state_path("svi_optim");
  ParamStore store;
  Generator gen(11);
  fit(store, gen, 15, "", optim_path);
  store.save(params_path);

  ParamStore store2;
  store2.load(params_path);
  Generator gen2(11);
  gen2.set_offset(gen.offset());
  fit(store2, gen2, 25, optim_path, "");
  std::filesystem::remove(params_path);
  std::filesystem::remove(optim_path);
  EXPECT_EQ(store2.get("loc").item(), whole_store.get("loc").item());
  EXPECT_EQ(store2.get("scale").item(), whole_store.get("scale").item());
}

TEST(OptimState, BadFilesRaiseIoErrorAndChangeNothing) {
  const Tensor x = tensor({1.0, 2.0}, test::f64(true));
  Adam adam(AdamOptions{.lr = 0.1});
  set_grad(x, x);
  adam.step({{"x", x}});
  const std::string path = state_path("bad");
  adam.save(path);

  SGD sgd(SGDOptions{.lr = 0.1, .momentum = 0.9});
  set_grad(x, x);
  sgd.step({{"x", x}});
  EMBER_EXPECT_THROW_WITH(sgd.load(path), IoError, path, "Adam", "SGD");
  EXPECT_EQ(sgd.step_count("x"), 1);
  EMBER_EXPECT_THROW_WITH(sgd.load(path + ".missing"), IoError, ".missing");

  // A parameter store's file is not an optimizer state.
  ParamStore store;
  store.set("w", tensor({1.0}));
  const std::string store_path = state_path("store");
  store.save(store_path);
  Adam other(AdamOptions{.lr = 0.1});
  EMBER_EXPECT_THROW_WITH(other.load(store_path), IoError, store_path);
  std::filesystem::remove(store_path);

  // SGD's state saved with momentum does not load into SGD without it.
  const std::string sgd_path = state_path("sgd");
  sgd.save(sgd_path);
  SGD plain(SGDOptions{.lr = 0.1});
  EMBER_EXPECT_THROW_WITH(plain.load(sgd_path), IoError, "momentum_buffer", "'x'");
  EXPECT_EQ(plain.step_count("x"), 0);
  std::filesystem::remove(sgd_path);

  // Truncated: the safetensors reader's error, naming the file.
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 3);
  Adam again(AdamOptions{.lr = 0.1});
  EMBER_EXPECT_THROW_WITH(again.load(path), IoError, path);
  std::filesystem::remove(path);
}
