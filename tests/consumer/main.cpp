// Uses the installed Ember: a tensor op and a gradient, checked against known values.
#include <cmath>
#include <cstdio>
#include <ember/ember.hpp>

int main() {
  using namespace ember;
  Tensor x = tensor({1.0, 2.0, 3.0}, TensorOptions{}.with_dtype(kFloat64)).requires_grad_();
  Tensor y = sum(x * x);  // dy/dx = 2x
  y.backward();
  const auto g = x.grad().to_vector<double>();
  const bool ok = y.item() == 14.0 && g[0] == 2.0 && g[1] == 4.0 && g[2] == 6.0;
  std::printf("ember %s: sum(x*x) = %g, grad = [%g, %g, %g], cuda built: %d -> %s\n", kVersion,
              y.item(), g[0], g[1], g[2], cuda_built() ? 1 : 0, ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
