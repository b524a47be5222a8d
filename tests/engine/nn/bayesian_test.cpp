// Networks in probabilistic programs: module() registration (parameters, not buffers),
// functional_call, sample_parameters, lift over module(), a Bayesian linear regression whose
// mean-field posterior is known exactly, and an amortized guide (an encoder with two outputs)
// fitted by SVI on a toy model with a closed-form posterior.
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "nn_test_util.hpp"

namespace ember {
namespace {

using test::f64;

class NnPpl : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_param_store();
    set_rng_seed(123);
  }
  void TearDown() override { clear_param_store(); }
};

TEST_F(NnPpl, ModuleRegistersParametersOfEveryLayerButNoBuffers) {
  nn::Sequential net(nn::Conv2d(1, 2, {3, 3}, {.padding = {1, 1}}, true, f64()),
                     nn::Activation([](const Tensor& x) { return x.flatten().unsqueeze(0); }),
                     nn::LayerNorm({32}, 1e-5, true, f64()), nn::BatchNorm1d(32, {}, f64()),
                     nn::Linear(32, 3, true, f64()), nn::GRUCell(3, 2, true, f64()));
  handlers::TraceHandler tracer;
  module("net", net);
  const std::vector<std::string> names = get_param_store().names();
  EXPECT_EQ(names,
            (std::vector<std::string>{
                "net$$$0.bias", "net$$$0.weight", "net$$$2.bias", "net$$$2.weight", "net$$$3.bias",
                "net$$$3.weight", "net$$$4.bias", "net$$$4.weight", "net$$$5.bias_hh",
                "net$$$5.bias_ih", "net$$$5.weight_hh", "net$$$5.weight_ih"}));
  EXPECT_EQ(tracer.trace().param_nodes().size(), names.size());
  // The network computes with the stored leaves; gradients reach them.
  net.eval();
  sum(net(test::random_normal({1, 4, 4}))).backward();
  EXPECT_TRUE(get_param_store().unconstrained("net$$$0.weight").grad().defined());
  EXPECT_TRUE(get_param_store().unconstrained("net$$$5.weight_ih").grad().defined());
}

TEST_F(NnPpl, FunctionalCallSubstitutesAndRestores) {
  nn::Linear fc(2, 1, true, f64());
  const Tensor w0 = fc.weight();
  const Tensor w = tensor({{2.0, -1.0}}, f64()), b = tensor({0.5}, f64());
  const Tensor x = tensor({{1.0, 3.0}}, f64());
  test::expect_values(nn::functional_call(fc, {{"weight", w}, {"bias", b}}, x), {-0.5});
  EXPECT_EQ(fc.weight().data_ptr(), w0.data_ptr());
  // Only some parameters; a bad path or shape changes nothing.
  test::expect_values(nn::functional_call(fc, {{"bias", b}}, zeros({1, 2}, f64())), {0.5});
  EMBER_EXPECT_THROW_WITH(nn::functional_call(fc, {{"bias", b}, {"weights", w}}, x), ValueError,
                          "'weights'");
  EMBER_EXPECT_THROW_WITH(nn::functional_call(fc, {{"weight", b}}, x), ShapeError, "'weight'");
  EXPECT_EQ(fc.weight().data_ptr(), w0.data_ptr());
  // Restored after an exception inside the call too.
  EXPECT_THROW(nn::functional_call(fc, {{"weight", w}}, zeros({3}, f64())), ShapeError);
  EXPECT_EQ(fc.weight().data_ptr(), w0.data_ptr());
}

TEST_F(NnPpl, SampleParametersDrawsOneSitePerParameter) {
  nn::MLP net({2, 3, 1}, {.tensor_options = f64()});
  const auto before = net.parameters()[0].to_vector<double>();
  handlers::TraceHandler tracer;
  const nn::StateDict w = nn::sample_parameters(
      "bnn", net,
      [](const std::string&, const Tensor& p) { return dist::Normal(zeros_like(p), 1.0); });
  ASSERT_EQ(w.size(), 4u);
  const Trace& tr = tracer.trace();
  const Site& site = tr.at("bnn$$$0.weight");
  EXPECT_EQ(site.fn.event_shape(), (Shape{3, 2}));
  EXPECT_EQ(site.fn.batch_shape(), (Shape{}));
  EXPECT_EQ(site.value.data_ptr(), w.at("0.weight").data_ptr());
  EXPECT_EQ(tr.at("bnn$$$2.bias").fn.event_shape(), (Shape{1}));
  // The log-density is the sum over the parameter's elements.
  const auto v = w.at("0.weight").to_vector<double>();
  double expected = 0;
  for (double e : v) expected += -0.5 * e * e - 0.5 * std::log(2 * std::numbers::pi);
  EXPECT_NEAR(site.fn.log_prob(site.value).item(), expected, 1e-12);
  // The network keeps its own parameters.
  EXPECT_EQ(net.parameters()[0].to_vector<double>(), before);
  EXPECT_NE(nn::functional_call(net, w, ones({1, 2}, f64())).item(),
            net(ones({1, 2}, f64())).item());
  // A prior of the parameter's own shape is used as it is.
  nn::sample_parameters("full", net, [](const std::string&, const Tensor& p) {
    return dist::Normal(zeros_like(p), ones_like(p));
  });
  EXPECT_EQ(tr.at("full$$$2.weight").fn.event_shape(), (Shape{1, 3}));
  EMBER_EXPECT_THROW_WITH(nn::sample_parameters("bad", net,
                                                [](const std::string&, const Tensor&) {
                                                  return dist::Normal(zeros({5}, f64()), 1.0);
                                                }),
                          ShapeError);
}

