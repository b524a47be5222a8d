// The networks on cuda:0 against the CPU: the new activations, softmax, conv2d's
// im2col/col2im (atomics on the device) with its gradients, every layer of a network moved
// with to(device), and a state dict loaded from a CPU file into a device module. Each case
// skips with a reason where there is no CUDA device.
#include <vector>

#include "nn_test_util.hpp"

namespace ember {
namespace {

using test::f64;

#define EMBER_REQUIRE_CUDA() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device"

TEST(NnCuda, FunctionsMatchTheCpu) {
  EMBER_REQUIRE_CUDA();
  const Tensor x = test::random_normal({4, 5}, true);
  const Tensor xd = x.detach().to(Device::cuda(0)).requires_grad_();
  const std::vector<std::function<Tensor(const Tensor&)>> fns = {
      [](const Tensor& t) { return leaky_relu(t, 0.1); },
      [](const Tensor& t) { return elu(t); },
      [](const Tensor& t) { return gelu(t); },
      [](const Tensor& t) { return gelu(t, GeluApproximation::Tanh); },
      [](const Tensor& t) { return softmax(t, 1); },
      [](const Tensor& t) { return log_softmax(t, 0); }};
  for (std::size_t i = 0; i < fns.size(); ++i) {
    SCOPED_TRACE(i);
    x.zero_grad();
    xd.zero_grad();
    const Tensor y = fns[i](x), yd = fns[i](xd);
    test::expect_close(yd.to(Device::cpu()), y, 1e-12, 1e-12);
    sum(y * y).backward();
    sum(yd * yd).backward();
    test::expect_close(xd.grad().to(Device::cpu()), x.grad(), 1e-12, 1e-12);
  }
}

TEST(NnCuda, Conv2dAndItsGradientsMatchTheCpu) {
  EMBER_REQUIRE_CUDA();
  for (const Conv2dOptions& o :
       {Conv2dOptions{}, Conv2dOptions{.stride = {2, 1}, .padding = {1, 2}, .dilation = {1, 2}},
        Conv2dOptions{.padding = {1, 1}, .groups = 2}}) {
    const Tensor x = test::random_normal({3, 4, 7, 6}, true);
    const Tensor w = test::random_normal({6, 4 / o.groups, 3, 3}, true);
    const Tensor b = test::random_normal({6}, true);
    const Tensor xd = x.detach().to(Device::cuda(0)).requires_grad_();
    const Tensor wd = w.detach().to(Device::cuda(0)).requires_grad_();
    const Tensor bd = b.detach().to(Device::cuda(0)).requires_grad_();
    const Tensor y = conv2d(x, w, b, o), yd = conv2d(xd, wd, bd, o);
    test::expect_close(yd.to(Device::cpu()), y, 1e-12, 1e-12);
    sum(y * y).backward();
    sum(yd * yd).backward();
    test::expect_close(xd.grad().to(Device::cpu()), x.grad(), 1e-10, 1e-10);
    test::expect_close(wd.grad().to(Device::cpu()), w.grad(), 1e-10, 1e-10);
    test::expect_close(bd.grad().to(Device::cpu()), b.grad(), 1e-10, 1e-10);
  }
}

TEST(NnCuda, LayersMovedToTheDeviceComputeAlike) {
  EMBER_REQUIRE_CUDA();
  Generator gen(3);
  nn::Sequential net(nn::Linear(6, 8, true, f64(), &gen), nn::LayerNorm({8}, 1e-5, true, f64()),
                     nn::BatchNorm1d(8, {}, f64()), nn::Dropout(0.0),
                     nn::MLP({8, 5, 4}, {.tensor_options = f64(), .gen = &gen}));
  nn::Sequential net_d(nn::Linear(6, 8, true, f64()), nn::LayerNorm({8}, 1e-5, true, f64()),
                       nn::BatchNorm1d(8, {}, f64()), nn::Dropout(0.0),
                       nn::MLP({8, 5, 4}, {.tensor_options = f64()}));
  net_d.to(Device::cuda(0));
  net_d.load_state_dict(net.state_dict());  // copies from the CPU into device memory
  for (auto& [name, ptr] : net_d.named_buffers()) EXPECT_TRUE(ptr->device().is_cuda()) << name;
  const Tensor x = test::random_normal({5, 6});
  test::expect_close(net_d(x.to(Device::cuda(0))).to(Device::cpu()), net(x), 1e-12, 1e-12);
  test::expect_close(net_d.state_dict().at("2.running_mean").to(Device::cpu()),
                     net.state_dict().at("2.running_mean"), 1e-12, 1e-12);
  net.eval();
  net_d.eval();
  test::expect_close(net_d(x.to(Device::cuda(0))).to(Device::cpu()), net(x), 1e-12, 1e-12);
  // An embedding and a GRU cell.
  nn::Embedding emb(10, 3, std::nullopt, f64(), &gen);
  nn::GRUCell cell(3, 4, true, f64(), &gen);
  const Tensor idx = test::index_tensor({1, 9, 4});
  const Tensor h = cell(emb(idx));
  emb.to(Device::cuda(0));
  cell.to(Device::cuda(0));
  test::expect_close(cell(emb(idx.to(Device::cuda(0)))).to(Device::cpu()), h, 1e-12, 1e-12);
}

}  // namespace
}  // namespace ember
