// Rethrowing an error with context, and the warning handler.
#include "ember/error.hpp"

#include <iostream>
#include <mutex>
#include <set>
#include <utility>

namespace ember {
namespace {

// Rethrows the exception being handled as the first of Types it is (most derived first).
template <typename Type, typename... Rest>
[[noreturn]] void rethrow_as(const std::string& prefix) {
  try {
    throw;
  } catch (const Type& e) {
    throw Type(prefix + e.what());
  } catch (...) {
    if constexpr (sizeof...(Rest) > 0) rethrow_as<Rest...>(prefix);
    throw;
  }
}

std::mutex g_warn_mutex;
WarningHandler g_warn_handler;   // empty: the default
std::set<std::string> g_warned;  // what the default handler has printed

}  // namespace

void rethrow_with_prefix(const std::string& prefix) {
  rethrow_as<ShapeError, DTypeError, DeviceError, CudaError, ValueError, IoError, Error>(prefix);
}

void warn(const std::string& message) {
  WarningHandler handler;
  {
    std::lock_guard<std::mutex> lock(g_warn_mutex);
    if (!g_warn_handler) {
      if (g_warned.insert(message).second) std::cerr << "ember: warning: " << message << "\n";
      return;
    }
    handler = g_warn_handler;
  }
  handler(message);  // outside the lock: it may throw, or warn again
}

WarningHandler set_warning_handler(WarningHandler handler) {
  std::lock_guard<std::mutex> lock(g_warn_mutex);
  return std::exchange(g_warn_handler, std::move(handler));
}

}  // namespace ember
