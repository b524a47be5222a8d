// Per-device CUDA state (stream, memory pool, library handles) and the error reporting that
// every CUDA call site goes through.
#include <cstdint>
#include <cstdio>

#include "kernels/cuda/cuda_context.cuh"

namespace ember::kernels::cuda {
namespace {

// The calling thread's streams, by device: the one it chose (StreamGuard) and, in
// per-thread mode, its own, taken from the device's pool on first use and given back when
// the thread ends.
constexpr int kMaxDevices = 64;
struct ThreadStreams {
  cudaStream_t chosen[kMaxDevices] = {};
  cudaStream_t own[kMaxDevices] = {};
  DeviceContext* owner[kMaxDevices] = {};
  ~ThreadStreams() {
    for (int d = 0; d < kMaxDevices; ++d) {
      if (own[d] != nullptr) owner[d]->release(own[d]);
    }
  }
};
thread_local ThreadStreams t_streams;

// Makes `into` wait for the work queued on `from` so far.
cudaError_t order_after(cudaStream_t into, cudaStream_t from) {
  cudaEvent_t event = nullptr;
  cudaError_t err = cudaEventCreateWithFlags(&event, cudaEventDisableTiming);
  if (err != cudaSuccess) return err;
  err = cudaEventRecord(event, from);
  if (err == cudaSuccess) err = cudaStreamWaitEvent(into, event, 0);
  // Destroying an event a stream waits on is allowed: it is released once the wait is done.
  const cudaError_t destroyed = cudaEventDestroy(event);
  return err != cudaSuccess ? err : destroyed;
}

// Makes a device current for a noexcept scope (a destructor's free) and restores the
// previous one; failures are ignored, the calls it guards report them.
class DeviceSwitch {
 public:
  explicit DeviceSwitch(int device) noexcept {
    switched_ = cudaGetDevice(&previous_) == cudaSuccess && previous_ != device &&
                cudaSetDevice(device) == cudaSuccess;
  }
  ~DeviceSwitch() {
    if (switched_) (void)cudaSetDevice(previous_);
  }
  DeviceSwitch(const DeviceSwitch&) = delete;
  DeviceSwitch& operator=(const DeviceSwitch&) = delete;

 private:
  int previous_ = -1;
  bool switched_ = false;
};

// A failed free is reported, not thrown (it runs in destructors). Memory outliving the
// runtime (a static tensor freed at exit) is not an error.
void report_free_error(cudaError_t err, const char* what, int device) noexcept {
  if (err == cudaSuccess || err == cudaErrorCudartUnloading) return;
  (void)cudaGetLastError();
  std::fprintf(stderr, "ember: %s failed on cuda:%d: %s\n", what, device, cudaGetErrorString(err));
}

// Idle page-locked blocks beyond this many bytes go back to the driver: page-locked memory
// is taken out of the whole machine's pageable RAM.
constexpr std::size_t kMaxIdlePinnedBytes = std::size_t{256} << 20;

}  // namespace

void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line) {
  // Clears the error where it is not sticky, so one failed call does not poison the next.
  (void)cudaGetLastError();
  throw CudaError(detail::concat("CUDA error ", cudaGetErrorName(err), " (",
                                 cudaGetErrorString(err), ") in ", expr, " (", file, ":", line,
                                 ")"));
}

void throw_cublas_error(cublasStatus_t status, const char* expr, const char* file, int line) {
  const CublasApi& api = cublas_api();
  throw CudaError(detail::concat("cuBLAS error ", api.status_name(status), " (",
                                 api.status_string(status), ") in ", expr, " (", file, ":", line,
                                 ")"));
}

void throw_cusolver_error(cusolverStatus_t status, const char* expr, const char* file, int line) {
  throw CudaError(detail::concat("cuSOLVER error ", static_cast<int>(status), " in ", expr, " (",
                                 file, ":", line, ")"));
}

void DeviceContext::init() {
  const DeviceGuard guard(device_);
  // A pool of Ember's own: its release threshold and reuse are Ember's business, and the
  // device's default pool, which PyTorch, cuDNN or a service's own code may use and tune,
  // is left alone. Freed memory stays in the pool for reuse rather than going back to the
  // driver at each synchronization: a training loop allocates the same sizes every step.
  cudaMemPoolProps props{};
  props.allocType = cudaMemAllocationTypePinned;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = device_;
  EMBER_CUDA_CHECK(cudaMemPoolCreate(&pool_, &props));
  std::uint64_t threshold = UINT64_MAX;
  EMBER_CUDA_CHECK(cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &threshold));
  // Non-blocking: Ember's work never serializes with the legacy default stream that other
  // libraries in the process may use.
  EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}

void DeviceContext::bind_cublas() {
  const CublasApi& api = cublas_api();
  if (cublas_ == nullptr) EMBER_CUBLAS_CHECK(api.create(&cublas_));
  EMBER_CUBLAS_CHECK(api.set_stream(cublas_, stream()));
}

