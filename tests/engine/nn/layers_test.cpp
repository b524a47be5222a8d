// Linear, Embedding, the containers (Sequential, MLP, Activation), Dropout, LayerNorm and
// BatchNorm1d: values computed here from the definitions, float64 gradients in the input
// and every parameter, and the train / eval behaviour of Dropout and BatchNorm.
#include <cmath>
#include <vector>

#include "nn_test_util.hpp"

namespace ember {
namespace {

using test::f64;

// Row-major values of a tensor.
std::vector<double> vals(const Tensor& t) { return t.to_vector<double>(); }

// ------------------------------------------------------------------------ Linear ----

TEST(Linear, ComputesAffineMapOverLeadingDims) {
  nn::Linear fc(3, 2, true, f64());
  const Tensor x = test::random_normal({4, 5, 3});
  const auto w = vals(fc.weight()), b = vals(*fc.bias()), xv = vals(x);
  std::vector<double> expected;
  for (int r = 0; r < 20; ++r)
    for (int o = 0; o < 2; ++o) {
      double acc = b[o];
      for (int i = 0; i < 3; ++i) acc += xv[r * 3 + i] * w[o * 3 + i];
      expected.push_back(acc);
    }
  const Tensor y = fc(x);
  EXPECT_EQ(y.shape(), (Shape{4, 5, 2}));
  test::expect_values(y, expected, 1e-13);
  EMBER_EXPECT_THROW_WITH(fc(zeros({2, 4}, f64())), ShapeError, "Linear", "(2, 4)");
}

TEST(Linear, Gradients) {
  nn::Linear fc(3, 2, true, f64());
  EMBER_EXPECT_MODULE_GRAD(fc, test::random_normal({4, 3}));
  nn::Linear no_bias(3, 2, false, f64());
  EXPECT_EQ(no_bias.named_parameters().size(), 1u);
  EMBER_EXPECT_MODULE_GRAD(no_bias, test::random_normal({3}));
}

// --------------------------------------------------------------------- Embedding ----

TEST(Embedding, LooksUpRowsForIndicesOfAnyShape) {
  nn::Embedding emb(5, 3, std::nullopt, f64());
  const Tensor idx = from_vector(std::vector<std::int64_t>{4, 0, 4, 2, 1, 1}, {2, 3},
                                 TensorOptions{}.with_dtype(kInt64));
  const Tensor out = emb(idx);
  EXPECT_EQ(out.shape(), (Shape{2, 3, 3}));
  const auto w = vals(emb.weight());
  std::vector<double> expected;
  for (std::int64_t i : {4, 0, 4, 2, 1, 1})
    for (int d = 0; d < 3; ++d) expected.push_back(w[i * 3 + d]);
  test::expect_values(out, expected, 0, 0);
  // Repeated indices accumulate their rows' gradients.
  sum(out).backward();
  test::expect_values(emb.weight().grad(), {1, 1, 1, 2, 2, 2, 1, 1, 1, 0, 0, 0, 2, 2, 2});
  EMBER_EXPECT_MODULE_GRAD(emb, idx);
  EMBER_EXPECT_THROW_WITH(emb(zeros({2})), DTypeError, "Embedding", "int64");
  EMBER_EXPECT_THROW_WITH(emb(test::index_tensor({5})), ValueError, "index 5", "size 5");
}

TEST(Embedding, PaddingRowStartsAtZeroAndGetsNoGradient) {
  nn::Embedding emb(4, 2, -1, f64());  // row 3
  const auto w = vals(emb.weight());
  EXPECT_EQ(w[6], 0.0);
  EXPECT_EQ(w[7], 0.0);
  sum(emb(test::index_tensor({3, 1, 3}))).backward();
  test::expect_values(emb.weight().grad(), {0, 0, 1, 1, 0, 0, 0, 0});
}

// -------------------------------------------------------------------- containers ----

TEST(Sequential, NamesLayersByPositionAsTorch) {
  auto shared = std::make_shared<nn::Linear>(4, 2, true, f64());
  nn::Sequential seq(nn::Linear(3, 4, true, f64()), nn::Activation(tanh), shared);
  EXPECT_EQ(seq.size(), 3u);
  std::vector<std::string> names;
  for (auto& [name, ptr] : seq.named_parameters()) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"}));
  EXPECT_EQ(&seq[2], shared.get());
  const Tensor x = test::random_normal({5, 3});
  test::expect_close(seq(x), (*shared)(tanh(seq[0](x))), 0, 0);
  // Nested containers give nested paths.
  nn::Sequential outer(nn::Sequential(nn::Linear(2, 2, true, f64())),
                       nn::Linear(2, 1, false, f64()));
  EXPECT_EQ(outer.named_parameters()[0].first, "0.0.weight");
  EXPECT_EQ(outer.named_parameters()[2].first, "1.weight");
  EMBER_EXPECT_MODULE_GRAD(seq, x);
}

TEST(MLP, BuildsLinearLayersWithActivationsBetween) {
  nn::MLP net({3, 5, 4, 2}, {.activation = [](const Tensor& x) { return leaky_relu(x, 0.1); },
                             .output_activation = sigmoid,
                             .tensor_options = f64()});
  // Linear, act, Linear, act, Linear, output act: parameters at 0, 2 and 4.
  EXPECT_EQ(net.size(), 6u);
  std::vector<std::string> names;
  for (auto& [name, ptr] : net.named_parameters()) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias", "4.weight",
                                             "4.bias"}));
  EXPECT_EQ(net.num_parameters(), 3 * 5 + 5 + 5 * 4 + 4 + 4 * 2 + 2);
  const Tensor x = test::random_normal({6, 3});
  const Tensor expected = sigmoid(net[4](leaky_relu(net[2](leaky_relu(net[0](x), 0.1)), 0.1)));
  test::expect_close(net(x), expected, 0, 0);
  EMBER_EXPECT_MODULE_GRAD(net, x);
  // No output activation by default; a single layer needs no hidden activation.
  nn::MLP plain({3, 2}, {.activation = nullptr});
  EXPECT_EQ(plain.size(), 1u);
  EMBER_EXPECT_THROW_WITH(nn::MLP({3}), ValueError, "MLP");
}