TEST_F(NnPpl, LiftTurnsModuleParamsIntoSampleSites) {
  nn::Linear fc(2, 1, true, f64());
  const std::unordered_map<std::string, dist::Distribution> priors = {
      {"net$$$weight", dist::Normal(zeros({1, 2}, f64()), 1.0).to_event(2)},
      {"net$$$bias", dist::Normal(zeros({1}, f64()), 1.0).to_event(1)}};
  auto program = [&] {
    module("net", fc);
    return fc(ones({4, 2}, f64()));
  };
  handlers::TraceHandler tracer;
  const Tensor y = handlers::lift(program, priors)();
  const Trace& tr = tracer.trace();
  EXPECT_EQ(tr.at("net$$$weight").type, SiteType::Sample);
  EXPECT_EQ(tr.at("net$$$bias").type, SiteType::Sample);
  EXPECT_TRUE(get_param_store().empty());
  const auto wv = tr.at("net$$$weight").value.to_vector<double>();
  const double bv = tr.at("net$$$bias").value.item();
  EXPECT_NEAR(y.to_vector<double>()[0], wv[0] + wv[1] + bv, 1e-12);
}

// y = w x + b + N(0, 0.3^2) with N(0, 1) priors: a Bayesian Linear(1, 1). The posterior is
// Gaussian with precision L = I + X^T X / s^2 and mean L^-1 X^T y / s^2, X = [x, 1]; the best
// mean-field Gaussian has the same means and variances 1 / L_ii.
TEST_F(NnPpl, BayesianLinearRegressionFindsTheExactMeanFieldPosterior) {
  const int n = 40;
  const double s = 0.3;
  const Tensor x = linspace(-1.0, 1.0, n, f64()).unsqueeze(1);
  const Tensor y = x.squeeze(1) * 1.5 - 0.5 + test::random_normal({n}) * s;
  double sxx = 0, sx = 0, sxy = 0, sy = 0;
  const auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
  for (int i = 0; i < n; ++i) {
    sxx += xv[i] * xv[i];
    sx += xv[i];
    sxy += xv[i] * yv[i];
    sy += yv[i];
  }
  const double l00 = 1 + sxx / (s * s), l01 = sx / (s * s), l11 = 1 + n / (s * s);
  const double det = l00 * l11 - l01 * l01;
  const double mw = (l11 * sxy - l01 * sy) / (s * s) / det;
  const double mb = (l00 * sy - l01 * sxy) / (s * s) / det;

  nn::Linear net(1, 1, true, f64());
  auto model = [&](const Tensor& xs, const Tensor& ys) {
    const auto w = nn::sample_parameters("net", net, [](const std::string&, const Tensor& p) {
      return dist::Normal(zeros_like(p), 1.0);
    });
    const Tensor mean = nn::functional_call(net, w, xs).squeeze(-1);
    auto data = plate("data", n);
    sample("obs", dist::Normal(mean, s), ys);
  };
  auto guide = [&](const Tensor&, const Tensor&) {
    nn::sample_parameters("net", net, [](const std::string& path, const Tensor& p) {
      return dist::Normal(param("loc." + path, zeros_like(p)),
                          param("scale." + path, full_like(p, 0.1), constraints::positive));
    });
  };
  SVI svi(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO({.num_particles = 4}));
  double w_loc = 0, b_loc = 0, w_scale = 0, b_scale = 0;
  const int steps = 2500, averaged = 1000;
  for (int i = 0; i < steps; ++i) {
    svi.step(x, y);
    if (i >= steps - averaged) {
      w_loc += param("loc.weight").item() / averaged;
      b_loc += param("loc.bias").item() / averaged;
      w_scale += param("scale.weight").item() / averaged;
      b_scale += param("scale.bias").item() / averaged;
    }
  }
  EXPECT_NEAR(w_loc, mw, 0.01);
  EXPECT_NEAR(b_loc, mb, 0.01);
  EXPECT_NEAR(w_scale, 1 / std::sqrt(l00), 0.1 / std::sqrt(l00));
  EXPECT_NEAR(b_scale, 1 / std::sqrt(l11), 0.1 / std::sqrt(l11));
  // The network itself was never changed.
  EXPECT_EQ(net.parameters()[0].grad().defined(), false);
}

