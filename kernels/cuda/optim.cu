// The CUDA launcher's multi-tensor passes: the fused optimizer step (one launch updates
// every parameter of a step) and the finite check of a step's gradients (one launch reads
// them all, one flag comes back). The slot table travels in the kernel's parameters, so
// there is no host staging buffer to keep alive, nothing to copy or free, and a CUDA Graph
// captures the table by value. Blocks map to (slot, chunk): each block finds its slot by a
// binary search over the slots' first blocks, then grid-strides over that slot's elements
// with its siblings.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

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

template <typename Slot, int Capacity>
struct SlotTable {
  int count;                      // slots in use
  int block_begin[Capacity + 1];  // first block of each slot; [count] is the grid size
  Slot slots[Capacity];
};

// A tensor of the finite check, and where a non-finite element is reported.
struct FiniteSlot {
  const void* data;
  std::int64_t numel;
  bool is_double;
  unsigned* nonfinite;
};

// Two table sizes: a step of a few parameters passes under 2 KiB of parameters per launch,
// and one of hundreds goes in a single launch per 256 slots. Kernel parameters may take up
// to 32764 bytes from Volta on (CUDA 12.1 and later); the small table also fits the 4 KiB
// of older toolkits.
inline constexpr int kSmallTable = 16;
inline constexpr int kLargeTable = 256;
static_assert(sizeof(SlotTable<OptimSlot, kSmallTable>) <= 4096, "small slot table exceeds 4 KiB");
static_assert(sizeof(SlotTable<OptimSlot, kLargeTable>) <= 32764,
              "slot table exceeds the kernel parameter limit");

// Element i of an optimizer slot: the update rule applied in place.
template <typename Update, typename T>
struct UpdateElement {
  __device__ void operator()(const OptimSlot& slot, std::int64_t i) const {
    Update(slot.scalars)(SlotPointers<T>(slot), i);
  }
};

// Element i of a finite-check slot: a non-finite value raises the flag.
struct CheckFiniteElement {
  __device__ void operator()(const FiniteSlot& slot, std::int64_t i) const {
    const double v = slot.is_double ? static_cast<const double*>(slot.data)[i]
                                    : static_cast<const float*>(slot.data)[i];
    if (!isfinite(v)) *slot.nonfinite = 1;
  }
};

// __grid_constant__: the table is read in place from parameter space, even at the dynamic
// index of the slot, instead of being copied into each thread's local memory.
template <typename Element, typename Slot, int Capacity>
__global__ void __launch_bounds__(kBlockSize)
    multi_tensor_kernel(const __grid_constant__ SlotTable<Slot, Capacity> table) {
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
  const Slot& slot = table.slots[lo];
  const Element element{};
  const int first = table.block_begin[lo];
  const std::int64_t stride = std::int64_t{table.block_begin[lo + 1] - first} * blockDim.x;
  for (std::int64_t i = std::int64_t{block - first} * blockDim.x + threadIdx.x; i < slot.numel;
       i += stride) {
    element(slot, i);
  }
}

template <typename Element, typename Slot, int Capacity>
void launch_table(cudaStream_t stream, std::span<const Slot> slots) {
  SlotTable<Slot, Capacity> table{};
  int blocks = 0;
  for (const Slot& s : slots) {
    if (s.numel == 0) continue;  // every slot in the table owns at least one block
    table.block_begin[table.count] = blocks;
    table.slots[table.count++] = s;
    blocks += static_cast<int>(std::clamp<std::int64_t>(
        (s.numel + kElementsPerBlock - 1) / kElementsPerBlock, 1, kMaxBlocksPerSlot));
  }
  if (table.count == 0) return;
  table.block_begin[table.count] = blocks;
  multi_tensor_kernel<Element, Slot, Capacity><<<blocks, kBlockSize, 0, stream>>>(table);
  EMBER_CUDA_LAUNCH_CHECK();
}

// One launch for a few slots, one per 256 slots beyond that.
template <typename Element, typename Slot>
void launch_multi_tensor(cudaStream_t stream, std::span<const Slot> slots) {
  if (slots.size() <= static_cast<std::size_t>(kSmallTable)) {
    launch_table<Element, Slot, kSmallTable>(stream, slots);
    return;
  }
  for (std::size_t b = 0; b < slots.size(); b += kLargeTable) {
    const std::size_t n = std::min<std::size_t>(kLargeTable, slots.size() - b);
    launch_table<Element, Slot, kLargeTable>(stream, slots.subspan(b, n));
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
    visit_op<T>(OptimizerUpdates{}, static_cast<int>(kind), [&]<typename Update>() {
      launch_multi_tensor<UpdateElement<Update, T>>(stream, slots);
    });
  });
}

bool launch_all_finite(CudaBackend& cuda, std::span<const TensorArg> tensors) {
  if (tensors.empty()) return true;
  DeviceContext& ctx = cuda.context();
  const DeviceGuard guard(ctx.device());
  const cudaStream_t stream = ctx.stream();
  const DeviceBuffer flag(ctx, sizeof(unsigned));
  EMBER_CUDA_CHECK(cudaMemsetAsync(flag.get(), 0, sizeof(unsigned), stream));
  std::vector<FiniteSlot> slots;
  slots.reserve(tensors.size());
  for (const TensorArg& t : tensors) {
    slots.push_back({t.data, t.numel(), t.dtype == DType::Float64, flag.as<unsigned>()});
  }
  launch_multi_tensor<CheckFiniteElement>(stream, std::span<const FiniteSlot>(slots));
  unsigned host = 0;
  EMBER_CUDA_CHECK(
      cudaMemcpyAsync(&host, flag.get(), sizeof(unsigned), cudaMemcpyDeviceToHost, stream));
  EMBER_CUDA_SYNC(stream);
  return host == 0;
}

}  // namespace cuda

template class OptimArea<cuda::CudaBackend>;

}  // namespace ember::kernels
