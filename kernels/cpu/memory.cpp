// The CPU launcher's memory: 64-byte aligned host blocks from its caching allocator; copies
// are memcpy, and there is nothing to wait for. "Pinned" memory is the same memory: a CPU
// target has no device to copy to asynchronously, and code written for a GPU runs unchanged.
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
void* memory_allocate_pinned(CpuBackend& cpu, std::size_t nbytes) {
  return memory_allocate(cpu, nbytes);
}
void memory_deallocate_pinned(CpuBackend& cpu, void* ptr, void* stream, bool shared) {
  memory_deallocate(cpu, ptr, stream, shared);
}
void memory_copy_from_host_async(CpuBackend& cpu, void* dst, const void* src, std::size_t nbytes) {
  memory_copy_from_host(cpu, dst, src, nbytes);
}
void memory_synchronize(CpuBackend&) {}

}  // namespace cpu

template class MemoryArea<cpu::CpuBackend>;

}  // namespace ember::kernels
