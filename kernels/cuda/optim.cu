// The CUDA launcher of the fused optimizer step: one launch updates every parameter of a
// step. The slot table travels in the kernel's parameters, so there is no host staging
// buffer to keep alive, nothing to copy or free, and a CUDA Graph captures the table by
// value. Blocks map to (slot, chunk): each block finds its slot by a binary search over
// the slots' first blocks, then grid-strides over that slot's elements with its siblings.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/common/areas/optim.hpp"
#include "kernels/common/dispatch.hpp"
#include "kernels/common/op_lists.hpp"
#include "kernels/cuda/cuda_backend.cuh"

namespace ember::kernels {
namespace cuda {
namespace {

// A slot gets one block per this many elements, at most kMaxBlocksPerSlot of them (a
// larger parameter loops): about 4 elements per thread for a parameter of moderate size,
// and a single large one still spreads over every SM.
inline constexpr std::int64_t kElementsPerBlock = std::int64_t{kBlockSize} * 4;
inline constexpr std::int64_t kMaxBlocksPerSlot = 1024;

template <int Capacity>
struct SlotTable {
  int count;                      // slots in use
  int block_begin[Capacity + 1];  // first block of each slot; [count] is the grid size
  OptimSlot slots[Capacity];
};

// Two table sizes: a step of a few parameters passes under 2 KiB of parameters per launch,
// and one of hundreds goes in a single launch per 256 slots. Kernel parameters may take up
// to 32764 bytes from Volta on (CUDA 12.1 and later); the small table also fits the 4 KiB
// of older toolkits.
inline constexpr int kSmallTable = 16;
inline constexpr int kLargeTable = 256;
static_assert(sizeof(SlotTable<kSmallTable>) <= 4096, "small slot table exceeds 4 KiB");
static_assert(sizeof(SlotTable<kLargeTable>) <= 32764,
              "slot table exceeds the kernel parameter limit");

// __grid_constant__: the table is read in place from parameter space, even at the dynamic
// index of the slot, instead of being copied into each thread's local memory.
template <typename Update, typename T, int Capacity>
__global__ void __launch_bounds__(kBlockSize)
    optimizer_step_kernel(const __grid_constant__ SlotTable<Capacity> table) {
  const int block = static_cast<int>(blockIdx.x);
  // The last slot whose first block is at or before this one.
  int lo = 0, hi = table.count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (table.block_begin[mid] <= block) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  const OptimSlot& slot = table.slots[lo];
  const Update update(slot.scalars);
  const SlotPointers<T> ptr(slot);
  const int first = table.block_begin[lo];
  const std::int64_t stride = std::int64_t{table.block_begin[lo + 1] - first} * blockDim.x;
  for (std::int64_t i = std::int64_t{block - first} * blockDim.x + threadIdx.x; i < slot.numel;
       i += stride) {
    update(ptr, i);
  }
}

template <typename Update, typename T, int Capacity>
void launch_table(cudaStream_t stream, std::span<const OptimSlot> slots) {
  SlotTable<Capacity> table{};
  int blocks = 0;
  for (const OptimSlot& s : slots) {
    if (s.numel == 0) continue;  // every slot in the table owns at least one block
    table.block_begin[table.count] = blocks;
    table.slots[table.count++] = s;
    blocks += static_cast<int>(std::clamp<std::int64_t>(
        (s.numel + kElementsPerBlock - 1) / kElementsPerBlock, 1, kMaxBlocksPerSlot));
  }
  if (table.count == 0) return;
  table.block_begin[table.count] = blocks;
  optimizer_step_kernel<Update, T, Capacity><<<blocks, kBlockSize, 0, stream>>>(table);
  EMBER_CUDA_LAUNCH_CHECK();
}

template <typename Update, typename T>
void launch_step(cudaStream_t stream, std::span<const OptimSlot> slots) {
  if (slots.size() <= static_cast<std::size_t>(kSmallTable)) {
    launch_table<Update, T, kSmallTable>(stream, slots);
    return;
  }
  for (std::size_t b = 0; b < slots.size(); b += kLargeTable) {
    const std::size_t n = std::min<std::size_t>(kLargeTable, slots.size() - b);
    launch_table<Update, T, kLargeTable>(stream, slots.subspan(b, n));
  }
}

}  // namespace

void launch_optimizer_step(CudaBackend& cuda, OptimKind kind, DType dtype,
                           std::span<const OptimSlot> slots) {
  DeviceContext& ctx = cuda.context();
  if (slots.empty()) return;
  const DeviceGuard guard(ctx.device());
  const cudaStream_t stream = ctx.stream();
  dispatch_floating(dtype, optim_kind_name(kind), [&]<typename T>() {
    visit_op<T>(OptimizerUpdates{}, static_cast<int>(kind),
                [&]<typename Update>() { launch_step<Update, T>(stream, slots); });
  });
}

}  // namespace cuda

template class OptimArea<cuda::CudaBackend>;

}  // namespace ember::kernels
