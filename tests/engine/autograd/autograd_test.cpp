// The tape and the reverse sweep (engine/autograd): accumulation, broadcasting, graph
// shapes, grad mode, requires_grad rules, and release of the tape's memory.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "engine/internal.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

TEST(Autograd, GradAccumulatesAcrossUsesInOneGraph) {
  Tensor x = tensor({1.0, 2.0, 3.0}, f64(true));
  // y = x*x + 3x + x: dy/dx = 2x + 4.
  Tensor y = sum(x * x + x * 3.0 + x);
  y.backward();
  expect_values(x.grad(), {6, 8, 10});
}

TEST(Autograd, GradAccumulatesAcrossBackwardCalls) {
  Tensor x = tensor({1.0, -2.0}, f64(true));
  sum(x * 2.0).backward();
  sum(x * x).backward();
  expect_values(x.grad(), {2 + 2, 2 - 4});
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  sum(x).backward();
  expect_values(x.grad(), {1, 1});
}

TEST(Autograd, BroadcastGradsAreSummedBack) {
  Tensor a = arange(3.0, f64()).reshape({3, 1});
  Tensor b = arange(4.0, f64()).reshape({1, 4});
  a.requires_grad_();
  b.requires_grad_();
  sum(a * b).backward();
  // d/da_i sum_j a_i b_j = sum_j b_j = 6; d/db_j = sum_i a_i = 3.
  EXPECT_EQ(a.grad().shape(), (Shape{3, 1}));
  EXPECT_EQ(b.grad().shape(), (Shape{1, 4}));
  expect_values(a.grad(), {6, 6, 6});
  expect_values(b.grad(), {3, 3, 3, 3});
}

TEST(Autograd, DiamondGraph) {
  // x -> u = exp(x), v = x^2 -> y = u * v; dy/dx = exp(x) x^2 + 2x exp(x).
  Tensor x = tensor({0.5, -1.0}, f64(true));
  Tensor u = exp(x), v = square(x);
  sum(u * v).backward();
  std::vector<double> want;
  for (double xv : {0.5, -1.0}) want.push_back(std::exp(xv) * (xv * xv + 2 * xv));
  expect_values(x.grad(), want);
}

TEST(Autograd, SharedIntermediateReceivesEveryGradientBeforeRunning) {
  // h is used by three consumers at different depths; its node must run once, after all
  // three contributions arrive: y = h + h*h + exp(h)*2, h = 3x.
  Tensor x = tensor({0.1, 0.2}, f64(true));
  Tensor h = x * 3.0;
  Tensor y = sum(h + square(h) + exp(h) * 2.0);
  y.backward();
  std::vector<double> want;
  for (double xv : {0.1, 0.2}) want.push_back(3.0 * (1 + 2 * 3 * xv + 2 * std::exp(3 * xv)));
  expect_values(x.grad(), want);
}

TEST(Autograd, NonLeafUsedTwiceByOneOp) {
  Tensor x = tensor({0.5, -0.25}, f64(true));
  Tensor h = exp(x);
  sum(h * h).backward();  // d/dx exp(2x) = 2 exp(2x)
  expect_values(x.grad(), {2 * std::exp(1.0), 2 * std::exp(-0.5)}, 1e-12);
}

TEST(Autograd, NonScalarBackwardTakesASeed) {
  Tensor x = tensor({1.0, 2.0}, f64(true));
  Tensor y = x * x;
  EMBER_EXPECT_THROW_WITH(y.backward(), ValueError, "seed", "(2)");
  EMBER_EXPECT_THROW_WITH(y.backward(ones({3}, f64())), ShapeError, "(3)", "(2)");
  y.backward(tensor({10.0, -1.0}, f64()));
  expect_values(x.grad(), {20, -4});
}

TEST(Autograd, SeedOfAnotherDtypeIsConverted) {
  Tensor x = tensor({1.0, 2.0}, TensorOptions{}.with_requires_grad());  // float32
  Tensor y = x * x;
  y.backward(tensor({1.0, 3.0}, f64()));
  EXPECT_EQ(x.grad().dtype(), kFloat32);
  expect_values(x.grad(), {2, 12});
}

TEST(Autograd, BackwardOnALeaf) {
  Tensor x = tensor({1.0, 2.0}, f64(true));
  x.backward(tensor({3.0, 4.0}, f64()));
  expect_values(x.grad(), {3, 4});
}

