// Views and shape ops of engine/ops/views.cpp (reshape, view, unsqueeze, squeeze, expand,
// transpose, permute, slice, select, narrow, flatten) and the copying cat, stack and pad:
// values, memory sharing, gradients and errors. Also to(dtype), clone and contiguous grads.
#include <gtest/gtest.h>

#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

namespace {
// 0..23 as (2, 3, 4).
Tensor cube() { return arange(24.0, f64()).reshape({2, 3, 4}); }
}  // namespace

// ------------------------------------------------------------------------ values ----
TEST(Views, ReshapeAndViewShareMemoryWhenContiguous) {
  Tensor x = cube();
  Tensor r = x.reshape({4, -1});
  EXPECT_EQ(r.shape(), (Shape{4, 6}));
  EXPECT_EQ(r.data_ptr(), x.data_ptr());
  Tensor v = x.view({6, 4});
  EXPECT_EQ(v.data_ptr(), x.data_ptr());
  x.data<double>()[5] = -1.0;
  EXPECT_EQ(values(v)[5], -1.0);
  EXPECT_EQ(values(r)[5], -1.0);
  EXPECT_EQ(x.flatten().shape(), (Shape{24}));
  EXPECT_EQ(scalar_tensor(2.0).reshape({1, 1}).shape(), (Shape{1, 1}));
  EXPECT_EQ(ones({1, 1}).reshape({}).dim(), 0);
  EXPECT_EQ(zeros({0, 3}).reshape({3, 0}).shape(), (Shape{3, 0}));
  // -1 is ambiguous next to a zero-size dim.
  EXPECT_THROW(zeros({0, 3}).reshape({0, -1}), ShapeError);
}