// An encoder with two outputs, the form a VAE's guide takes.
class Encoder : public nn::Module {
 public:
  struct Out {
    Tensor loc, scale;
  };
  Encoder(std::int64_t dim, Generator* gen)
      : hidden_(register_module("hidden", std::make_shared<nn::Linear>(dim, 8, true, f64(), gen))),
        loc_(register_module("loc", std::make_shared<nn::Linear>(8, 1, true, f64(), gen))),
        scale_(register_module("scale", std::make_shared<nn::Linear>(8, 1, true, f64(), gen))) {}
  Out operator()(const Tensor& x) {
    const Tensor h = (*hidden_)(x);
    return {(*loc_)(h).squeeze(-1), softplus((*scale_)(h)).squeeze(-1)};
  }

 private:
  std::shared_ptr<nn::Linear> hidden_, loc_, scale_;
};

// z_i ~ N(0, 1), x_i ~ N(z_i a, s^2 I) in 3 dims: the posterior of z_i is normal with precision
// 1 + |a|^2 / s^2 and mean (a . x_i / s^2) / precision, which the encoder must learn for every
// x (amortized), from mini-batches.
TEST_F(NnPpl, AmortizedEncoderGuideLearnsTheExactPosterior) {
  const std::int64_t n = 400, batch = 50;
  const double s = 0.5;
  const Tensor a = tensor({1.0, -0.5, 0.8}, f64());
  const Tensor z_true = test::random_normal({n});
  const Tensor x = z_true.unsqueeze(1) * a + test::random_normal({n, 3}) * s;
  Generator gen(8);
  Encoder encoder(3, &gen);
  const auto [loc0, scale0] = encoder(x);  // structured bindings on the multi-output forward
  EXPECT_EQ(loc0.shape(), (Shape{n}));
  EXPECT_EQ(scale0.shape(), (Shape{n}));

  auto model = [&](const Tensor& data) {
    auto points = plate("points", n, {.subsample_size = batch});
    const Tensor xb = points.subsample(data);
    const Tensor z = sample("z", dist::Normal(zeros({}, f64()), 1.0));
    sample("x", dist::Normal(z.unsqueeze(-1) * a, s).to_event(1), xb);
  };
  auto guide = [&](const Tensor& data) {
    module("encoder", encoder);
    auto points = plate("points", n, {.subsample_size = batch});
    const auto [loc, scale] = encoder(points.subsample(data));
    sample("z", dist::Normal(loc, scale));
  };
  SVI svi(model, guide, optim::Adam({.lr = 0.01}), Trace_ELBO());
  // The encoder's answers at new points, averaged over the last steps (the iterates of a
  // single-sample ELBO jitter about the optimum).
  const double precision = 1 + (1.0 + 0.25 + 0.64) / (s * s);
  const Tensor x_test = tensor({{1.0, 0.0, 0.0}, {0.5, -1.0, 2.0}, {-1.0, 0.3, -0.4}}, f64());
  const int steps = 3000, averaged = 1000;
  std::vector<double> loc_avg(3, 0.0), scale_avg(3, 0.0);
  for (int i = 0; i < steps; ++i) {
    svi.step(x);
    if (i < steps - averaged) continue;
    NoGradGuard no_grad;
    const auto [loc, scale] = encoder(x_test);
    const auto lv = loc.to_vector<double>(), sv = scale.to_vector<double>();
    for (int k = 0; k < 3; ++k) {
      loc_avg[k] += lv[k] / averaged;
      scale_avg[k] += sv[k] / averaged;
    }
  }
  const auto exact = (matmul(x_test, a) / (s * s) / precision).to_vector<double>();
  for (int k = 0; k < 3; ++k) {
    EXPECT_NEAR(loc_avg[k], exact[k], 0.03) << "test point " << k;
    EXPECT_NEAR(scale_avg[k], 1 / std::sqrt(precision), 0.015) << "test point " << k;
  }
}

}  // namespace
}  // namespace ember
