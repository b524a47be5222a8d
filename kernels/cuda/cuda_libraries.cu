// Loads cuBLAS and cuSOLVER with dlopen on first use: by soname (the toolkit major version
// Ember was built with), found through the loader's search path or, failing that, in the
// directory of the CUDA runtime this process uses.
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <mutex>
#include <string>

#include "ember/error.hpp"
#include "kernels/cuda/cuda_libraries.cuh"

namespace ember::kernels::cuda {
namespace {

#define EMBER_STRINGIFY_INNER(x) #x
#define EMBER_STRINGIFY(x) EMBER_STRINGIFY_INNER(x)

void* open_library(const char* soname) {
  if (void* handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL)) return handle;
  const std::string first_error = dlerror();
  // Beside the CUDA runtime, where a toolkit keeps all its libraries.
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&cudaGetDeviceCount), &info) != 0 &&
      info.dli_fname != nullptr) {
    std::string path = info.dli_fname;
    path = path.substr(0, path.find_last_of('/') + 1) + soname;
    if (void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) return handle;
  }
  throw CudaError(detail::concat("cannot load ", soname, " (needed for GPU matrix products and ",
                                 "factorizations): ", first_error));
}

// Resolves entry points of one loaded library by name.
class Symbols {
 public:
  Symbols(void* handle, const char* soname) : handle_(handle), soname_(soname) {}
  template <typename Fn>
  void bind(const char* symbol, Fn& fn) const {
    fn = reinterpret_cast<Fn>(dlsym(handle_, symbol));
    if (fn == nullptr) {
      throw CudaError(detail::concat(soname_, " has no entry point ", symbol, ": ", dlerror()));
    }
  }

 private:
  void* handle_;
  const char* soname_;
};

// The table Api of library `soname`, loaded and filled by bind_all(symbols, api) once.
template <typename Api, typename BindAll>
const Api& load_once(const char* soname, BindAll bind_all) {
  static Api api;
  static std::once_flag once;
  std::call_once(once, [&] { bind_all(Symbols(open_library(soname), soname), api); });
  return api;
}

}  // namespace

const CublasApi& cublas_api() {
  return load_once<CublasApi>("libcublas.so." EMBER_STRINGIFY(CUBLAS_VER_MAJOR),
                              [](const Symbols& s, CublasApi& api) {
                                s.bind("cublasCreate_v2", api.create);
                                s.bind("cublasSetStream_v2", api.set_stream);
                                s.bind("cublasSgemmStridedBatched", api.sgemm_strided_batched);
                                s.bind("cublasDgemmStridedBatched", api.dgemm_strided_batched);
                                s.bind("cublasStrsmBatched", api.strsm_batched);
                                s.bind("cublasDtrsmBatched", api.dtrsm_batched);
                                s.bind("cublasGetStatusName", api.status_name);
                                s.bind("cublasGetStatusString", api.status_string);
                              });
}

const CusolverApi& cusolver_api() {
  return load_once<CusolverApi>("libcusolver.so." EMBER_STRINGIFY(CUSOLVER_VER_MAJOR),
                                [](const Symbols& s, CusolverApi& api) {
                                  s.bind("cusolverDnCreate", api.create);
                                  s.bind("cusolverDnSetStream", api.set_stream);
                                  s.bind("cusolverDnSpotrfBatched", api.spotrf_batched);
                                  s.bind("cusolverDnDpotrfBatched", api.dpotrf_batched);
                                });
}

}  // namespace ember::kernels::cuda
