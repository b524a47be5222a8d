// The CUDA launcher: one instance per device. Its methods are defined by area, one .cu each
// (cuda_backend.cu: memory; elementwise.cu, unary.cu, binary.cu; reduce.cu; scan.cu;
// index.cu; matmul.cu; distributions.cu; linalg.cu; optim.cu), so the files compile in
// parallel and each reads on its own. Everything is queued on the device's stream; only
// copy_to_host, copy_from_host, synchronize, find_index_out_of_range and cholesky (its failure
// flags) wait for the device.
#pragma once

#include "kernels/backend.hpp"
#include "kernels/cuda/cuda_context.cuh"

namespace ember::kernels::cuda {

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : ctx_(device) {}

  void* allocate(std::size_t nbytes) override;
  void deallocate(void* ptr) override;
  void copy_from_host(void* dst, const void* src, std::size_t nbytes) override;
  void copy_to_host(void* dst, const void* src, std::size_t nbytes) override;
  void synchronize() override;

  void fill(const TensorArg& out, double value) override;
  void fill_linear(const TensorArg& out, double start, double step) override;
  void copy(const TensorArg& out, const TensorArg& in) override;

  void unary(UnaryOp op, const TensorArg& out, const TensorArg& x, double p0, double p1) override;
  void unary_backward(UnaryOp op, const TensorArg& gx, const TensorArg& g, const TensorArg& x,
                      const TensorArg& y, double p0, double p1) override;
  void binary(BinaryOp op, const TensorArg& out, const TensorArg& a, const TensorArg& b) override;
  void binary_backward(BinaryOp op, const TensorArg* ga, const TensorArg* gb, const TensorArg& g,
                       const TensorArg& a, const TensorArg& b, const TensorArg& y) override;
  void where(const TensorArg& out, const TensorArg& cond, const TensorArg& a,
             const TensorArg& b) override;

  void reduce(ReduceOp op, const TensorArg& out, const TensorArg& in) override;
  void reduce_product(const TensorArg& out, const TensorArg& a, const TensorArg& b) override;
  void scan(ScanOp op, const TensorArg& out, const TensorArg& in, int dim, bool reverse) override;
  void cumprod_backward(const TensorArg& gx, const TensorArg& g, const TensorArg& x,
                        int dim) override;

  void index_select(const TensorArg& out, const TensorArg& in, int dim,
                    const TensorArg& index) override;
  void index_add(const TensorArg& out, int dim, const TensorArg& index,
                 const TensorArg& src) override;
  void gather(const TensorArg& out, const TensorArg& in, int dim, const TensorArg& index) override;
  void scatter_add(const TensorArg& out, int dim, const TensorArg& index,
                   const TensorArg& src) override;
  bool find_index_out_of_range(const TensorArg& index, std::int64_t bound,
                               std::int64_t* bad) override;

  void matmul(const TensorArg& out, const TensorArg& a, const TensorArg& b) override;

  void log_prob(LogProbFamily family, const TensorArg& out, const TensorArg& value,
                const TensorArg* params, const TensorArg* const* grads) override;
  void sample(SampleOp op, const TensorArg& out, const TensorArg* params, RngState rng) override;
  void sample_grad(SampleGradOp op, const TensorArg& out, const TensorArg& sample,
                   const TensorArg* params) override;

  void cholesky(const TensorArg& out, const TensorArg& in, std::int64_t* first_failed) override;
  void triangular_solve(const TensorArg& out, const TensorArg& l, const TensorArg& b, bool lower,
                        bool transpose) override;

  void optimizer_step(OptimKind kind, DType dtype, std::span<const OptimSlot> slots) override;

 private:
  DeviceContext ctx_;
};

}  // namespace ember::kernels::cuda
