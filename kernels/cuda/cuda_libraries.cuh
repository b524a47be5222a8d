// cuBLAS and cuSOLVER, loaded on first use rather than linked: a process that never runs a
// matrix product or a factorization on a GPU (most processes, every test that skips without
// a device) does not pay the fifth of a second it takes to map these libraries at start-up.
// Each call goes through a table of the few entry points Ember uses; a library that cannot
// be loaded is a CudaError naming it, at the first use.
#pragma once

#include <cublas_v2.h>
#include <cusolverDn.h>

namespace ember::kernels::cuda {

struct CublasApi {
  decltype(&cublasCreate_v2) create;
  decltype(&cublasSetStream_v2) set_stream;
  decltype(&cublasSgemmStridedBatched) sgemm_strided_batched;
  decltype(&cublasDgemmStridedBatched) dgemm_strided_batched;
  decltype(&cublasStrsmBatched) strsm_batched;
  decltype(&cublasDtrsmBatched) dtrsm_batched;
  decltype(&cublasGetStatusName) status_name;
  decltype(&cublasGetStatusString) status_string;
};

struct CusolverApi {
  decltype(&cusolverDnCreate) create;
  decltype(&cusolverDnSetStream) set_stream;
  decltype(&cusolverDnSpotrfBatched) spotrf_batched;
  decltype(&cusolverDnDpotrfBatched) dpotrf_batched;
};

// Loaded once per process (thread-safe); throws CudaError when the library or an entry
// point is missing.
const CublasApi& cublas_api();
const CusolverApi& cusolver_api();

}  // namespace ember::kernels::cuda