TEST(Module, MultiOutputModuleHasNoSingleTensorForward) {
  nn::Module bare;
  EMBER_EXPECT_THROW_WITH(bare(zeros({1})), ValueError, "ember::nn::Module",
                          "no single-tensor forward");
}

// ----------------------------------------------------------------------- Dropout ----

TEST(Dropout, DropsAndRescalesInTrainingOnly) {
  Generator gen(7);
  nn::Dropout drop(0.3, &gen);
  const Tensor x = full({200000}, 2.0, f64());
  const auto y = vals(drop(x));
  std::int64_t zeros_seen = 0;
  for (double v : y) {
    if (v == 0.0) {
      ++zeros_seen;
    } else {
      ASSERT_DOUBLE_EQ(v, 2.0 / 0.7);
    }
  }
  // The dropped fraction is Binomial(n, 0.3) / n: sd 0.001.
  EXPECT_NEAR(static_cast<double>(zeros_seen) / y.size(), 0.3, 0.005);
  // Eval mode is the identity; so is p = 0; p = 1 drops everything.
  drop.eval();
  EXPECT_FALSE(drop.is_training());
  EXPECT_EQ(drop(x).data_ptr(), x.data_ptr());
  EXPECT_EQ(nn::Dropout(0.0)(x).data_ptr(), x.data_ptr());
  test::expect_values(nn::Dropout(1.0)(tensor({1.0, -2.0}, f64())), {0.0, 0.0});
  EMBER_EXPECT_THROW_WITH(nn::Dropout(1.5), ValueError, "Dropout", "1.5");
}

