// Indexing ops of engine/ops/index.cpp: index_select, gather, scatter_add, index_add.
// Values by hand, gradients (repeated indices accumulate), bounds and shape errors.
#include <gtest/gtest.h>

#include <cmath>

#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

namespace {
// 0..11 as (3, 4).
Tensor grid() { return arange(12.0, f64()).reshape({3, 4}); }
Tensor idx2(std::initializer_list<std::initializer_list<double>> rows) {
  return tensor(rows, TensorOptions{}.with_dtype(kInt64));
}
}  // namespace

// ------------------------------------------------------------------ index_select ----
TEST(IndexSelect, Values) {
  Tensor x = grid();
  Tensor r = index_select(x, 0, index_tensor({2, 0, 2}));
  EXPECT_EQ(r.shape(), (Shape{3, 4}));
  expect_values(r, {8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11});
  Tensor c = index_select(x, -1, index_tensor({3, 1}));
  EXPECT_EQ(c.shape(), (Shape{3, 2}));
  expect_values(c, {3, 1, 7, 5, 11, 9});
  expect_values(index_select(x.t(), 0, index_tensor({1})), {1, 5, 9});
  // A 0-d index acts as a 1-element index.
  Tensor s = index_select(x, 1, scalar_tensor(2, TensorOptions{}.with_dtype(kInt64)));
  EXPECT_EQ(s.shape(), (Shape{3, 1}));
  expect_values(s, {2, 6, 10});
  Tensor e = index_select(x, 0, index_tensor({}));
  EXPECT_EQ(e.shape(), (Shape{0, 4}));
  Tensor i =
      index_select(tensor({5, 6, 7}, TensorOptions{}.with_dtype(kInt64)), 0, index_tensor({2, 2}));
  EXPECT_EQ(i.to_vector<std::int64_t>(), (std::vector<std::int64_t>{7, 7}));
}

TEST(IndexSelect, GradientsAccumulateOverRepeatedIndices) {
  Tensor x = grid();
  x.requires_grad_();
  sum(index_select(x, 0, index_tensor({2, 0, 2, 2}))).backward();
  expect_values(x.grad(), {1, 1, 1, 1, 0, 0, 0, 0, 3, 3, 3, 3});
  for (int dim : {0, 1, -1}) {
    SCOPED_TRACE(dim);
    Tensor index = index_tensor({1, 0, 1, 2});
    const auto f = [&](const std::vector<Tensor>& v) { return index_select(v[0], dim, index); };
    EMBER_EXPECT_GRAD(f, {random_normal({3, 3, 3}, true)});
  }
  const auto nc = [](const std::vector<Tensor>& v) {
    return index_select(v[0].t(), 1, index_tensor({0, 0, 2}));
  };
  EMBER_EXPECT_GRAD(nc, {random_normal({3, 4}, true)});
  const auto empty = [](const std::vector<Tensor>& v) {
    return index_select(v[0], 0, index_tensor({}));
  };
  EMBER_EXPECT_GRAD(empty, {random_normal({3, 2}, true)});
}

