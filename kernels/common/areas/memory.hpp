// The definitions of MemoryArea, which forwards to the launcher's memory_* functions
// (kernels/common/launcher.hpp), included only by the launcher source file that instantiates it.
#pragma once

#include "kernels/common/launcher.hpp"

namespace ember::kernels {

template <typename Impl>
void* MemoryArea<Impl>::allocate(std::size_t nbytes) {
  return memory_allocate(static_cast<Impl&>(*this), nbytes);
}

template <typename Impl>
void MemoryArea<Impl>::deallocate(void* ptr, void* stream, bool shared) {
  memory_deallocate(static_cast<Impl&>(*this), ptr, stream, shared);
}

template <typename Impl>
void MemoryArea<Impl>::copy_from_host(void* dst, const void* src, std::size_t nbytes) {
  memory_copy_from_host(static_cast<Impl&>(*this), dst, src, nbytes);
}

template <typename Impl>
void MemoryArea<Impl>::copy_to_host(void* dst, const void* src, std::size_t nbytes) {
  memory_copy_to_host(static_cast<Impl&>(*this), dst, src, nbytes);
}

template <typename Impl>
void* MemoryArea<Impl>::allocate_pinned(std::size_t nbytes) {
  return memory_allocate_pinned(static_cast<Impl&>(*this), nbytes);
}

template <typename Impl>
void MemoryArea<Impl>::deallocate_pinned(void* ptr, void* stream, bool shared) {
  memory_deallocate_pinned(static_cast<Impl&>(*this), ptr, stream, shared);
}

template <typename Impl>
void MemoryArea<Impl>::copy_from_host_async(void* dst, const void* src, std::size_t nbytes) {
  memory_copy_from_host_async(static_cast<Impl&>(*this), dst, src, nbytes);
}

template <typename Impl>
void MemoryArea<Impl>::synchronize() {
  memory_synchronize(static_cast<Impl&>(*this));
}

}  // namespace ember::kernels
