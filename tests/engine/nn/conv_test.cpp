// conv2d and Conv2d against a direct loop over the definition (torch's cross-correlation
// with stride, zero padding, dilation and groups), float64 gradients through im2col/col2im
// and the GEMM, and the argument checks.
#include <vector>

#include "nn_test_util.hpp"

namespace ember {
namespace {

using test::f64;

// out[n, o, i, j] = b[o] + sum_{c in o's group, p, q} w[o, c, p, q] x[n, g*Cg + c, i*s - pad
// + p*d, j*s - pad + q*d], zero outside the image.
Tensor conv2d_reference(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& o) {
  const std::int64_t n = x.size(0), c = x.size(1), h = x.size(2), wd = x.size(3);
  const std::int64_t oc = w.size(0), cg = w.size(1), kh = w.size(2), kw = w.size(3);
  const std::int64_t oh = (h + 2 * o.padding[0] - o.dilation[0] * (kh - 1) - 1) / o.stride[0] + 1;
  const std::int64_t ow = (wd + 2 * o.padding[1] - o.dilation[1] * (kw - 1) - 1) / o.stride[1] + 1;
  const auto xv = x.to_vector<double>(), wv = w.to_vector<double>();
  const std::vector<double> bv = b.defined() ? b.to_vector<double>() : std::vector<double>(oc, 0);
  const std::int64_t per_group = oc / o.groups;
  std::vector<double> out;
  for (std::int64_t in = 0; in < n; ++in)
    for (std::int64_t io = 0; io < oc; ++io)
      for (std::int64_t i = 0; i < oh; ++i)
        for (std::int64_t j = 0; j < ow; ++j) {
          double acc = bv[io];
          const std::int64_t group = io / per_group;
          for (std::int64_t ic = 0; ic < cg; ++ic)
            for (std::int64_t p = 0; p < kh; ++p)
              for (std::int64_t q = 0; q < kw; ++q) {
                const std::int64_t y = i * o.stride[0] - o.padding[0] + p * o.dilation[0];
                const std::int64_t z = j * o.stride[1] - o.padding[1] + q * o.dilation[1];
                if (y < 0 || y >= h || z < 0 || z >= wd) continue;
                const std::int64_t channel = group * cg + ic;
                acc += wv[((io * cg + ic) * kh + p) * kw + q] *
                       xv[((in * c + channel) * h + y) * wd + z];
              }
          out.push_back(acc);
        }
  return from_vector(out, {n, oc, oh, ow}, f64());
}

struct ConvCase {
  const char* name;
  Shape input;
  std::int64_t out_channels;
  std::array<std::int64_t, 2> kernel;
  Conv2dOptions opts;
};

std::vector<ConvCase> cases() {
  return {
      {"plain", {2, 3, 5, 6}, 4, {3, 3}, {}},
      {"stride and padding", {2, 3, 7, 6}, 2, {3, 2}, {.stride = {2, 1}, .padding = {1, 2}}},
      {"dilation", {1, 2, 7, 8}, 3, {2, 3}, {.padding = {1, 0}, .dilation = {2, 3}}},
      {"groups", {2, 4, 5, 5}, 6, {3, 3}, {.stride = {2, 2}, .padding = {1, 1}, .groups = 2}},
      {"depthwise", {1, 3, 4, 4}, 3, {2, 2}, {.groups = 3}},
      {"1x1", {3, 5, 2, 3}, 2, {1, 1}, {}},
  };
}

TEST(Conv2d, MatchesTheDefinition) {
  for (const ConvCase& k : cases()) {
    SCOPED_TRACE(k.name);
    nn::Conv2d conv(k.input[1], k.out_channels, k.kernel, k.opts, true, f64());
    const Tensor x = test::random_normal(k.input);
    const Tensor expected = conv2d_reference(x, conv.weight(), *conv.bias(), k.opts);
    test::expect_close(conv(x), expected, 1e-12, 1e-12);
    // The functional form without bias; a strided (non-contiguous) input.
    const Tensor xt = test::random_normal({k.input[0], k.input[1], k.input[3], k.input[2]});
    const Tensor strided = xt.transpose(2, 3);
    test::expect_close(conv2d(strided, conv.weight(), Tensor(), k.opts),
                       conv2d_reference(strided.contiguous(), conv.weight(), Tensor(), k.opts),
                       1e-12, 1e-12);
  }
}

TEST(Conv2d, GradientsInInputWeightAndBias) {
  for (const ConvCase& k : cases()) {
    SCOPED_TRACE(k.name);
    nn::Conv2d conv(k.input[1], k.out_channels, k.kernel, k.opts, true, f64());
    EMBER_EXPECT_MODULE_GRAD(conv, test::random_normal(k.input));
  }
}

TEST(Conv2d, ParametersAndUnbatchedInput) {
  nn::Conv2d conv(4, 6, {3, 2}, {.groups = 2}, true, f64());
  std::vector<std::string> names;
  for (auto& [name, ptr] : conv.named_parameters()) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(conv.weight().shape(), (Shape{6, 2, 3, 2}));
  const Tensor x = test::random_normal({4, 5, 5});
  const Tensor y = conv(x);
  EXPECT_EQ(y.shape(), (Shape{6, 3, 4}));
  test::expect_close(y, conv(x.unsqueeze(0)).squeeze(0), 0, 0);
  nn::Conv2d no_bias(4, 2, {1, 1}, {}, false);
  EXPECT_EQ(no_bias.bias(), nullptr);
  EXPECT_EQ(no_bias.num_parameters(), 8);
}

TEST(Conv2d, Errors) {
  const Tensor w = zeros({4, 3, 3, 3});
  EMBER_EXPECT_THROW_WITH(conv2d(zeros({2, 2, 5, 5}), w), ShapeError, "conv2d", "(2, 2, 5, 5)",
                          "(4, 3, 3, 3)");
  EMBER_EXPECT_THROW_WITH(conv2d(zeros({1, 3, 2, 5}), w), ShapeError, "conv2d",
                          "smaller than the kernel");
  EMBER_EXPECT_THROW_WITH(conv2d(zeros({3, 5}), w), ShapeError, "(N, C, H, W)");
  EMBER_EXPECT_THROW_WITH(conv2d(zeros({1, 3, 5, 5}), w, zeros({3})), ShapeError, "bias");
  EMBER_EXPECT_THROW_WITH(conv2d(zeros({1, 3, 5, 5}), w, Tensor(), {.stride = {0, 1}}), ValueError,
                          "stride");
  EMBER_EXPECT_THROW_WITH(nn::Conv2d(3, 4, {3, 3}, {.groups = 2}), ValueError, "groups");
}

}  // namespace
}  // namespace ember
