// The CPU launcher's one instance. This file sees only the declarations of the launcher's
// areas (each is instantiated in the file that defines its functions).
#include "kernels/cpu/cpu_backend.hpp"

#include <cstdint>
#include <utility>
#include <vector>

namespace ember::kernels {

Backend& cpu_backend() {
  // Never destroyed: tensors held in static objects may free memory after main returns.
  static cpu::CpuBackend* backend = new cpu::CpuBackend();
  return *backend;
}

}  // namespace ember::kernels

namespace ember::kernels::cpu {

constinit thread_local BindSink* t_bind_sink = nullptr;

BoundCall CpuBackend::run_bound(const std::function<void()>& call, bool capture) {
  BindSink sink;
  sink.capture = capture;
  BindSink* const saved = std::exchange(t_bind_sink, &sink);
  try {
    call();
  } catch (...) {
    t_bind_sink = saved;
    throw;
  }
  t_bind_sink = saved;
  if (sink.runs != 1 || !sink.bindable) return {};
  return {std::move(sink.bound), std::move(sink.scalars), std::move(sink.ranged)};
}

bool CpuBackend::run_fused(const RangedLoop* const* loops, int count, FuseCarry* carries,
                           std::size_t carry_count, const unsigned* locals) {
  if (count < 2) return false;
  const std::int64_t n = loops[0]->n;
  int reductions = 0;
  for (int k = 0; k < count; ++k) {
    const RangedLoop& l = *loops[k];
    if (l.n != n || !l.run) return false;
    reductions += l.reduces ? 1 : 0;
  }
  if (reductions > kMaxFusedReductions) return false;
  // Elements per tile: a multiple of kFuseAlign, small enough that a tile of every operand
  // of a few calls stays in the L1 and L2 caches.
  constexpr std::int64_t kTile = 2048;
  static_assert(kTile % kFuseAlign == 0);
  // A thread's elements [begin, end), tile by tile; operands local to the run live in
  // elements [begin, begin + kTile) of their memory, which no other thread's elements reach.
  auto tiles = [&](std::int64_t begin, std::int64_t end, FuseCarry* slice) {
    for (std::int64_t t = begin; t < end; t += kTile) {
      const std::int64_t t_end = std::min(end, t + kTile);
      for (int k = 0, r = 0; k < count; ++k) {
        const unsigned local = locals != nullptr ? locals[k] : 0u;
        loops[k]->run(t, t_end, loops[k]->reduces ? slice[r++].bytes : nullptr,
                      local != 0 ? t - begin : 0, local);
      }
    }
  };
  if (reductions == 0) {
    parallel_for(n, kParallelGrain,
                 [&](std::int64_t begin, std::int64_t end) { tiles(begin, end, nullptr); });
    return true;
  }
  // The slices the reductions add in alone (one per thread), each a range of elements that a
  // thread takes through every call; the carry of reduction r in slice s is carries[s *
  // reductions + r].
  const ReduceSlices slices = reduce_slices(n);
  if (static_cast<std::size_t>(slices.count) * reductions > carry_count) return false;
  parallel_for(slices.count, 0, [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t s = first; s < last; ++s) {
      FuseCarry* const slice = carries + s * reductions;
      for (int k = 0, r = 0; k < count; ++k)
        if (loops[k]->reduces) loops[k]->start(slice[r++].bytes);
      tiles(s * slices.chunk, std::min(n, (s + 1) * slices.chunk), slice);
    }
  });
  const std::size_t stride = sizeof(FuseCarry) * reductions;
  for (int k = 0, r = 0; k < count; ++k)
    if (loops[k]->reduces) loops[k]->finish(carries[r++].bytes, stride, slices.count);
  return true;
}

namespace {

// Largest operand densify copies (elements): beyond it the strided walk's cost is dominated
// by memory traffic, which a copy would add to.
constexpr std::int64_t kDenseMax = 1 << 16;
// Operands of one call that densify may copy (a binary backward's a, b and y).
constexpr int kDenseBuffers = 4;

template <typename E>
void fill_rows(const TensorArg& a, const TensorArg& out, E* dst) {
  // Row r of out's shape (every dim but the innermost) holds one value of a, repeated.
  const int nd = out.ndim;
  const std::int64_t inner = out.sizes[nd - 1];
  const std::int64_t rows = out.numel() / inner;
  const E* src = static_cast<const E*>(a.data);
  std::int64_t coord[kMaxRank] = {};
  std::int64_t offset = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    const E v = src[offset];
    for (std::int64_t j = 0; j < inner; ++j) dst[r * inner + j] = v;
    for (int d = nd - 2; d >= 0; --d) {
      offset += a.strides[d];
      if (++coord[d] < out.sizes[d]) break;
      offset -= coord[d] * a.strides[d];
      coord[d] = 0;
    }
  }
}

}  // namespace

TensorArg Loop::densify(const TensorArg& a, const TensorArg& out) {
  const int nd = out.ndim;
  if (a.is_scalar() || a.ndim != nd || nd < 2 || out.sizes[nd - 1] <= 1 || a.strides[nd - 1] != 0 ||
      !out.is_contiguous() || out.numel() > kDenseMax || dense_used_ >= kDenseBuffers) {
    return a;
  }
  thread_local std::vector<std::uint64_t> buffers[kDenseBuffers];
  std::vector<std::uint64_t>& buffer = buffers[dense_used_++];
  const std::size_t bytes = static_cast<std::size_t>(out.numel()) * element_size(a.dtype);
  if (buffer.size() * sizeof(std::uint64_t) < bytes)
    buffer.resize(bytes / sizeof(std::uint64_t) + 1);
  switch (element_size(a.dtype)) {
    case 1:
      fill_rows(a, out, reinterpret_cast<std::uint8_t*>(buffer.data()));
      break;
    case 4:
      fill_rows(a, out, reinterpret_cast<std::uint32_t*>(buffer.data()));
      break;
    case 8:
      fill_rows(a, out, buffer.data());
      break;
    default:
      return a;
  }
  TensorArg dense = out;
  dense.data = buffer.data();
  dense.dtype = a.dtype;
  dense.scalar = 0.0;
  return dense;
}

}  // namespace ember::kernels::cpu
