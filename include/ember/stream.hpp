// Streams: ordered queues of work on a GPU. By default all of Ember's work on a device is
// queued on one stream, so fits running in different host threads take turns on the GPU and
// every read of a result (item(), to_vector()) waits for all threads' queued work. A
// service that runs one fit per request thread gives each its own stream, by scope
// (StreamGuard), per SVI (SVIOptions::own_stream) or per thread (set_stream_per_thread):
// independent work then overlaps on the GPU, and a thread that reads a result waits for its
// own stream only.
//
// Tensors may still be shared between streams: Ember remembers which stream last used a
// tensor's memory, and work queued on another stream first waits (on the device, not the
// host) for that stream's work so far; memory used by several streams is freed only after
// all of them have finished with it. So results are the same whatever the streams, and only
// the overlap changes.
//
// On the CPU, streams are accepted and change nothing: CPU work runs in the calling thread.
#pragma once

#include "ember/device.hpp"

namespace ember {

class Stream {
 public:
  // A stream of Ember's own on `device` (from a pool: made once, reused).
  explicit Stream(Device device);
  ~Stream();  // back to the pool; work already queued on it still runs
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  Stream(Stream&& other) noexcept;
  Stream& operator=(Stream&& other) noexcept;

  Device device() const { return device_; }
  // The host waits until the work queued on this stream so far is done.
  void synchronize() const;
  // The cudaStream_t, for a service's own CUDA work in the same order (null on the CPU).
  void* native_handle() const { return handle_; }

 private:
  Device device_;
  void* handle_ = nullptr;
};

// While alive, the calling thread's work on the stream's device goes to `stream`; restores
// the previous choice when it ends. Guards nest.
class StreamGuard {
 public:
  explicit StreamGuard(const Stream& stream);
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  Device device_;
  void* previous_ = nullptr;
};

// Each host thread queues its GPU work on a stream of its own (taken from the device's pool
// on first use, given back when the thread ends), unless a StreamGuard chooses another.
// Process-wide; off by default.
void set_stream_per_thread(bool on);
bool stream_per_thread();

}  // namespace ember
