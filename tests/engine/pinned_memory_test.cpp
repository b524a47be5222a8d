// Page-locked host memory and asynchronous uploads: Tensor::pin_memory, is_pinned and
// to(device, non_blocking), and the backend hooks behind them, on the CPU (where pinned memory
// is ordinary memory and an upload is a copy). The GPU cases are in
// tests/engine/data/data_loader_cuda_test.cpp.
#include <gtest/gtest.h>

#include <cstring>
#include <ember/ember.hpp>
#include <vector>

#include "kernels/backend.hpp"

namespace ember {
namespace {

TEST(PinnedMemory, PinMemoryCopiesIntoPinnedStorage) {
  const Tensor t = arange(12.0).reshape({3, 4});
  EXPECT_FALSE(t.is_pinned());
  const Tensor pinned = t.pin_memory(Device::cpu());
  EXPECT_TRUE(pinned.is_pinned());
  EXPECT_TRUE(pinned.device().is_cpu());
  EXPECT_NE(pinned.data_ptr(), t.data_ptr());
  EXPECT_EQ(pinned.to_vector<double>(), t.to_vector<double>());
  // Pinning pinned memory again is free; views of it are pinned, copies are not.
  EXPECT_EQ(pinned.pin_memory(Device::cpu()).data_ptr(), pinned.data_ptr());
  EXPECT_TRUE(pinned.slice(0, 1, 3).is_pinned());
  EXPECT_FALSE(pinned.clone().is_pinned());
  // A strided view is pinned as its values, contiguously.
  const Tensor transposed = t.t().pin_memory(Device::cpu());
  EXPECT_TRUE(transposed.is_contiguous());
  EXPECT_EQ(transposed.to_vector<double>(), t.t().contiguous().to_vector<double>());
  // The default target is the best device, which without a GPU is the CPU.
  EXPECT_TRUE(t.pin_memory().is_pinned());
  for (const DType dtype : {kBool, kInt64, kFloat32, kFloat64}) {
    EXPECT_EQ(t.to(dtype).pin_memory().dtype(), dtype);
  }
}

TEST(PinnedMemory, NonBlockingCopiesGiveTheSameValues) {
  const Tensor pinned = arange(5.0).pin_memory(Device::cpu());
  // To the CPU, a tensor already there is itself, blocking or not.
  EXPECT_EQ(pinned.to(Device::cpu(), /*non_blocking=*/true).data_ptr(), pinned.data_ptr());
  const Tensor ordinary = arange(5.0);
  EXPECT_EQ(ordinary.to(Device::cpu(), true).data_ptr(), ordinary.data_ptr());
  if (cuda_available()) {
    EXPECT_EQ(ordinary.to(Device::cuda(0), true).to_vector<double>(), ordinary.to_vector<double>());
  }
}

TEST(PinnedMemory, OnlyCpuTensorsArePinnedForExistingDevices) {
  if (cuda_available()) {
    EXPECT_THROW(zeros({2}, TensorOptions{}.with_device(Device::cuda(0))).pin_memory(),
                 DeviceError);
  } else {
    EXPECT_THROW(zeros({2}).pin_memory(Device(DeviceType::CUDA, 0)), DeviceError);
  }
}

TEST(PinnedMemory, CpuBackendHooksAreAlignedMemoryAndACopy) {
  kernels::Backend& cpu = kernels::cpu_backend();
  EXPECT_EQ(cpu.streams(), nullptr);
  const std::size_t n = 1000;
  void* block = cpu.allocate_pinned(n);
  ASSERT_NE(block, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(block) % 64, 0u);
  std::vector<unsigned char> source(n);
  for (std::size_t i = 0; i < n; ++i) source[i] = static_cast<unsigned char>(i * 31);
  cpu.copy_from_host_async(block, source.data(), n);
  EXPECT_EQ(std::memcmp(block, source.data(), n), 0);
  cpu.copy_from_host_async(block, nullptr, 0);  // nothing to copy: no access
  cpu.deallocate_pinned(block, nullptr, false);
}

}  // namespace
}  // namespace ember
