// The CUDA launcher: one instance per device. Its Backend methods come from the areas of
// kernels/common/launcher.hpp, each instantiated in the .cu that holds its CUDA functions:
// memory.cu (the stream-ordered pool, host transfers), elementwise.cu,
// binary.cu, index.cu, distributions.cu (the shared per-element bodies over the CUDA Loop),
// reduce.cu and scan.cu (reductions and scans), linalg.cu (cuBLAS, cuSOLVER),
// optim.cu (the fused optimizer step). Everything is queued on the device's stream; only the
// host transfers, synchronize, the index bounds check and cholesky (its failure flags) wait
// for the device.
#pragma once

#include "kernels/common/launcher.hpp"
#include "kernels/cuda/cuda_context.cuh"
#include "kernels/cuda/cuda_loops.cuh"

namespace ember::kernels::cuda {

class CudaBackend final : public Launcher<CudaBackend> {
 public:
  explicit CudaBackend(int device) : ctx_(device) {}

  Loop loop() { return Loop(ctx_); }
  DeviceContext& context() { return ctx_; }
  StreamControl* streams() override { return &ctx_; }

 private:
  DeviceContext ctx_;
};

}  // namespace ember::kernels::cuda
