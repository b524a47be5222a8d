// The GPU upload path: pinned memory, asynchronous uploads ordered across streams, the pinned
// cache's reuse only after an upload is done, and the DataLoader delivering batches to a GPU
// with the same contents and order as on the CPU. Each case skips where there is no device.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "engine/data/data_test_util.hpp"
#include "kernels/backend.hpp"

namespace ember::test {
namespace {

using data::Batch;
using data::DataLoader;
using data::TensorDataset;

#define EMBER_REQUIRE_CUDA() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device"

TEST(PinnedMemoryCuda, UploadsAsynchronouslyAndOrdersTheUseAfterIt) {
  EMBER_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  const Tensor host = arange(1 << 20, TensorOptions{}.with_dtype(kFloat32));
  Tensor uploaded;
  {
    // Uploaded on a side stream from pinned memory that is dropped at once: the memory
    // must outlive the copy, and the default stream's use must wait for it.
    const Stream side(gpu);
    const StreamGuard on_side(side);
    uploaded = host.pin_memory(gpu).to(gpu, /*non_blocking=*/true);
  }
  // Reuse of pinned blocks: many more, written at once, must not land in the upload.
  for (int i = 0; i < 8; ++i) {
    Tensor scratch = full({1 << 20}, -1.0).pin_memory(gpu);
    std::fill_n(static_cast<float*>(scratch.data_ptr()), 1 << 20, -2.0f);
  }
  // A kernel on the default stream reads the upload first.
  EXPECT_EQ((uploaded * 2.0).to_vector<float>(), (host * 2.0).to_vector<float>());
}

TEST(PinnedMemoryCuda, BackendHooksRoundTripBytes) {
  EMBER_REQUIRE_CUDA();
  kernels::Backend& gpu = kernels::backend_for(Device::cuda(0));
  const std::size_t n = 4096;
  auto* block = static_cast<unsigned char*>(gpu.allocate_pinned(n));
  for (std::size_t i = 0; i < n; ++i) block[i] = static_cast<unsigned char>(i * 7);
  void* device = gpu.allocate(n);
  gpu.copy_from_host_async(device, block, n);
  std::vector<unsigned char> back(n);
  gpu.copy_to_host(back.data(), device, n);  // on the same stream: after the upload
  EXPECT_TRUE(std::equal(back.begin(), back.end(), block));
  gpu.deallocate_pinned(block, gpu.streams()->current(), false);
  gpu.deallocate(device, gpu.streams()->current(), false);
}

TEST(DataLoaderCuda, DeliversTheCpuLoadersBatchesOnTheGpu) {
  EMBER_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  const Tensor x = randn({1000, 784}, TensorOptions{}.with_dtype(kFloat32));
  const Tensor y = arange(1000.0, TensorOptions{}.with_dtype(kInt64));
  for (const bool resident : {false, true}) {
    SCOPED_TRACE(resident ? "dataset on the GPU" : "dataset on the CPU");
    const TensorDataset ds =
        resident ? TensorDataset({x.to(gpu), y.to(gpu)}) : TensorDataset({x, y});
    DataLoader on_gpu(ds, {.batch_size = 128, .seed = 4, .device = gpu, .prefetch = 3});
    DataLoader on_cpu(TensorDataset({x, y}), {.batch_size = 128, .seed = 4});
    for (int epoch = 0; epoch < 2; ++epoch) {
      auto cpu_it = on_cpu.begin();
      std::int64_t seen = 0;
      for (const Batch& b : on_gpu) {
        ASSERT_FALSE(cpu_it == on_cpu.end());
        EXPECT_EQ(b[0].device(), gpu);
        EXPECT_EQ(b.indices.device(), gpu);
        EXPECT_EQ(b.indices.to_vector<std::int64_t>(), cpu_it->indices.to_vector<std::int64_t>());
        EXPECT_EQ(b[0].to_vector<float>(), (*cpu_it)[0].to_vector<float>());
        // Used on the default stream right away: ordered after the loader's upload.
        EXPECT_EQ(sum(b[1]).item(), sum((*cpu_it)[1]).item());
        seen += b.size();
        ++cpu_it;
      }
      EXPECT_EQ(seen, 1000);
    }
  }
}

TEST(DataLoaderCuda, StopsMidEpochWithUploadsInFlight) {
  EMBER_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  DataLoader loader(TensorDataset({zeros({4096, 1024})}),
                    {.batch_size = 256, .device = gpu, .prefetch = 4});
  for (int epoch = 0; epoch < 10; ++epoch) {
    auto it = loader.begin();
    ++it;
    EXPECT_EQ(it->number, 1);
  }
  synchronize(gpu);
}

}  // namespace
}  // namespace ember::test