TEST(Views, ReshapeOfNonContiguousCopiesAndViewThrows) {
  Tensor x = cube();
  Tensor t = x.transpose(1, 2);  // (2, 4, 3)
  Tensor r = t.reshape({2, 12});
  EXPECT_NE(r.data_ptr(), x.data_ptr());
  EXPECT_TRUE(r.is_contiguous());
  expect_values(r.select(0, 0), {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  EMBER_EXPECT_THROW_WITH(t.view({2, 12}), ShapeError, "view", "(2, 4, 3)", "(2, 12)");
  // Splitting or merging dims that stay contiguous in memory is still a view.
  Tensor s = x.slice(2, 0, 4, 2);  // (2, 3, 2), strides (12, 4, 2)
  Tensor sv = s.view({6, 2});
  EXPECT_EQ(sv.data_ptr(), x.data_ptr());
  expect_values(sv, {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22});
  Tensor tv = t.view({2, 2, 2, 3});  // splits the transposed dim of size 4
  EXPECT_EQ(tv.data_ptr(), x.data_ptr());
  expect_values(tv.select(0, 1).select(0, 1).select(0, 0), {14, 18, 22});
}

TEST(Views, ReshapeErrors) {
  Tensor x = cube();
  EMBER_EXPECT_THROW_WITH(x.reshape({5, 5}), ShapeError, "(5, 5)", "24");
  EMBER_EXPECT_THROW_WITH(x.reshape({-1, -1}), ShapeError, "-1");
  EMBER_EXPECT_THROW_WITH(x.reshape({5, -1}), ShapeError, "(2, 3, 4)", "(5, -1)");
  EXPECT_THROW(x.view({-2, 12}), ShapeError);
}

TEST(Views, UnsqueezeSqueeze) {
  Tensor x = arange(6.0, f64()).reshape({2, 3});
  EXPECT_EQ(x.unsqueeze(0).shape(), (Shape{1, 2, 3}));
  EXPECT_EQ(x.unsqueeze(-1).shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(x.unsqueeze(1).shape(), (Shape{2, 1, 3}));
  EXPECT_EQ(x.unsqueeze(2).data_ptr(), x.data_ptr());
  Tensor y = zeros({1, 3, 1, 2});
  EXPECT_EQ(y.squeeze().shape(), (Shape{3, 2}));
  EXPECT_EQ(y.squeeze(0).shape(), (Shape{3, 1, 2}));
  EXPECT_EQ(y.squeeze(-2).shape(), (Shape{1, 3, 2}));
  EXPECT_EQ(y.squeeze(1).shape(), y.shape());  // not size 1: unchanged
  EXPECT_EQ(ones({1, 1}).squeeze().dim(), 0);
  EXPECT_EQ(x.t().unsqueeze(1).squeeze(1).strides(), x.t().strides());
  EMBER_EXPECT_THROW_WITH(x.unsqueeze(3), ShapeError, "unsqueeze", "dim 3");
  EMBER_EXPECT_THROW_WITH(x.squeeze(2), ShapeError, "squeeze", "dim 2");
}

TEST(Views, ExpandSharesMemoryWithStrideZero) {
  Tensor x = tensor({1.0, 2.0, 3.0}, f64()).reshape({3, 1});
  Tensor e = x.expand({2, 3, 4});
  EXPECT_EQ(e.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(e.strides()[0], 0);
  EXPECT_EQ(e.strides()[2], 0);
  EXPECT_EQ(e.data_ptr(), x.data_ptr());
  EXPECT_EQ(sum(e).item(), 2 * 4 * 6.0);
  EXPECT_EQ(x.expand({-1, 5}).shape(), (Shape{3, 5}));
  EXPECT_EQ(x.expand({3, 0}).shape(), (Shape{3, 0}));
  EMBER_EXPECT_THROW_WITH(x.expand({4, 4}), ShapeError, "(3, 1)", "(4, 4)");
  EMBER_EXPECT_THROW_WITH(x.expand({4}), ShapeError, "(3, 1)", "(4)");
  EXPECT_THROW(x.expand({-1, 3, 4}), ShapeError);
  EXPECT_THROW(x.expand({3, -2}), ShapeError);
}

TEST(Views, TransposePermute) {
  Tensor x = cube();
  Tensor t = x.transpose(0, 2);
  EXPECT_EQ(t.shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(t.data_ptr(), x.data_ptr());
  expect_values(t.select(0, 1).select(0, 2), {9, 21});
  Tensor p = x.permute({2, 0, 1});
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  expect_values(p.select(0, 3), {3, 7, 11, 15, 19, 23});
  EXPECT_EQ(x.permute({-1, -3, -2}).shape(), (Shape{4, 2, 3}));
  Tensor m = arange(6.0, f64()).reshape({2, 3});
  expect_values(m.t(), {0, 3, 1, 4, 2, 5});
  EXPECT_EQ(m.t().t().strides(), m.strides());
  EXPECT_EQ(tensor({1.0, 2.0}).t().shape(), (Shape{2}));  // 1-d t() is itself
  EMBER_EXPECT_THROW_WITH(x.permute({0, 1}), ShapeError, "permute", "2 dims", "3 dims");
  EMBER_EXPECT_THROW_WITH(x.permute({0, 1, 1}), ShapeError, "repeats");
  EMBER_EXPECT_THROW_WITH(x.permute({0, 1, 3}), ShapeError, "permute", "dim 3");
  // The identity order (in any spelling) is the tensor itself, as a reshape to its own shape
  // is: no view and no gradient node, and gradients reach it as they would the tensor.
  Tensor w = arange(6.0, f64()).reshape({2, 3}).requires_grad_();
  Tensor y = w * 2.0;
  for (const std::vector<int>& order : {std::vector<int>{0, 1}, std::vector<int>{-2, -1}}) {
    Tensor same = y.permute(order);
    EXPECT_EQ(same.impl_ptr(), y.impl_ptr());
    EXPECT_EQ(same.grad_fn(), y.grad_fn());
  }
  EXPECT_NE(y.permute({1, 0}).impl_ptr(), y.impl_ptr());
  sum(y.permute({0, 1}) * arange(6.0, f64()).reshape({2, 3})).backward();
  expect_values(w.grad(), {0, 2, 4, 6, 8, 10});
  EMBER_EXPECT_THROW_WITH(x.transpose(0, 3), ShapeError, "transpose", "dim 3");
}

TEST(Views, SliceSelectNarrow) {
  Tensor x = arange(10.0, f64());
  expect_values(x.slice(0, 2, 5), {2, 3, 4});
  expect_values(x.slice(0, 1, 10, 3), {1, 4, 7});
  expect_values(x.slice(0, -3, 10), {7, 8, 9});
  expect_values(x.slice(0, 0, -8), {0, 1});
  expect_values(x.slice(0, 8, 100), {8, 9});  // end clamps
  EXPECT_EQ(x.slice(0, 6, 2).numel(), 0);     // empty, not an error
  EXPECT_EQ(x.slice(0, 2, 5).data_ptr(), static_cast<double*>(x.data_ptr()) + 2);
  expect_values(x.narrow(0, 4, 3), {4, 5, 6});
  Tensor m = cube();
  expect_values(m.select(1, -1), {8, 9, 10, 11, 20, 21, 22, 23});
  EXPECT_EQ(m.select(0, 1).shape(), (Shape{3, 4}));
  EXPECT_EQ(m.select(2, 0).select(1, 2).select(0, 1).item(), 20.0);
  expect_values(m.slice(2, 1, 4, 2).slice(1, 0, 3, 2), {1, 3, 9, 11, 13, 15, 21, 23});
  EMBER_EXPECT_THROW_WITH(m.select(1, 3), ShapeError, "index 3", "size 3");
  EXPECT_THROW(m.select(1, -4), ShapeError);
  EMBER_EXPECT_THROW_WITH(x.slice(0, 0, 5, 0), ValueError, "step");
  EXPECT_THROW(x.slice(1, 0, 1), ShapeError);
}

TEST(Views, ViewsOfViewsWriteThroughToTheBase) {
  Tensor x = zeros({4, 5}, f64());
  Tensor v = x.t().slice(0, 1, 5, 2).select(1, 3);  // x[3, 1], x[3, 3]
  EXPECT_EQ(v.shape(), (Shape{2}));
  double* base = x.data<double>();
  base[3 * 5 + 1] = 7.0;
  base[3 * 5 + 3] = 8.0;
  expect_values(v, {7, 8});
}

// --------------------------------------------------------------------- gradients ----
TEST(Views, Gradients) {
  const std::vector<std::pair<const char*, TensorFn>> cases = {
      {"reshape",
       [](const std::vector<Tensor>& v) {
         return v[0].reshape({4, -1}) * 2.0;
       }},
      {"reshape non-contiguous",
       [](const std::vector<Tensor>& v) {
         return v[0].transpose(0, 2).reshape({6, 4});
       }},
      {"view",
       [](const std::vector<Tensor>& v) {
         return v[0].view({3, 8});
       }},
      {"flatten", [](const std::vector<Tensor>& v) { return v[0].t().flatten(); }},
      {"unsqueeze", [](const std::vector<Tensor>& v) { return v[0].unsqueeze(1) * v[0]; }},
      {"squeeze", [](const std::vector<Tensor>& v) { return v[0].slice(1, 1, 2).squeeze(1); }},
      {"squeeze all",
       [](const std::vector<Tensor>& v) { return v[0].slice(0, 0, 1).slice(1, 2, 3).squeeze(); }},
      {"expand",
       [](const std::vector<Tensor>& v) {
         return v[0].select(2, 0).unsqueeze(0).expand({3, -1, -1});
       }},
      {"transpose", [](const std::vector<Tensor>& v) { return v[0].transpose(0, 1); }},
      {"t", [](const std::vector<Tensor>& v) { return v[0].select(0, 1).t(); }},
      {"permute",
       [](const std::vector<Tensor>& v) {
         return v[0].permute({1, 2, 0});
       }},
      {"slice", [](const std::vector<Tensor>& v) { return v[0].slice(2, 1, 4, 2); }},
      {"slice negative", [](const std::vector<Tensor>& v) { return v[0].slice(-1, -3, -1); }},
      {"select", [](const std::vector<Tensor>& v) { return v[0].select(1, -1); }},
      {"narrow", [](const std::vector<Tensor>& v) { return v[0].narrow(2, 1, 2); }},
      {"empty slice", [](const std::vector<Tensor>& v) { return v[0].slice(0, 1, 1); }},
      {"chain",
       [](const std::vector<Tensor>& v) {
         return v[0].permute({2, 0, 1}).slice(0, 0, 4, 3).reshape({-1}).unsqueeze(0);
       }},
  };
  for (const auto& [name, f] : cases) {
    SCOPED_TRACE(name);
    EMBER_EXPECT_GRAD(f, {random_normal({2, 3, 4}, true)});
  }
}

TEST(Views, SliceGradientIsZeroOutsideTheSlice) {
  Tensor x = arange(6.0, f64(true));
  sum(x.slice(0, 1, 6, 2) * 3.0).backward();
  expect_values(x.grad(), {0, 3, 0, 3, 0, 3});
}

TEST(Views, OverlappingExpandedGradientsAccumulate) {
  Tensor x = tensor({1.0, 2.0}, f64(true));
  sum(x.unsqueeze(0).expand({5, 2}) * x).backward();  // sum 5 x_i^2
  expect_values(x.grad(), {10, 20});
}

TEST(Conversions, ToDtypeCloneContiguousGradients) {
  const auto to32 = [](const std::vector<Tensor>& v) {
    return exp(v[0].to(kFloat32)).to(kFloat64);
  };
  EMBER_EXPECT_GRAD(to32, {uniform({3}, -1, 1, true)}, {.h = 1e-3, .rtol = 1e-3, .atol = 1e-4});
  const auto cl = [](const std::vector<Tensor>& v) {
    return v[0].clone() * v[0].t().contiguous().t();
  };
  EMBER_EXPECT_GRAD(cl, {random_normal({2, 3}, true)});
  Tensor x = tensor({1.0, 2.0}, TensorOptions{}.with_requires_grad());
  Tensor y = x.to(kFloat64) * tensor({3.0, 4.0}, f64());
  EXPECT_TRUE(y.requires_grad());
  sum(y).backward();
  EXPECT_EQ(x.grad().dtype(), kFloat32);
  expect_values(x.grad(), {3, 4});
}

// ---------------------------------------------------------------------------- cat ----
TEST(Cat, Values) {
  Tensor a = tensor({{1, 2}, {3, 4}}, f64());
  Tensor b = tensor({{5, 6}}, f64());
  Tensor c0 = cat({a, b});
  EXPECT_EQ(c0.shape(), (Shape{3, 2}));
  expect_values(c0, {1, 2, 3, 4, 5, 6});
  Tensor c1 = cat({a, a.t(), zeros({2, 0}, f64())}, -1);
  EXPECT_EQ(c1.shape(), (Shape{2, 4}));
  expect_values(c1, {1, 2, 1, 3, 3, 4, 2, 4});
  Tensor single = cat({b});
  expect_values(single, {5, 6});
  // Mixed dtypes promote.
  Tensor m = cat({tensor({1, 2}, TensorOptions{}.with_dtype(kInt64)), tensor({0.5}, f64())});
  EXPECT_EQ(m.dtype(), kFloat64);
  expect_values(m, {1, 2, 0.5});
}

TEST(Cat, Gradients) {
  const auto f = [](const std::vector<Tensor>& v) { return cat({v[0], v[1], v[2]}, 1); };
  EMBER_EXPECT_GRAD(
      f, {random_normal({2, 1}, true), random_normal({2, 3}), random_normal({2, 2}, true)});
  const auto g = [](const std::vector<Tensor>& v) { return cat({v[0].t(), v[0] * 2.0}, 0); };
  EMBER_EXPECT_GRAD(g, {random_normal({3, 3}, true)});
  const auto e = [](const std::vector<Tensor>& v) { return cat({v[0], v[1]}, 0); };
  EMBER_EXPECT_GRAD(e, {random_normal({0, 2}, true), random_normal({3, 2}, true)});
  // More inputs than a backward keeps inline (four): every one still gets its slice.
  const auto many = [](const std::vector<Tensor>& v) { return cat(v, 0); };
  std::vector<Tensor> seven;
  for (int k = 0; k < 7; ++k) seven.push_back(random_normal({k % 3 + 1, 2}, k != 3));
  EMBER_EXPECT_GRAD(many, seven);
}

TEST(Cat, GradientsThroughMixedDtypes) {
  // A float32 non-leaf joined with float64: its node must see a float32 gradient.
  Tensor a = tensor({1.0, 2.0}, TensorOptions{}.with_requires_grad());
  Tensor b = tensor({3.0}, f64(true));
  Tensor c = cat({exp(a), b});
  sum(c * tensor({1.0, 10.0, 100.0}, f64())).backward();
  expect_values(a.grad(), {std::exp(1.0), 10 * std::exp(2.0)}, 1e-6);
  expect_values(b.grad(), {100});
}

TEST(Cat, Errors) {
  EMBER_EXPECT_THROW_WITH(cat({zeros({2, 3}), zeros({2, 4})}, 0), ShapeError, "(2, 3)", "(2, 4)");
  EMBER_EXPECT_THROW_WITH(cat({zeros({2, 3}), zeros({3})}, 0), ShapeError, "(2, 3)", "(3)");
  EMBER_EXPECT_THROW_WITH(cat({}, 0), ValueError, "at least one");
  EMBER_EXPECT_THROW_WITH(cat({zeros({2}), zeros({2})}, 1), ShapeError, "dim 1");
  EXPECT_THROW(cat({scalar_tensor(1.0), scalar_tensor(2.0)}), ShapeError);
}

// -------------------------------------------------------------------------- stack ----
TEST(Stack, ValuesGradientsErrors) {
  Tensor a = tensor({1, 2, 3}, f64()), b = tensor({4, 5, 6}, f64());
  Tensor s0 = stack({a, b});
  EXPECT_EQ(s0.shape(), (Shape{2, 3}));
  expect_values(s0, {1, 2, 3, 4, 5, 6});
  Tensor s1 = stack({a, b}, -1);
  EXPECT_EQ(s1.shape(), (Shape{3, 2}));
  expect_values(s1, {1, 4, 2, 5, 3, 6});
  EXPECT_EQ(stack({scalar_tensor(1.0), scalar_tensor(2.0)}).shape(), (Shape{2}));
  const auto f = [](const std::vector<Tensor>& v) { return stack({v[0], v[1].t(), v[0]}, 1); };
  EMBER_EXPECT_GRAD(f, {random_normal({2, 3}, true), random_normal({3, 2}, true)});
  EMBER_EXPECT_THROW_WITH(stack({zeros({2, 3}), zeros({3, 2})}), ShapeError, "(2, 3)", "(3, 2)");
  EXPECT_THROW(stack({zeros({2}), zeros({2})}, 2), ShapeError);
}

// ---------------------------------------------------------------------------- pad ----
TEST(Pad, ValuesPositiveAndNegative) {
  Tensor x = arange(6.0, f64()).reshape({2, 3});
  Tensor p = pad(x, {1, 2});
  EXPECT_EQ(p.shape(), (Shape{2, 6}));
  expect_values(p, {0, 0, 1, 2, 0, 0, 0, 3, 4, 5, 0, 0});
  Tensor q = pad(x, {0, 0, 1, 0}, -1.0);
  EXPECT_EQ(q.shape(), (Shape{3, 3}));
  expect_values(q, {-1, -1, -1, 0, 1, 2, 3, 4, 5});
  // Negative pads crop.
  Tensor c = pad(x, {-1, 0});
  EXPECT_EQ(c.shape(), (Shape{2, 2}));
  expect_values(c, {1, 2, 4, 5});
  Tensor mixed = pad(x, {1, -2, -1, 1}, 9.0);  // last dim: +1 left, crop 2 right; rows: crop 1
  EXPECT_EQ(mixed.shape(), (Shape{2, 2}));
  expect_values(mixed, {9, 3, 9, 9});
  EXPECT_EQ(pad(x, {-3, 0}).shape(), (Shape{2, 0}));
  expect_values(pad(x, {}), {0, 1, 2, 3, 4, 5});
  expect_values(pad(x.t(), {0, 1}), {0, 3, 0, 1, 4, 0, 2, 5, 0});
}

TEST(Pad, Gradients) {
  const std::vector<std::vector<std::int64_t>> pad_sets = {
      {1, 2}, {0, 0, 2, 1}, {-1, 0}, {1, -2, -1, 1}, {-2, -1, 0, 0}, {2, 2, 1, 1, 1, 0}};
  for (const auto& pads : pad_sets) {
    SCOPED_TRACE(pads.size());
    const auto f = [&](const std::vector<Tensor>& v) { return pad(v[0], pads, 0.5); };
    EMBER_EXPECT_GRAD(f, {random_normal({2, 3, 4}, true)});
    const auto t = [&](const std::vector<Tensor>& v) {
      return pad(v[0].transpose(0, 2), pads, -1.0);
    };
    EMBER_EXPECT_GRAD(t, {random_normal({4, 3, 3}, true)});
  }
}

TEST(Pad, Errors) {
  Tensor x = zeros({2, 3});
  EMBER_EXPECT_THROW_WITH(pad(x, {1}), ShapeError, "pad", "even");
  EMBER_EXPECT_THROW_WITH(pad(x, {1, 1, 1, 1, 1, 1}), ShapeError, "6 pad values", "2 dims");
  EMBER_EXPECT_THROW_WITH(pad(x, {-2, -2}), ShapeError, "(2, 3)", "negative");
}

// ------------------------------------------------------------------ large copies ----
TEST(Large, NonContiguousCopiesAndCat) {
  Tensor x = uniform({300, 200}, -1, 1);
  const auto xv = values(x);
  const auto tv = values(x.t().contiguous());
  for (int i = 0; i < 300; ++i)
    for (int j = 0; j < 200; ++j) ASSERT_EQ(tv[j * 300 + i], xv[i * 200 + j]);
  const auto cv = values(cat({x, x.slice(0, 0, 300, 2)}, 0));
  ASSERT_EQ(cv.size(), 450u * 200u);
  for (int i = 0; i < 150; ++i)
    for (int j = 0; j < 200; ++j) ASSERT_EQ(cv[(300 + i) * 200 + j], xv[2 * i * 200 + j]);
  const auto f32 = values(x.t().to(kFloat32));
  for (int i = 0; i < 300; ++i)
    for (int j = 0; j < 200; ++j)
      ASSERT_EQ(f32[j * 300 + i], static_cast<double>(static_cast<float>(xv[i * 200 + j])));
}
