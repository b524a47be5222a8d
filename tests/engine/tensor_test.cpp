#include <gtest/gtest.h>

#include <cmath>

#include <ember/ember.hpp>

using namespace ember;

TEST(Tensor, AddAndBackward) {
  Tensor a = tensor({1.0, 2.0, 3.0}, TensorOptions{}.with_requires_grad());
  Tensor b = tensor({4.0, 5.0, 6.0});
  Tensor y = sum(a * b + exp(a));
  y.backward();
  auto g = a.grad().to_vector<double>();
  EXPECT_NEAR(g[0], 4.0 + std::exp(1.0), 1e-5);
  EXPECT_NEAR(g[2], 6.0 + std::exp(3.0), 1e-4);
}
