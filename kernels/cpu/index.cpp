// Indexing on the CPU: index_select, gather, index_add, scatter_add, im2col and col2im are the
// shared area of kernels/common/launcher.hpp (the accumulating ones, index_add, scatter_add
// and col2im, on one thread); the bounds check finds the first offending index.
#include "kernels/common/areas/index.hpp"

#include "kernels/cpu/cpu_backend.hpp"

namespace ember::kernels {
namespace cpu {

bool launch_find_index_out_of_range(CpuBackend&, const TensorArg& index, std::int64_t bound,
                                    std::int64_t* bad) {
  const std::int64_t* idx = index.ptr<const std::int64_t>();
  const TensorArg* args[1] = {&index};
  const auto calc = make_offset_calc<1>(args);
  std::int64_t off[1];
  for (std::int64_t i = 0, n = index.numel(); i < n; ++i) {
    calc.get(i, off);
    const std::int64_t v = idx[off[0]];
    if (v < 0 || v >= bound) {
      *bad = v;
      return true;
    }
  }
  return false;
}

}  // namespace cpu

template class IndexArea<cpu::CpuBackend>;

}  // namespace ember::kernels