void DeviceContext::bind_cusolver() {
  const CusolverApi& api = cusolver_api();
  if (cusolver_ == nullptr) EMBER_CUSOLVER_CHECK(api.create(&cusolver_));
  EMBER_CUSOLVER_CHECK(api.set_stream(cusolver_, stream()));
}

cudaStream_t DeviceContext::stream() {
  ensure_init();
  if (device_ >= kMaxDevices) return stream_;
  ThreadStreams& t = t_streams;
  if (t.chosen[device_] != nullptr) return t.chosen[device_];
  if (!stream_per_thread()) return stream_;
  if (t.own[device_] == nullptr) {
    t.own[device_] = static_cast<cudaStream_t>(acquire());
    t.owner[device_] = this;
  }
  return t.own[device_];
}

void* DeviceContext::set_current(void* stream) {
  EMBER_CHECK_DEVICE(device_ < kMaxDevices, "streams are supported on the first ", kMaxDevices,
                     " devices; cuda:", device_, " uses its default stream only");
  void* previous = t_streams.chosen[device_];
  t_streams.chosen[device_] = static_cast<cudaStream_t>(stream);
  return previous;
}

void* DeviceContext::acquire() {
  ensure_init();
  const std::lock_guard<std::mutex> lock(streams_mutex_);
  if (!idle_.empty()) {
    cudaStream_t s = idle_.back();
    idle_.pop_back();
    return s;
  }
  const DeviceGuard guard(device_);
  cudaStream_t s = nullptr;
  EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  made_.push_back(s);
  return s;
}

void DeviceContext::release(void* stream) {
  if (stream == nullptr || stream == stream_) return;
  const std::lock_guard<std::mutex> lock(streams_mutex_);
  idle_.push_back(static_cast<cudaStream_t>(stream));
}

std::vector<cudaStream_t> DeviceContext::all_streams() {
  const std::lock_guard<std::mutex> lock(streams_mutex_);
  std::vector<cudaStream_t> all = made_;
  all.push_back(stream_);
  return all;
}

void DeviceContext::wait(void* stream) {
  const cudaStream_t current = this->stream();
  if (stream == nullptr || stream == current) return;
  const DeviceGuard guard(device_);
  EMBER_CUDA_CHECK(order_after(current, static_cast<cudaStream_t>(stream)));
}

void DeviceContext::synchronize(void* stream) {
  ensure_init();
  const DeviceGuard guard(device_);
  EMBER_CUDA_SYNC(stream != nullptr ? static_cast<cudaStream_t>(stream) : stream_);
}

void DeviceContext::synchronize_all() {
  ensure_init();
  const DeviceGuard guard(device_);
  for (cudaStream_t s : all_streams()) EMBER_CUDA_SYNC(s);
}

void DeviceContext::begin_capture() {
  ensure_init();
  const DeviceGuard guard(device_);
  EMBER_CUDA_CHECK(cudaStreamBeginCapture(stream(), cudaStreamCaptureModeThreadLocal));
}

void* DeviceContext::end_capture(std::string* why, void* update) noexcept {
  const DeviceSwitch on_device(device_);
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  cudaError_t err = cudaStreamEndCapture(stream(), &graph);
  const char* step = "cudaStreamEndCapture";
  if (err == cudaSuccess && update != nullptr) {
    cudaGraphExecUpdateResultInfo info{};
    if (cudaGraphExecUpdate(static_cast<cudaGraphExec_t>(update), graph, &info) == cudaSuccess) {
      (void)cudaGraphDestroy(graph);
      return update;
    }
    (void)cudaGetLastError();  // not updatable (its shape changed): instantiated anew below
  }
  if (update != nullptr) (void)cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(update));
  if (err == cudaSuccess) {
    step = "cudaGraphInstantiate";
    err = cudaGraphInstantiate(&exec, graph, 0);
  }
  if (graph != nullptr) (void)cudaGraphDestroy(graph);
  if (err == cudaSuccess) return exec;
  if (why != nullptr) *why = std::string(step) + ": " + cudaGetErrorString(err);
  (void)cudaGetLastError();  // a failed capture is reported here, not by the next launch
  return nullptr;
}

void DeviceContext::launch_graph(void* graph) {
  const DeviceGuard guard(device_);
  EMBER_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(graph), stream()));
  ++t_event_counters.kernel_launches;
}

void DeviceContext::destroy_graph(void* graph) noexcept {
  if (graph == nullptr) return;
  const DeviceSwitch on_device(device_);
  (void)cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(graph));
}

void* DeviceContext::allocate(std::size_t nbytes) {
  const cudaStream_t s = stream();
  const DeviceGuard guard(device_);
  void* ptr = nullptr;
  // Never a null pointer for a live allocation: the launchers read null as "a scalar".
  EMBER_CUDA_CHECK(cudaMallocFromPoolAsync(&ptr, std::max<std::size_t>(nbytes, 1), pool_, s));
  return ptr;
}