TEST(Autograd, DetachCutsTheGraph) {
  Tensor x = tensor({2.0, 3.0}, f64(true));
  Tensor d = x.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
  EXPECT_EQ(d.data_ptr(), x.data_ptr());  // same memory
  // y = x * stop(x): dy/dx = stop(x).
  sum(x * d).backward();
  expect_values(x.grad(), {2, 3});
}

TEST(Autograd, NoGradGuardStopsRecording) {
  Tensor x = tensor({1.0}, f64(true));
  EXPECT_TRUE(grad_enabled());
  {
    NoGradGuard guard;
    EXPECT_FALSE(grad_enabled());
    Tensor y = x * 2.0;
    EXPECT_FALSE(y.requires_grad());
    EXPECT_TRUE(y.is_leaf());
    {
      NoGradGuard nested;
      EXPECT_FALSE(grad_enabled());
    }
    EXPECT_FALSE(grad_enabled());  // the nested guard restores the outer state
    EXPECT_THROW(y.backward(), ValueError);
  }
  EXPECT_TRUE(grad_enabled());
  EXPECT_TRUE((x * 2.0).requires_grad());
}

TEST(Autograd, RequiresGradRules) {
  Tensor a = ones({2}, f64());
  EXPECT_FALSE(a.requires_grad());
  EXPECT_FALSE((a * 2.0).requires_grad());
  Tensor b = ones({2}, f64(true));
  Tensor c = a + b;
  EXPECT_TRUE(c.requires_grad());
  EXPECT_FALSE(c.is_leaf());
  EXPECT_NE(c.grad_fn(), nullptr);
  EMBER_EXPECT_THROW_WITH(c.requires_grad_(), ValueError, "leaf");
  Tensor i = ones({2}, TensorOptions{}.with_dtype(kInt64));
  EMBER_EXPECT_THROW_WITH(i.requires_grad_(), DTypeError, "int64");
  // requires_grad_(false) on a leaf is allowed.
  b.requires_grad_(false);
  EXPECT_FALSE(b.requires_grad());
  // Comparisons and integer casts leave the graph.
  Tensor x = ones({2}, f64(true));
  EXPECT_FALSE((x > 0.0).requires_grad());
  EXPECT_FALSE(x.to(kInt64).requires_grad());
  EXPECT_FALSE(isnan(x).requires_grad());
  EXPECT_THROW(sum(a).backward(), ValueError);
}

TEST(Autograd, BackwardTwiceThrows) {
  Tensor x = tensor({1.0, 2.0}, f64(true));
  Tensor y = sum(exp(x) * x);
  y.backward();
  EMBER_EXPECT_THROW_WITH(y.backward(), ValueError, "second time");
}

TEST(Autograd, TapeMemoryIsReleasedAfterBackward) {
  Tensor x = uniform({1000}, 0.5, 1.5, true);
  std::weak_ptr<Storage> saved_storage;
  Tensor y;
  {
    Tensor t = x * 2.0;  // non-leaf, saved by log for its backward
    saved_storage = t.impl().storage;
    y = sum(log(t));
  }
  // Only the tape keeps t's memory alive now.
  EXPECT_FALSE(saved_storage.expired());
  y.backward();
  EXPECT_TRUE(saved_storage.expired());
  // dy/dx = 2 / (2x) = 1/x.
  expect_close(x.grad(), reciprocal(x.detach()), 1e-12, 1e-12);
}

TEST(Autograd, DroppingTheGraphFreesItWithoutBackward) {
  std::weak_ptr<Storage> saved_storage;
  std::weak_ptr<autograd::Node> node;
  {
    Tensor x = ones({10}, f64(true));
    Tensor t = exp(x);
    saved_storage = t.impl().storage;
    Tensor y = sum(t * t);
    node = y.grad_fn();
    EXPECT_FALSE(node.expired());
  }
  EXPECT_TRUE(node.expired());
  EXPECT_TRUE(saved_storage.expired());
}

TEST(Autograd, NodeReachedByNoGradient) {
  // where() sends no gradient to a branch that does not require grad; the branch made of
  // recorded ops from x still gets a zero-free, well-defined gradient where selected.
  Tensor x = tensor({1.0, -1.0, 2.0}, f64(true));
  Tensor unused = exp(x);  // recorded but not part of y
  Tensor y = sum(where(x > 0.0, x * 3.0, zeros({3}, f64())));
  y.backward();
  expect_values(x.grad(), {3, 0, 3});
  // The unused branch is untouched and can still be differentiated.
  sum(unused).backward();
  expect_values(x.grad(), {3 + std::exp(1.0), std::exp(-1.0), 3 + std::exp(2.0)});
}

