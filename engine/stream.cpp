// Streams as users see them (ember/stream.hpp), over the launchers' StreamControl.
#include "ember/stream.hpp"

#include <utility>

#include "kernels/backend.hpp"

namespace ember {
namespace {

kernels::StreamControl* streams_of(Device device) { return kernels::backend_for(device).streams(); }

}  // namespace

Stream::Stream(Device device) : device_(device) {
  if (kernels::StreamControl* streams = streams_of(device)) handle_ = streams->acquire();
}

Stream::~Stream() {
  if (handle_ != nullptr) streams_of(device_)->release(handle_);
}

Stream::Stream(Stream&& other) noexcept
    : device_(other.device_), handle_(std::exchange(other.handle_, nullptr)) {}

Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) streams_of(device_)->release(handle_);
    device_ = other.device_;
    handle_ = std::exchange(other.handle_, nullptr);
  }
  return *this;
}

void Stream::synchronize() const {
  if (handle_ != nullptr) streams_of(device_)->synchronize(handle_);
}

StreamGuard::StreamGuard(const Stream& stream) : device_(stream.device()) {
  if (kernels::StreamControl* streams = streams_of(device_)) {
    previous_ = streams->set_current(stream.native_handle());
  }
}

StreamGuard::~StreamGuard() {
  if (kernels::StreamControl* streams = streams_of(device_)) streams->set_current(previous_);
}

void set_stream_per_thread(bool on) { kernels::set_stream_per_thread(on); }
bool stream_per_thread() { return kernels::stream_per_thread(); }

}  // namespace ember