cudaError_t DeviceContext::join_all_streams_into(cudaStream_t stream) noexcept {
  cudaError_t err = cudaSuccess;
  try {
    for (cudaStream_t other : all_streams()) {
      if (other != stream && err == cudaSuccess) err = order_after(stream, other);
    }
  } catch (const std::exception&) {
    err = cudaErrorMemoryAllocation;  // the stream list could not be copied
  }
  return err;
}

void DeviceContext::deallocate(void* ptr, cudaStream_t stream, bool shared) noexcept {
  if (ptr == nullptr) return;
  const cudaStream_t s = stream != nullptr ? stream : stream_;
  const DeviceSwitch on_device(device_);
  // Other streams used this memory; their work queued so far must end before it is free.
  cudaError_t err = shared ? join_all_streams_into(s) : cudaSuccess;
  if (err == cudaSuccess) err = cudaFreeAsync(ptr, s);
  report_free_error(err, "cudaFreeAsync", device_);
}

void* DeviceContext::allocate_pinned(std::size_t nbytes) {
  nbytes = std::max<std::size_t>(nbytes, 1);
  {
    const std::lock_guard<std::mutex> lock(pinned_mutex_);
    reclaim_pinned();
    // The smallest idle block that fits, unless more than half of it would go unused.
    const auto it = pinned_idle_.lower_bound(nbytes);
    if (it != pinned_idle_.end() && it->first / 2 <= nbytes) {
      void* ptr = it->second;
      pinned_idle_bytes_ -= it->first;
      pinned_idle_.erase(it);
      return ptr;
    }
  }
  const DeviceGuard guard(device_);
  void* ptr = nullptr;
  EMBER_CUDA_CHECK(cudaHostAlloc(&ptr, nbytes, cudaHostAllocPortable));
  const std::lock_guard<std::mutex> lock(pinned_mutex_);
  pinned_sizes_[ptr] = nbytes;
  return ptr;
}

void DeviceContext::deallocate_pinned(void* ptr, cudaStream_t stream, bool shared) noexcept {
  if (ptr == nullptr) return;
  cudaEvent_t copies_done = nullptr;
  if (stream != nullptr) {
    const DeviceSwitch on_device(device_);
    cudaError_t err = shared ? join_all_streams_into(stream) : cudaSuccess;
    if (err == cudaSuccess) err = cudaEventCreateWithFlags(&copies_done, cudaEventDisableTiming);
    if (err == cudaSuccess) err = cudaEventRecord(copies_done, stream);
    if (err != cudaSuccess) {
      // No event to tell when the copies end: wait for them here instead.
      report_free_error(err, "recording a pinned block's release", device_);
      (void)cudaStreamSynchronize(stream);
      if (copies_done != nullptr) (void)cudaEventDestroy(copies_done);
      copies_done = nullptr;
    }
  }
  try {
    const std::lock_guard<std::mutex> lock(pinned_mutex_);
    if (copies_done == nullptr) {
      keep_pinned(ptr);
    } else {
      pinned_pending_.emplace_back(ptr, copies_done);
    }
  } catch (const std::exception&) {
    // The cache's bookkeeping could not grow: the block is lost to reuse (not to the process).
  }
}

void DeviceContext::reclaim_pinned() {
  std::size_t kept = 0;
  for (auto& [ptr, copies_done] : pinned_pending_) {
    const cudaError_t state = cudaEventQuery(copies_done);
    if (state == cudaErrorNotReady) {
      pinned_pending_[kept++] = {ptr, copies_done};
      continue;
    }
    (void)cudaGetLastError();  // a failed query means a dead context: nothing still runs
    (void)cudaEventDestroy(copies_done);
    keep_pinned(ptr);
  }
  pinned_pending_.resize(kept);
}

void DeviceContext::keep_pinned(void* ptr) {
  const std::size_t nbytes = pinned_sizes_.at(ptr);
  if (pinned_idle_bytes_ + nbytes > kMaxIdlePinnedBytes) {
    pinned_sizes_.erase(ptr);
    report_free_error(cudaFreeHost(ptr), "cudaFreeHost", device_);
    return;
  }
  pinned_idle_.emplace(nbytes, ptr);
  pinned_idle_bytes_ += nbytes;
}

void DeviceContext::synchronize() { synchronize(stream()); }

DeviceGuard::DeviceGuard(int device) {
  EMBER_CUDA_CHECK(cudaGetDevice(&previous_));
  if (previous_ != device) {
    EMBER_CUDA_CHECK(cudaSetDevice(device));
    switched_ = true;
  }
}

DeviceGuard::~DeviceGuard() {
  if (switched_) (void)cudaSetDevice(previous_);
}

}  // namespace ember::kernels::cuda