TEST(Dropout, MasksAreReproducibleBySeedAndGradientsFollowTheMask) {
  Generator a(11), b(11);
  nn::Dropout da(0.5, &a), db(0.5, &b);
  const Tensor x = test::random_normal({64}, true);
  const Tensor ya = da(x), yb = db(x);
  test::expect_close(ya, yb, 0, 0);
  sum(ya).backward();
  const auto g = vals(x.grad()), y = vals(ya);
  for (std::size_t i = 0; i < g.size(); ++i) EXPECT_EQ(g[i], y[i] == 0.0 ? 0.0 : 2.0);
  // The draws come from the thread's generator when none is given (the seed handler's).
  nn::Dropout free_drop(0.5);
  set_rng_seed(3);
  const Tensor first = free_drop(x.detach());
  set_rng_seed(3);
  test::expect_close(free_drop(x.detach()), first, 0, 0);
}

// --------------------------------------------------------------------- LayerNorm ----

TEST(LayerNorm, NormalizesTrailingDimsThenScalesAndShifts) {
  nn::LayerNorm ln({2, 3}, 1e-5, true, f64());
  EXPECT_EQ(ln.named_parameters()[0].first, "weight");
  test::expect_values(*ln.named_parameters()[0].second, {1, 1, 1, 1, 1, 1});
  test::expect_values(*ln.named_parameters()[1].second, {0, 0, 0, 0, 0, 0});
  const Tensor w = test::random_normal({2, 3}), b = test::random_normal({2, 3});
  ln.load_state_dict({{"weight", w}, {"bias", b}});
  const Tensor x = test::random_normal({4, 2, 3});
  const auto xv = vals(x), wv = vals(w), bv = vals(b);
  std::vector<double> expected;
  for (int r = 0; r < 4; ++r) {
    double m = 0, v = 0;
    for (int i = 0; i < 6; ++i) m += xv[r * 6 + i] / 6;
    for (int i = 0; i < 6; ++i) v += (xv[r * 6 + i] - m) * (xv[r * 6 + i] - m) / 6;
    for (int i = 0; i < 6; ++i)
      expected.push_back((xv[r * 6 + i] - m) / std::sqrt(v + 1e-5) * wv[i] + bv[i]);
  }
  test::expect_values(ln(x), expected, 1e-12);
  EMBER_EXPECT_MODULE_GRAD(ln, x);
  EMBER_EXPECT_THROW_WITH(ln(zeros({4, 3, 2})), ShapeError, "LayerNorm", "(2, 3)");
  nn::LayerNorm plain({3}, 1e-5, false);
  EXPECT_EQ(plain.num_parameters(), 0);
}

// ------------------------------------------------------------------- BatchNorm1d ----

struct ChannelStats {
  std::vector<double> mean, var;  // var biased
};

// Statistics per channel of an (N, C) or (N, C, L) input.
ChannelStats channel_stats(const Tensor& x) {
  const std::int64_t n = x.size(0), c = x.size(1), l = x.dim() == 3 ? x.size(2) : 1;
  const auto v = vals(x);
  ChannelStats s{std::vector<double>(c, 0.0), std::vector<double>(c, 0.0)};
  const double count = static_cast<double>(n * l);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < c; ++j)
      for (std::int64_t k = 0; k < l; ++k) s.mean[j] += v[(i * c + j) * l + k] / count;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < c; ++j)
      for (std::int64_t k = 0; k < l; ++k) {
        const double d = v[(i * c + j) * l + k] - s.mean[j];
        s.var[j] += d * d / count;
      }
  return s;
}

std::vector<double> batch_normalized(const Tensor& x, const std::vector<double>& mean,
                                     const std::vector<double>& var, double eps) {
  const std::int64_t c = x.size(1), l = x.dim() == 3 ? x.size(2) : 1;
  const auto v = vals(x);
  std::vector<double> out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const std::int64_t j = (static_cast<std::int64_t>(i) / l) % c;
    out.push_back((v[i] - mean[j]) / std::sqrt(var[j] + eps));
  }
  return out;
}

