// The CPU launcher's memory: 64-byte aligned host blocks from its caching allocator; copies
// are memcpy, and there is nothing to wait for.
#include "kernels/common/areas/memory.hpp"

#include <cstring>

#include "kernels/cpu/cpu_backend.hpp"

namespace ember::kernels {
namespace cpu {

void* memory_allocate(CpuBackend& cpu, std::size_t nbytes) {
  return cpu.allocator().allocate(nbytes);
}
void memory_deallocate(CpuBackend& cpu, void* ptr, void*, bool) { cpu.allocator().deallocate(ptr); }
void memory_copy_from_host(CpuBackend&, void* dst, const void* src, std::size_t nbytes) {
  if (nbytes) std::memcpy(dst, src, nbytes);
}
void memory_copy_to_host(CpuBackend&, void* dst, const void* src, std::size_t nbytes) {
  if (nbytes) std::memcpy(dst, src, nbytes);
}
void memory_synchronize(CpuBackend&) {}

}  // namespace cpu

template class MemoryArea<cpu::CpuBackend>;

}  // namespace ember::kernels
