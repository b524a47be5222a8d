// What every CUDA launcher needs: the error checks that turn CUDA and cuBLAS failures into
// ember::CudaError, a device's stream, allocator and cuBLAS handle, and launch geometry.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ember/error.hpp"
#include "kernels/backend.hpp"
#include "kernels/common/counters.hpp"
#include "kernels/cuda/cuda_libraries.cuh"

namespace ember::kernels::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* expr, const char* file,
                                     int line);
[[noreturn]] void throw_cusolver_error(cusolverStatus_t status, const char* expr, const char* file,
                                       int line);

}  // namespace ember::kernels::cuda

// Throws ember::CudaError naming the expression, CUDA's message, the file and the line.
#define EMBER_CUDA_CHECK(expr)                                                              \
  do {                                                                                      \
    const cudaError_t ember_cuda_err_ = (expr);                                             \
    if (ember_cuda_err_ != cudaSuccess) [[unlikely]] {                                      \
      ::ember::kernels::cuda::throw_cuda_error(ember_cuda_err_, #expr, __FILE__, __LINE__); \
    }                                                                                       \
  } while (0)

// After every <<<...>>>: a bad configuration or a missing kernel image shows up here, at the
// launch that caused it, rather than at some later unrelated call.
#define EMBER_CUDA_LAUNCH_CHECK()                         \
  do {                                                    \
    ++::ember::kernels::t_event_counters.kernel_launches; \
    EMBER_CUDA_CHECK(cudaGetLastError());                 \
  } while (0)

#define EMBER_CUBLAS_CHECK(expr)                                                                   \
  do {                                                                                             \
    const cublasStatus_t ember_cublas_status_ = (expr);                                            \
    if (ember_cublas_status_ != CUBLAS_STATUS_SUCCESS) [[unlikely]] {                              \
      ::ember::kernels::cuda::throw_cublas_error(ember_cublas_status_, #expr, __FILE__, __LINE__); \
    }                                                                                              \
  } while (0)

#define EMBER_CUSOLVER_CHECK(expr)                                                          \
  do {                                                                                      \
    const cusolverStatus_t ember_cusolver_status_ = (expr);                                 \
    if (ember_cusolver_status_ != CUSOLVER_STATUS_SUCCESS) [[unlikely]] {                   \
      ::ember::kernels::cuda::throw_cusolver_error(ember_cusolver_status_, #expr, __FILE__, \
                                                   __LINE__);                               \
    }                                                                                       \
  } while (0)

// A wait of the host for the device, counted (ember/profile.hpp reports host syncs).
#define EMBER_CUDA_SYNC(stream)                      \
  do {                                               \
    ++::ember::kernels::t_event_counters.host_syncs; \
    EMBER_CUDA_CHECK(cudaStreamSynchronize(stream)); \
  } while (0)

namespace ember::kernels::cuda {

// One device's execution resources, created on first use (thread-safe): a default
// non-blocking stream, a pool of further streams (per-thread streams, Stream objects, one
// per SVI), a stream-ordered memory pool of Ember's own (never the device's default pool,
// which other libraries in the process share and configure), and cuBLAS and cuSOLVER handles
// made at their first use. Contexts and their streams live until the process ends and are
// never torn down: at exit the CUDA runtime may already be gone.
class DeviceContext final : public StreamControl {
 public:
  explicit DeviceContext(int device) : device_(device) {}
  DeviceContext(const DeviceContext&) = delete;
  DeviceContext& operator=(const DeviceContext&) = delete;

  int device() const { return device_; }
  // The calling thread's current stream: one it set (StreamGuard), else its own stream in
  // per-thread mode, else the default stream.
  cudaStream_t stream();

  // Stream-ordered: memory freed here is reused by later work on the stream without a
  // device-wide sync, and the pool keeps it (release threshold UINT64_MAX) instead of
  // returning it to the driver at every synchronization. Other streams may reuse it only
  // once ordered after the free (the pool's default reuse policies).
  void* allocate(std::size_t nbytes);
  // Frees on `stream` (null: the default), after every other stream's queued work when the
  // memory was shared between streams. Never throws (called from destructors).
  void deallocate(void* ptr, cudaStream_t stream, bool shared) noexcept;
  // Waits for the calling thread's current stream (counted as a host sync).
  void synchronize();

  // Page-locked host memory (cudaHostAlloc, usable from every device) from a small cache of
  // blocks: uploads from it are asynchronous. A block freed with a stream returns to the cache
  // only once the work queued on that stream (on every stream when shared) is done, since a
  // copy from it may still be running; the host never waits for it.
  void* allocate_pinned(std::size_t nbytes);
  void deallocate_pinned(void* ptr, cudaStream_t stream, bool shared) noexcept;

  // StreamControl.
  void* current() override { return stream(); }
  void* set_current(void* stream) override;
  void* acquire() override;
  void release(void* stream) override;
  void wait(void* stream) override;
  void synchronize(void* stream) override;
  void synchronize_all() override;
  void begin_capture() override;
  void* end_capture(std::string* why, void* update) noexcept override;
  void launch_graph(void* graph) override;
  void destroy_graph(void* graph) noexcept override;

  // Calls f(handle) with the handle bound to the stream, holding its lock: cuBLAS and
  // cuSOLVER handles are not thread-safe.
  template <typename F>
  void with_cublas(F&& f) {
    const std::lock_guard<std::mutex> lock(library_mutex_);
    bind_cublas();
    f(cublas_);
  }
  template <typename F>
  void with_cusolver(F&& f) {
    const std::lock_guard<std::mutex> lock(library_mutex_);
    bind_cusolver();
    f(cusolver_);
  }

 private:
  void ensure_init() {
    std::call_once(init_once_, [this] { init(); });
  }
  void init();
  // Make the handle on first use and bind it to the stream (under library_mutex_).
  void bind_cublas();
  void bind_cusolver();
  // Every stream of Ember's on this device (for joins); under streams_mutex_.
  std::vector<cudaStream_t> all_streams();
  // Makes `stream` wait for the work queued so far on every other stream of Ember's.
  cudaError_t join_all_streams_into(cudaStream_t stream) noexcept;
  // Under pinned_mutex_: blocks whose last copies are done go back to the cache; a block to
  // keep goes to the cache, or to the driver when the cache is full.
  void reclaim_pinned();
  void keep_pinned(void* ptr);

  int device_;
  std::once_flag init_once_;
  cudaStream_t stream_ = nullptr;
  cudaMemPool_t pool_ = nullptr;
  std::mutex streams_mutex_;
  std::vector<cudaStream_t> made_;  // every pooled stream ever made
  std::vector<cudaStream_t> idle_;  // those not in use
  std::mutex library_mutex_;
  cublasHandle_t cublas_ = nullptr;
  cusolverDnHandle_t cusolver_ = nullptr;
  std::mutex pinned_mutex_;
  std::unordered_map<void*, std::size_t> pinned_sizes_;        // every block made
  std::multimap<std::size_t, void*> pinned_idle_;              // free for reuse, by size
  std::vector<std::pair<void*, cudaEvent_t>> pinned_pending_;  // freed, copies may be running
  std::size_t pinned_idle_bytes_ = 0;
};

// Makes `device` current for the scope and restores the previous device afterwards, so a
// caller's own CUDA code keeps the device it chose.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
  bool switched_ = false;
};

// Scratch device memory (CUB temp storage, flags) from the stream-ordered pool. Freeing it
// in stream order is safe while kernels that use it are still queued.
class DeviceBuffer {
 public:
  DeviceBuffer(DeviceContext& ctx, std::size_t nbytes)
      : ctx_(ctx), stream_(ctx.stream()), data_(nbytes ? ctx.allocate(nbytes) : nullptr) {}
  // Freed on the stream it was allocated for, the one its kernels are queued on.
  ~DeviceBuffer() {
    if (data_ != nullptr) ctx_.deallocate(data_, stream_, false);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* get() const { return data_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }

 private:
  DeviceContext& ctx_;
  cudaStream_t stream_;
  void* data_;
};

// Launch geometry of the grid-stride kernels: enough blocks to fill the GPU many times
// over, capped so that a huge tensor loops inside the kernel instead of launching millions
// of blocks.
inline constexpr int kBlockSize = 256;
inline constexpr std::int64_t kMaxGridBlocks = 65536;

inline unsigned grid_for(std::int64_t n, int block = kBlockSize) {
  return static_cast<unsigned>(
      std::clamp<std::int64_t>((n + block - 1) / block, 1, kMaxGridBlocks));
}

}  // namespace ember::kernels::cuda
