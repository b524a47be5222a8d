// Tensors and reverse-mode gradients on real data: fits eruption length ~ a + b * waiting
// time on the Old Faithful data by gradient descent, and checks the fit against the
// closed-form least-squares solution computed with matmul.
//
//   tensor_basics [path/to/faithful.csv]
#include <cstdio>
#include <ember/ember.hpp>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  using namespace ember;
  const std::string path = argc > 1 ? argv[1] : EMBER_DATA_DIR "/faithful.csv";
  const data::CsvTable faithful = data::read_csv(path, {.dtype = kFloat64});
  const std::int64_t n = faithful.rows();

  const Device device = Device::best();
  const auto opts = TensorOptions{}.with_dtype(kFloat64).with_device(device);
  const Tensor y = faithful["eruptions"].to(device);
  const Tensor w = faithful["waiting"].to(device);
  // Standardize the input so plain gradient descent converges quickly.
  const Tensor w_mean = mean(w), w_std = sqrt(mean(square(w - w_mean)));
  const Tensor x = (w - w_mean) / w_std;
  std::printf("Old Faithful: %lld eruptions on %s; mean length %.4f min, mean wait %.3f min\n",
              static_cast<long long>(n), device.str().c_str(), mean(y).item(), w_mean.item());

  // Parameters are leaves that require grad; each step records the loss on the tape, runs
  // backward, and updates the parameters outside the tape.
  Tensor a = zeros({}, opts).requires_grad_();
  Tensor b = zeros({}, opts).requires_grad_();
  const double lr = 0.1;
  for (int step = 0; step <= 200; ++step) {
    const Tensor loss = mean(square(y - (a + b * x)));
    loss.backward();
    if (step % 50 == 0)
      std::printf("step %3d  mse %.5f  dmse/da %+.5f  dmse/db %+.5f\n", step, loss.item(),
                  a.grad().item(), b.grad().item());
    NoGradGuard no_grad;
    a = (a - lr * a.grad()).detach().requires_grad_();
    b = (b - lr * b.grad()).detach().requires_grad_();
  }

  // Closed form: solve the normal equations (X^T X) beta = X^T y for X = [1, x].
  const Tensor X = stack({ones({n}, opts), x}, 1);
  const Tensor xtx = matmul(X.t(), X), xty = matmul(X.t(), y);
  // A 2x2 solve by hand: the normal matrix is [[p, q], [q, r]].
  const auto m = xtx.to_vector<double>();
  const auto v = xty.to_vector<double>();
  const double det = m[0] * m[3] - m[1] * m[2];
  const double a_exact = (m[3] * v[0] - m[1] * v[1]) / det;
  const double b_exact = (m[0] * v[1] - m[2] * v[0]) / det;

  const double slope = b.item() / w_std.item();
  const double intercept = a.item() - slope * w_mean.item();
  std::printf("gradient descent: eruptions = %.4f + %.5f * waiting\n", intercept, slope);
  std::printf("least squares:    eruptions = %.4f + %.5f * waiting\n",
              a_exact - b_exact / w_std.item() * w_mean.item(), b_exact / w_std.item());
  const bool agree = std::abs(a.item() - a_exact) < 1e-6 && std::abs(b.item() - b_exact) < 1e-6;
  std::printf("%s\n", agree ? "the two fits agree" : "the fits DISAGREE");
  return agree ? 0 : 1;
}
