// The one exception family of Ember and the checking macros that raise it.
// Every user-facing failure derives from ember::Error and names the place at fault.
#pragma once

#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace ember {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Shapes that do not broadcast, a bad dim, a rank over the limit.
class ShapeError : public Error {
 public:
  using Error::Error;
};

// An operation that does not accept the dtype it was given.
class DTypeError : public Error {
 public:
  using Error::Error;
};

// A device that does not exist, a backend that was not built, tensors on two devices.
class DeviceError : public Error {
 public:
  using Error::Error;
};

// A failed CUDA runtime, cuBLAS or kernel launch call.
class CudaError : public Error {
 public:
  using Error::Error;
};

// A bad argument value (index out of range, negative size, backward twice, ...).
class ValueError : public Error {
 public:
  using Error::Error;
};

// A file that cannot be read or written, or whose contents are corrupt or truncated.
class IoError : public Error {
 public:
  using Error::Error;
};

// Rethrows the ember::Error being handled as its own type (ShapeError stays a ShapeError) with
// `prefix` in front of its message. Call it inside a catch block only.
[[noreturn]] void rethrow_with_prefix(const std::string& prefix);

// Warnings: what is legal but most likely a mistake (where Pyro calls warnings.warn). Each goes
// to the process's warning handler; the default one prints "ember: warning: <message>" to
// std::cerr, each distinct message once per process.
using WarningHandler = std::function<void(const std::string& message)>;
void warn(const std::string& message);
// Installs `handler` (nullptr: the default) for the whole process and returns the previous
// one. A handler that throws turns warnings into errors (as Python's filterwarnings("error")).
WarningHandler set_warning_handler(WarningHandler handler);

namespace detail {

template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

}  // namespace detail
}  // namespace ember

// EMBER_CHECK_T(ErrorType, cond, parts...): throws ErrorType("parts... (file:line)").
#define EMBER_CHECK_T(ErrorType, cond, ...)                                                      \
  do {                                                                                           \
    if (!(cond)) [[unlikely]] {                                                                  \
      throw ErrorType(::ember::detail::concat(__VA_ARGS__, " (", __FILE__, ":", __LINE__, ")")); \
    }                                                                                            \
  } while (0)

#define EMBER_CHECK(cond, ...) EMBER_CHECK_T(::ember::ValueError, cond, __VA_ARGS__)
#define EMBER_CHECK_SHAPE(cond, ...) EMBER_CHECK_T(::ember::ShapeError, cond, __VA_ARGS__)
#define EMBER_CHECK_DTYPE(cond, ...) EMBER_CHECK_T(::ember::DTypeError, cond, __VA_ARGS__)
#define EMBER_CHECK_DEVICE(cond, ...) EMBER_CHECK_T(::ember::DeviceError, cond, __VA_ARGS__)
