// GRUCell against torch's gate equations written out per element, and its float64
// gradients in the input, the hidden state and all four parameters.
#include <cmath>
#include <vector>

#include "nn_test_util.hpp"

namespace ember {
namespace {

using test::f64;

double sig(double v) { return 1 / (1 + std::exp(-v)); }

// One GRU step for each row of x (N, I) and h (N, H) with torch's (r, z, n) gate order.
std::vector<double> gru_reference(nn::GRUCell& cell, const Tensor& x, const Tensor& h) {
  auto p = cell.state_dict();
  const auto wi = p.at("weight_ih").to_vector<double>(), wh = p.at("weight_hh").to_vector<double>();
  const auto bi = p.at("bias_ih").to_vector<double>(), bh = p.at("bias_hh").to_vector<double>();
  const auto xv = x.to_vector<double>(), hv = h.to_vector<double>();
  const std::int64_t n = x.size(0), in = x.size(1), hs = cell.hidden_size();
  // Row `row` of W (3H, cols) times vector v, plus bias.
  auto affine = [](const std::vector<double>& w, const std::vector<double>& b, std::int64_t row,
                   std::int64_t cols, const double* v) {
    double acc = b[row];
    for (std::int64_t k = 0; k < cols; ++k) acc += w[row * cols + k] * v[k];
    return acc;
  };
  std::vector<double> out;
  for (std::int64_t s = 0; s < n; ++s) {
    const double* xs = xv.data() + s * in;
    const double* hp = hv.data() + s * hs;
    for (std::int64_t j = 0; j < hs; ++j) {
      const double r = sig(affine(wi, bi, j, in, xs) + affine(wh, bh, j, hs, hp));
      const double z = sig(affine(wi, bi, hs + j, in, xs) + affine(wh, bh, hs + j, hs, hp));
      const double c =
          std::tanh(affine(wi, bi, 2 * hs + j, in, xs) + r * affine(wh, bh, 2 * hs + j, hs, hp));
      out.push_back((1 - z) * c + z * hp[j]);
    }
  }
  return out;
}

TEST(GRUCell, FollowsTorchsEquations) {
  nn::GRUCell cell(3, 4, true, f64());
  std::vector<std::string> names;
  for (auto& [name, ptr] : cell.named_parameters()) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"weight_ih", "weight_hh", "bias_ih", "bias_hh"}));
  EXPECT_EQ(cell.named_parameters()[0].second->shape(), (Shape{12, 3}));
  EXPECT_EQ(cell.named_parameters()[1].second->shape(), (Shape{12, 4}));
  const Tensor x = test::random_normal({5, 3}), h = test::random_normal({5, 4});
  test::expect_values(cell(x, h), gru_reference(cell, x, h), 1e-13);
  // No hidden state: zeros. Unbatched: one row.
  test::expect_values(cell(x), gru_reference(cell, x, zeros({5, 4}, f64())), 1e-13);
  const Tensor y1 = cell(x.select(0, 2), h.select(0, 2));
  EXPECT_EQ(y1.shape(), (Shape{4}));
  test::expect_close(y1, cell(x, h).select(0, 2), 1e-15, 0);
  EMBER_EXPECT_THROW_WITH(cell(x, zeros({5, 3}, f64())), ShapeError, "GRUCell", "(5, 3)");
  EMBER_EXPECT_THROW_WITH(cell(zeros({5, 2}, f64())), ShapeError, "GRUCell", "(5, 2)");
}

TEST(GRUCell, Gradients) {
  nn::GRUCell cell(3, 2, true, f64());
  EMBER_EXPECT_MODULE_GRAD(cell, test::random_normal({4, 3}));
  // Three steps of one cell, in the inputs, the first hidden state and the parameters.
  std::vector<Tensor> inputs{test::random_normal({3, 4, 3}, true),
                             test::random_normal({4, 2}, true)};
  std::vector<std::string> paths;
  for (auto& [path, ptr] : cell.named_parameters()) {
    paths.push_back(path);
    inputs.push_back(ptr->detach().clone().requires_grad_());
  }
  EMBER_EXPECT_GRAD(
      [&](const std::vector<Tensor>& in) {
        nn::StateDict params;
        for (std::size_t k = 0; k < paths.size(); ++k) params.emplace(paths[k], in[k + 2]);
        const nn::ParameterScope scope(cell, params);
        Tensor h = in[1];
        for (int t = 0; t < 3; ++t) h = cell(in[0].select(0, t), h);
        return h;
      },
      inputs);
  nn::GRUCell no_bias(3, 2, false, f64());
  EXPECT_EQ(no_bias.num_parameters(), 6 * 3 + 6 * 2);
  EMBER_EXPECT_MODULE_GRAD(no_bias, test::random_normal({3}));
}

}  // namespace
}  // namespace ember
