// The CPU launcher's multi-tensor passes: the fused optimizer step, whose slots' elements
// form one range that parallel_for splits across cores (many small parameters share the
// threads as well as one large one does; each piece walks the slots it overlaps with a plain
// loop), and the finite check of a step's gradients.

#include "kernels/common/areas/optim.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/common/dispatch.hpp"
#include "kernels/common/op_lists.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cpu/cpu_loops.hpp"

namespace ember::kernels {
namespace cpu {
namespace {

// One slot's elements [first, last), compiled for each vector width (cpu_loops.hpp): the
// updates are elementwise with exact sqrt and division, so every width gives the same bits.
template <typename Update, typename T>
EMBER_CPU_CLONES void update_range(const Update& update, const SlotPointers<T>& ptr,
                                   std::int64_t first, std::int64_t last) {
  const Update local = update;  // stores through the slot's pointers cannot alias these
  const SlotPointers<T> p = ptr;
  // Element i reads and writes index i of the param, its gradient and its state alone.
  EMBER_IVDEP
  for (std::int64_t i = first; i < last; ++i) local(p, i);
}

template <typename Update, typename T>
void step_impl(std::span<const OptimSlot> slots) {
  // begin[k]: the first element of slot k in the joint range, in memory of the calling thread
  // kept for its next step (a replayed step takes nothing else from the heap). The workers
  // read the caller's through this reference: a thread_local named in the loop's body would
  // be each worker's own.
  thread_local std::vector<std::int64_t> t_begin;
  std::vector<std::int64_t>& begin = t_begin;
  begin.assign(slots.size() + 1, 0);
  for (std::size_t k = 0; k < slots.size(); ++k) begin[k + 1] = begin[k] + slots[k].numel;
  parallel_for(begin.back(), kParallelGrain, [&](std::int64_t lo, std::int64_t hi) {
    auto k = static_cast<std::size_t>(std::upper_bound(begin.begin(), begin.end(), lo) -
                                      begin.begin() - 1);
    for (; lo < hi; ++k) {
      const std::int64_t end = std::min(hi, begin[k + 1]);
      // Local copies: the loop's stores through T* cannot alias them, so the scalars stay
      // in registers. (The loops with a sqrt vectorize only where the compiler may drop
      // errno, -fno-math-errno; SGD's always does.)
      const Update update(slots[k].scalars);
      const SlotPointers<T> ptr(slots[k]);
      const std::int64_t first = lo - begin[k], last = end - begin[k];
      update_range(update, ptr, first, last);
      lo = end;
    }
  });
}

}  // namespace

void launch_optimizer_step(CpuBackend&, OptimKind kind, DType dtype,
                           std::span<const OptimSlot> slots) {
  if (slots.empty()) return;
  dispatch_floating(dtype, optim_kind_name(kind), [&]<typename T>() {
    visit_op<T>(OptimizerUpdates{}, static_cast<int>(kind),
                [&]<typename Update>() { step_impl<Update, T>(slots); });
  });
}

namespace {

// Whether none of p[0, n) is an inf or a NaN: their exponent bits are all ones. Testing the
// bits, OR-ed over a block without a branch, vectorizes; std::isfinite with an early exit
// per element does not.
template <typename T>
bool all_finite_bits(const T* p, std::int64_t n) {
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  constexpr Bits kExponent =
      static_cast<Bits>(sizeof(T) == 4 ? 0x7f800000ull : 0x7ff0000000000000ull);
  constexpr std::int64_t kBlock = 4096;
  for (std::int64_t lo = 0; lo < n; lo += kBlock) {
    const std::int64_t hi = std::min(n, lo + kBlock);
    Bits bad = 0;
    for (std::int64_t i = lo; i < hi; ++i) {
      Bits b;
      std::memcpy(&b, p + i, sizeof b);
      bad |= static_cast<Bits>((b & kExponent) == kExponent);
    }
    if (bad != 0) return false;
  }
  return true;
}

}  // namespace

bool launch_all_finite(CpuBackend&, std::span<const TensorArg> tensors) {
  for (const TensorArg& t : tensors) {
    bool finite = true;
    dispatch_floating(t.dtype, "all_finite",
                      [&]<typename T>() { finite = all_finite_bits(t.ptr<const T>(), t.numel()); });
    if (!finite) return false;
  }
  return true;
}

}  // namespace cpu

template class OptimArea<cpu::CpuBackend>;

}  // namespace ember::kernels