// index_rows by an enumerated support (0..K-1 in order, over all K rows) is the table itself,
// a view of it, with the gather's values and gradients; a part of such a support is an
// ordinary index.
TEST(IndexRows, AnEnumeratedSupportPicksTheTableAsAView) {
  const Tensor support = dist::Categorical(full({3}, 1.0 / 3, f64())).enumerate_support(false);
  const Tensor z = support.reshape({3, 1});
  const Tensor x = grid();
  const Tensor r = index_rows(x, z);
  EXPECT_EQ(r.shape(), (Shape{3, 1, 4}));
  expect_values(r, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  EXPECT_EQ(r.data_ptr(), x.data_ptr());
  // The same values as a gather by an index that is not a support.
  expect_close(r, index_rows(x, index_tensor({0, 1, 2}).reshape({3, 1})), 0, 0);
  const auto f = [&z](const std::vector<Tensor>& v) { return index_rows(v[0], z); };
  EMBER_EXPECT_GRAD(f, {random_normal({3, 2}, true)});
  // Rows 1 and 2 of the support: an offset view, gathered.
  const Tensor part = index_rows(x, support.slice(0, 1, 3));
  EXPECT_NE(part.data_ptr(), x.data_ptr());
  expect_values(part, {4, 5, 6, 7, 8, 9, 10, 11});
  // A support of 3 values over a table of 4 rows: rows 0..2, gathered.
  const Tensor taller = arange(16.0, f64()).reshape({4, 4});
  expect_values(index_rows(taller, support), {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
}

TEST(IndexSelect, Errors) {
  Tensor x = grid();
  EMBER_EXPECT_THROW_WITH(index_select(x, 0, index_tensor({0, 3})), ValueError, "index 3", "size 3",
                          "(3, 4)");
  EMBER_EXPECT_THROW_WITH(index_select(x, 1, index_tensor({-1})), ValueError, "index -1");
  EMBER_EXPECT_THROW_WITH(index_select(x, 0, tensor({0.0})), DTypeError, "int64", "float32");
  EMBER_EXPECT_THROW_WITH(index_select(x, 0, idx2({{0, 1}})), ShapeError, "1-d", "(1, 2)");
  EMBER_EXPECT_THROW_WITH(index_select(x, 2, index_tensor({0})), ShapeError, "dim 2");
}

TEST(IndexSelect, LargeParallelPath) {
  Tensor x = arange(50000.0, f64()).reshape({10000, 5});
  Tensor index = randint({9000}, 0, 9999);
  const auto iv = index.to_vector<std::int64_t>();
  const auto r = values(index_select(x, 0, index));
  for (std::size_t i = 0; i < iv.size(); ++i)
    for (int j = 0; j < 5; ++j) ASSERT_EQ(r[i * 5 + j], iv[i] * 5 + j);
}

// Every dim of a 3-d tensor, a strided index with repeats, and a transposed input, against
// loops over the coordinates: the index is spread over the output's shape, so the walk must
// keep each output position on its own index entry.
TEST(IndexSelect, EveryDimWithAStridedIndexMatchesLoops) {
  const Tensor x = arange(4.0 * 5 * 6, f64()).reshape({4, 5, 6});
  for (bool transposed : {false, true}) {
    const Tensor in = transposed ? x.transpose(0, 2) : x;  // (6, 5, 4) when transposed
    const Shape is = in.shape();
    const auto xv = values(in.contiguous());
    for (int dim = 0; dim < 3; ++dim) {
      SCOPED_TRACE(::testing::Message() << "dim " << dim << " transposed " << transposed);
      // Every other entry of a longer index: stride 2, repeats, out of order.
      const Tensor wide = randint({14}, 0, is[dim] - 1);
      const Tensor index = wide.slice(0, 0, 14, 2);
      const auto iv = index.to_vector<std::int64_t>();
      const Tensor r = index_select(in, dim, index);
      Shape os = is;
      os[dim] = 7;
      ASSERT_EQ(r.shape(), os);
      const auto rv = values(r);
      std::vector<double> acc(xv.size(), 0.0);
      const Tensor src = arange(static_cast<double>(r.numel()), f64()).reshape(os);
      const auto sv = values(src);
      const auto added = values(index_add(zeros(is, f64()), dim, index, src));
      for (std::int64_t a = 0; a < os[0]; ++a)
        for (std::int64_t b = 0; b < os[1]; ++b)
          for (std::int64_t c = 0; c < os[2]; ++c) {
            std::int64_t at[3] = {a, b, c};
            at[dim] = iv[static_cast<std::size_t>(at[dim])];
            const auto from = static_cast<std::size_t>((at[0] * is[1] + at[1]) * is[2] + at[2]);
            const auto to = static_cast<std::size_t>((a * os[1] + b) * os[2] + c);
            ASSERT_EQ(rv[to], xv[from]) << a << "," << b << "," << c;
            acc[from] += sv[to];
          }
      for (std::size_t k = 0; k < acc.size(); ++k) ASSERT_EQ(added[k], acc[k]) << k;
    }
  }
}

// ------------------------------------------------------------------------ gather ----
TEST(Gather, Values) {
  Tensor x = grid();
  // dim 0: out[i][j] = x[index[i][j]][j].
  Tensor g0 = gather(x, 0, idx2({{2, 0, 1, 2}, {0, 0, 0, 0}}));
  EXPECT_EQ(g0.shape(), (Shape{2, 4}));
  expect_values(g0, {8, 1, 6, 11, 0, 1, 2, 3});
  // dim 1: out[i][j] = x[i][index[i][j]]; the index may be smaller than x.
  Tensor g1 = gather(x, -1, idx2({{3, 3}, {0, 1}}));
  expect_values(g1, {3, 3, 4, 5});
  expect_values(gather(x.t(), 1, idx2({{2}, {0}})), {8, 1});
}

TEST(Gather, Gradients) {
  Tensor x = grid();
  x.requires_grad_();
  sum(gather(x, 1, idx2({{0, 0, 0}, {3, 1, 3}}))).backward();
  expect_values(x.grad(), {3, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0});
  Tensor index = idx2({{2, 0, 1}, {0, 0, 2}});
  for (int dim : {0, 1}) {
    SCOPED_TRACE(dim);
    const auto f = [&](const std::vector<Tensor>& v) { return gather(v[0], dim, index); };
    EMBER_EXPECT_GRAD(f, {random_normal({3, 3}, true)});
    const auto t = [&](const std::vector<Tensor>& v) { return gather(v[0].t(), dim, index); };
    EMBER_EXPECT_GRAD(t, {random_normal({3, 4}, true)});
  }
}

TEST(Gather, Errors) {
  Tensor x = grid();
  EMBER_EXPECT_THROW_WITH(gather(x, 0, idx2({{3, 0}})), ValueError, "index 3", "size 3");
  EMBER_EXPECT_THROW_WITH(gather(x, 0, index_tensor({0})), ShapeError, "(1)", "(3, 4)");
  EMBER_EXPECT_THROW_WITH(gather(x, 0, idx2({{0, 0, 0, 0, 0}})), ShapeError, "(1, 5)", "(3, 4)");
  EXPECT_THROW(gather(x, 0, tensor({0.0}).reshape({1, 1})), DTypeError);
}

// ------------------------------------------------------------------- scatter_add ----
TEST(ScatterAdd, ValuesWithRepeatedIndices) {
  Tensor x = zeros({3, 2}, f64());
  Tensor src = tensor({{1, 2}, {3, 4}, {5, 6}}, f64());
  Tensor out = scatter_add(x, 0, idx2({{0, 2}, {0, 2}, {1, 2}}), src);
  // Column 0: rows 0, 0, 1 get 1, 3, 5; column 1: row 2 gets 2 + 4 + 6.
  expect_values(out, {4, 0, 5, 0, 0, 12});
  // x itself is untouched.
  expect_values(x, {0, 0, 0, 0, 0, 0});
  // The source may be larger than the index: its extra elements are not used.
  Tensor big = tensor({{10, 20, 30}, {40, 50, 60}}, f64());
  expect_values(scatter_add(ones({2, 2}, f64()), 1, idx2({{1}, {0}}), big), {1, 11, 41, 1});
}

TEST(ScatterAdd, Gradients) {
  Tensor index = idx2({{0, 2}, {0, 2}, {1, 0}});
  const auto f = [&](const std::vector<Tensor>& v) { return scatter_add(v[0], 0, index, v[1]); };
  EMBER_EXPECT_GRAD(f, {random_normal({3, 2}, true), random_normal({3, 2}, true)});
  EMBER_EXPECT_GRAD(f, {random_normal({3, 2}), random_normal({3, 2}, true)});
  EMBER_EXPECT_GRAD(
      f, {random_normal({3, 3}, true), random_normal({4, 3}, true)});  // larger x and src
  const auto nl = [&](const std::vector<Tensor>& v) {
    return scatter_add(v[0] * 2.0, 0, index, exp(v[1].t()));
  };
  EMBER_EXPECT_GRAD(nl, {random_normal({3, 2}, true), random_normal({2, 3}, true)});
  // Explicit: d out / d src at unused source elements is zero.
  Tensor src = ones({2, 3}, f64(true));
  sum(scatter_add(zeros({2, 2}, f64()), 1, idx2({{1}, {1}}), src)).backward();
  expect_values(src.grad(), {1, 0, 0, 1, 0, 0});
}

TEST(ScatterAdd, Errors) {
  Tensor x = zeros({3, 2});
  EMBER_EXPECT_THROW_WITH(scatter_add(x, 0, idx2({{3, 0}}), ones({1, 2})), ValueError, "index 3",
                          "size 3");
  EMBER_EXPECT_THROW_WITH(scatter_add(x, 0, idx2({{0, 0}}), ones({2})), ShapeError, "(2)",
                          "(1, 2)");
  EMBER_EXPECT_THROW_WITH(scatter_add(x, 0, idx2({{0, 0}}), ones({1, 1})), ShapeError, "(1, 2)",
                          "(1, 1)");
}

// --------------------------------------------------------------------- index_add ----
TEST(IndexAdd, ValuesWithRepeatedIndices) {
  Tensor x = ones({4, 2}, f64());
  Tensor src = tensor({{1, 2}, {3, 4}, {5, 6}}, f64());
  Tensor out = index_add(x, 0, index_tensor({3, 0, 3}), src);
  expect_values(out, {4, 5, 1, 1, 1, 1, 7, 9});
  expect_values(x, {1, 1, 1, 1, 1, 1, 1, 1});
  Tensor cols = index_add(zeros({2, 3}, f64()), -1, index_tensor({2, 2}), ones({2, 2}, f64()));
  expect_values(cols, {0, 0, 2, 0, 0, 2});
  // Mixed dtypes promote.
  Tensor i = index_add(zeros({2}, TensorOptions{}.with_dtype(kInt64)), 0, index_tensor({1}),
                       tensor({0.5}, f64()));
  EXPECT_EQ(i.dtype(), kFloat64);
  expect_values(i, {0, 0.5});
}

// Many narrow rows (300 of 3: a walk of them takes the long dim innermost) added into a few
// in float32, with values whose sums depend on their order: each place gets its rows in row
// order, exactly as a loop over the rows adds them; index_add and scatter_add alike.
TEST(IndexAdd, NarrowRowsAddInRowOrder) {
  constexpr std::int64_t kRows = 300, kCols = 3, kPlaces = 4;
  std::vector<double> src(kRows * kCols);
  std::vector<std::int64_t> index(kRows);
  for (std::int64_t i = 0; i < kRows; ++i) {
    index[i] = (i * 7 + i / 5) % kPlaces;
    for (std::int64_t j = 0; j < kCols; ++j) {
      src[i * kCols + j] = static_cast<double>((i * 37 + j * 11) % 11 - 5) * 1.0e7 +
                           static_cast<double>((i * 7 + j) % 5) * 0.37 +
                           0.1 * static_cast<double>(j);
    }
  }
  const auto f32 = TensorOptions{}.with_dtype(kFloat32);
  const Tensor s = from_vector(src, {kRows, kCols}, f32);
  const std::vector<float> s32 = s.to_vector<float>();
  std::vector<float> want(kPlaces * kCols, 0.0f);
  for (std::int64_t i = 0; i < kRows; ++i)
    for (std::int64_t j = 0; j < kCols; ++j) want[index[i] * kCols + j] += s32[i * kCols + j];
  const Tensor idx = from_vector(index, {kRows}, TensorOptions{}.with_dtype(kInt64));
  EXPECT_EQ(index_add(zeros({kPlaces, kCols}, f32), 0, idx, s).to_vector<float>(), want);
  EXPECT_EQ(scatter_add(zeros({kPlaces, kCols}, f32), 0, idx.unsqueeze(1).expand({kRows, kCols}), s)
                .to_vector<float>(),
            want);
  // The same through index_select's gradient, which adds each picked row's gradient back.
  const Tensor table = zeros({kPlaces, kCols}, f32).requires_grad_();
  sum(index_select(table, 0, idx) * s).backward();
  EXPECT_EQ(table.grad().to_vector<float>(), want);
}

TEST(IndexAdd, Gradients) {
  Tensor index = index_tensor({3, 0, 3});
  for (int dim : {0, 1}) {
    SCOPED_TRACE(dim);
    const Shape src_shape = dim == 0 ? Shape{3, 4} : Shape{4, 3};
    const auto f = [&](const std::vector<Tensor>& v) { return index_add(v[0], dim, index, v[1]); };
    EMBER_EXPECT_GRAD(f, {random_normal({4, 4}, true), random_normal(src_shape, true)});
    const auto nl = [&](const std::vector<Tensor>& v) {
      return index_add(square(v[0]).t(), dim, index, v[1] * 3.0);
    };
    EMBER_EXPECT_GRAD(nl, {random_normal({4, 4}, true), random_normal(src_shape, true)});
  }
  Tensor src = ones({3, 2}, f64(true));
  Tensor x = zeros({4, 2}, f64(true));
  sum(index_add(x, 0, index, src) * arange(8.0, f64()).reshape({4, 2})).backward();
  // out row 3 weights (6, 7) flow to src rows 0 and 2; row 0 weights (0, 1) to src row 1.
  expect_values(src.grad(), {6, 7, 0, 1, 6, 7});
  expect_values(x.grad(), {0, 1, 2, 3, 4, 5, 6, 7});
}

TEST(IndexAdd, GradientsThroughMixedDtypes) {
  // x is float32 and a non-leaf, src float64: x's node must get a float32 gradient.
  Tensor leaf = tensor({1.0, 2.0, 3.0}, TensorOptions{}.with_requires_grad());
  Tensor src = tensor({4.0}, f64(true));
  Tensor out = index_add(exp(leaf), 0, index_tensor({1}), src);
  sum(out * tensor({1.0, 10.0, 100.0}, f64())).backward();
  expect_values(leaf.grad(), {std::exp(1.0), 10 * std::exp(2.0), 100 * std::exp(3.0)}, 1e-6);
  expect_values(src.grad(), {10});
}

TEST(ScatterAdd, GradientsThroughMixedDtypes) {
  Tensor leaf = tensor({1.0, 2.0}, TensorOptions{}.with_requires_grad());
  Tensor src = tensor({4.0, 5.0}, f64(true));
  Tensor out = scatter_add(exp(leaf), 0, index_tensor({1, 1}), src);
  sum(out * tensor({1.0, 10.0}, f64())).backward();
  expect_values(leaf.grad(), {std::exp(1.0), 10 * std::exp(2.0)}, 1e-6);
  expect_values(src.grad(), {10, 10});
}

TEST(IndexAdd, Errors) {
  Tensor x = zeros({4, 2});
  EMBER_EXPECT_THROW_WITH(index_add(x, 0, index_tensor({0, 1}), ones({3, 2})), ShapeError, "(3, 2)",
                          "(2, 2)");
  EMBER_EXPECT_THROW_WITH(index_add(x, 0, index_tensor({4}), ones({1, 2})), ValueError, "index 4",
                          "size 4");
  EXPECT_THROW(index_add(x, 2, index_tensor({0}), ones({1, 2})), ShapeError);
}