TEST(BatchNorm1d, TrainingUsesBatchStatisticsAndUpdatesRunningOnes) {
  for (const Shape& shape : {Shape{6, 3}, Shape{4, 3, 5}}) {
    SCOPED_TRACE(shape.str());
    nn::BatchNorm1d bn(3, {}, f64());
    std::vector<std::string> buffers;
    for (auto& [name, ptr] : bn.named_buffers()) buffers.push_back(name);
    EXPECT_EQ(buffers,
              (std::vector<std::string>{"running_mean", "running_var", "num_batches_tracked"}));
    EXPECT_EQ(bn.named_buffers()[2].second->dtype(), kInt64);
    const Tensor x = test::random_normal(shape) * 2.0 + 1.0;
    const ChannelStats s = channel_stats(x);
    test::expect_values(bn(x), batch_normalized(x, s.mean, s.var, 1e-5), 1e-12);
    const double n = static_cast<double>(x.numel() / 3);
    std::vector<double> rm, rv;
    for (int j = 0; j < 3; ++j) {
      rm.push_back(0.1 * s.mean[j]);
      rv.push_back(0.9 + 0.1 * s.var[j] * n / (n - 1));
    }
    test::expect_values(bn.running_mean(), rm, 1e-12);
    test::expect_values(bn.running_var(), rv, 1e-12);
    EXPECT_EQ(bn.num_batches_tracked(), 1);
    // Eval mode normalizes by the running statistics and leaves them alone.
    bn.eval();
    test::expect_values(bn(x), batch_normalized(x, rm, rv, 1e-5), 1e-12);
    test::expect_values(bn.running_mean(), rm, 1e-12);
    EXPECT_EQ(bn.num_batches_tracked(), 1);
  }
}

TEST(BatchNorm1d, CumulativeAverageWithoutMomentum) {
  nn::BatchNorm1d bn(2, {.momentum = std::nullopt}, f64());
  const Tensor a = test::random_normal({5, 2}), b = test::random_normal({5, 2});
  bn(a);
  bn(b);
  EXPECT_EQ(bn.num_batches_tracked(), 2);
  const ChannelStats sa = channel_stats(a), sb = channel_stats(b);
  test::expect_values(bn.running_mean(),
                      {(sa.mean[0] + sb.mean[0]) / 2, (sa.mean[1] + sb.mean[1]) / 2}, 1e-12);
}

TEST(BatchNorm1d, GradientsInBothModesAndErrors) {
  nn::BatchNorm1d bn(3, {}, f64());
  bn.load_state_dict(
      {{"weight", test::random_normal({3})},
       {"bias", test::random_normal({3})},
       {"running_mean", test::random_normal({3})},
       {"running_var", test::uniform({3}, 0.5, 2.0)},
       {"num_batches_tracked", scalar_tensor(3, TensorOptions{}.with_dtype(kInt64))}});
  EMBER_EXPECT_MODULE_GRAD(bn, test::random_normal({4, 3, 2}));
  bn.eval();
  EMBER_EXPECT_MODULE_GRAD(bn, test::random_normal({4, 3}));
  bn.train();
  EMBER_EXPECT_THROW_WITH(bn(zeros({1, 3}, f64())), ShapeError, "more than one value");
  EMBER_EXPECT_THROW_WITH(bn(zeros({4, 2}, f64())), ShapeError, "BatchNorm1d", "(4, 2)");
  // Without running statistics eval mode uses the batch's, and there are no buffers.
  nn::BatchNorm1d stateless(3, {.affine = false, .track_running_stats = false}, f64());
  EXPECT_TRUE(stateless.named_buffers().empty());
  EXPECT_EQ(stateless.num_parameters(), 0);
  stateless.eval();
  const Tensor x = test::random_normal({6, 3});
  const ChannelStats s = channel_stats(x);
  test::expect_values(stateless(x), batch_normalized(x, s.mean, s.var, 1e-5), 1e-12);
}

}  // namespace
}  // namespace ember