TEST(Autograd, InputOnlyReachedThroughANonDifferentiableOpGetsNoGrad) {
  Tensor x = tensor({1.0, 2.0}, f64(true));
  Tensor w = tensor({5.0, 6.0}, f64(true));
  Tensor mask = (x > 1.5).to(kFloat64);  // no gradient flows through the comparison
  sum(mask * w).backward();
  expect_values(w.grad(), {0, 1});
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, GradOfAnIntermediateBranchThatGetsNoGradient) {
  // y = a * b where only a requires grad: b's producer (from c, which does not require grad)
  // is never recorded, and a's gradient is exact.
  Tensor a = tensor({2.0, 3.0}, f64(true));
  Tensor c = tensor({4.0, 5.0}, f64());
  Tensor b = exp(c);
  sum(a * b).backward();
  expect_close(a.grad(), exp(c), 1e-12, 0);
}

TEST(Autograd, GradIsContiguousAndOfTheLeafDtype) {
  Tensor x = ones({3}, TensorOptions{}.with_requires_grad());  // float32
  // The gradient of sum is an expanded (stride-0) tensor internally.
  sum(x.to(kFloat64)).backward();
  EXPECT_EQ(x.grad().dtype(), kFloat32);
  EXPECT_TRUE(x.grad().is_contiguous());
  expect_values(x.grad(), {1, 1, 1});
}

TEST(Autograd, LongChainDoesNotOverflowTheStack) {
  Tensor x = tensor({1.0}, f64(true));
  Tensor y = x;
  for (int i = 0; i < 5000; ++i) y = y * 1.0001;
  sum(y).backward();
  EXPECT_NEAR(x.grad().item(), std::pow(1.0001, 5000), 1e-9);
}

TEST(Autograd, GradCheckerCatchesAWrongGradient) {
  // The checker itself must be able to fail: detach hides a dependence from autograd.
  const auto wrong = [](const std::vector<Tensor>& v) { return v[0] * v[0].detach(); };
  EXPECT_FALSE(grad_check(wrong, {random_normal({3}, true)}));
  const auto right = [](const std::vector<Tensor>& v) { return v[0] * v[0]; };
  EXPECT_TRUE(grad_check(right, {random_normal({3}, true)}));
}

// The tape's short lists (a node's edges, a backward's gradients): inline up to N, spilled to
// the heap beyond; every element is owned exactly once through copies, moves, spills and
// assignments (an owner's use count says so).
TEST(InlineVector, OwnsEachElementOnceInlineAndSpilled) {
  using List = detail::InlineVector<std::shared_ptr<int>, 4>;
  const auto owner = std::make_shared<int>(7);
  for (std::size_t n : {0, 1, 4, 5, 9}) {
    SCOPED_TRACE("n = " + std::to_string(n));
    {
      List list;
      for (std::size_t k = 0; k < n; ++k) list.push_back(owner);
      ASSERT_EQ(list.size(), n);
      EXPECT_EQ(owner.use_count(), static_cast<long>(1 + n));
      for (const auto& p : list) EXPECT_EQ(p.get(), owner.get());
      List copy(list);
      EXPECT_EQ(owner.use_count(), static_cast<long>(1 + 2 * n));
      List moved(std::move(copy));
      EXPECT_TRUE(copy.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
      EXPECT_EQ(moved.size(), n);
      EXPECT_EQ(owner.use_count(), static_cast<long>(1 + 2 * n));
      List assigned{std::make_shared<int>(1), std::make_shared<int>(2)};
      assigned = moved;
      EXPECT_EQ(owner.use_count(), static_cast<long>(1 + 3 * n));
      assigned = std::move(moved);
      EXPECT_EQ(owner.use_count(), static_cast<long>(1 + 2 * n));
      ASSERT_EQ(assigned.size(), n);
      if (n > 0) EXPECT_EQ(*assigned[n - 1], 7);
      assigned.clear();
      EXPECT_EQ(owner.use_count(), static_cast<long>(1 + n));
      assigned.push_back(owner);
      EXPECT_EQ(assigned.size(), 1U);
    }
    EXPECT_EQ(owner.use_count(), 1);
  }
  // n default elements, and a list from items beyond the inline room.
  const List empties(6);
  EXPECT_EQ(empties.size(), 6U);
  for (const auto& p : empties) EXPECT_EQ(p, nullptr);
  const List items{owner, owner, owner, owner, owner};
  EXPECT_EQ(owner.use_count(), 6);
  EXPECT_EQ(items.end() - items.begin(), 5);
}
