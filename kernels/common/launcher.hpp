// The launcher interface, by area. A launcher (the CPU's, the CUDA one) is a class
//   class CpuBackend final : public Launcher<CpuBackend> { ... Loop loop(); };
// whose Backend methods come from nine areas:
//  - four run the per-element bodies of kernels/common/elementwise_bodies.hpp and are written
//    once, in kernels/common/areas/, over the launcher's Loop (loop.run(n, offset_calc, body):
//    OpenMP loops on the CPU, grid-stride kernels on the GPU): ElementwiseArea, BinaryArea,
//    IndexArea, DistributionArea;
//  - five are the launcher's own way of working (memory, reductions, scans, linear algebra
//    through Eigen or cuBLAS/cuSOLVER, the fused optimizer step): each method calls a function
//    the launcher defines, found by argument-dependent lookup on Impl (launch_reduce(impl,
//    ...), memory_allocate(impl, ...): see the areas below).
// Each area's definitions live in kernels/common/areas/<area>.hpp, included only by the one
// source file of a launcher that instantiates the area, the file that defines its functions
// (`template class ReduceArea<CudaBackend>;` at the end of reduce.cu): the areas compile in
// parallel, and no other file sees (or instantiates) their definitions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "kernels/backend.hpp"

namespace ember::kernels {

// Creation, copies, selection and unary math.
template <typename Impl>
class ElementwiseArea : public virtual Backend {
 public:
  void fill(const TensorArg& out, double value) override;
  void fill_linear(const TensorArg& out, double start, double step) override;
  void copy(const TensorArg& out, const TensorArg& in) override;
  void where(const TensorArg& out, const TensorArg& cond, const TensorArg& a,
             const TensorArg& b) override;
  void unary(UnaryOp op, const TensorArg& out, const TensorArg& x, double p0, double p1) override;
  void unary_backward(UnaryOp op, const TensorArg& gx, const TensorArg& g, const TensorArg& x,
                      const TensorArg& y, double p0, double p1) override;
};

// Binary arithmetic, comparisons and their gradients.
template <typename Impl>
class BinaryArea : public virtual Backend {
 public:
  void binary(BinaryOp op, const TensorArg& out, const TensorArg& a, const TensorArg& b) override;
  void binary_backward(BinaryOp op, const TensorArg* ga, const TensorArg* gb, const TensorArg& g,
                       const TensorArg& a, const TensorArg& b, const TensorArg& y) override;
};

// Reads and accumulations at indexed positions (im2col and col2im among them), and the
// bounds check (the launcher's launch_find_index_out_of_range).
template <typename Impl>
class IndexArea : public virtual Backend {
 public:
  void index_select(const TensorArg& out, const TensorArg& in, int dim,
                    const TensorArg& index) override;
  void index_add(const TensorArg& out, int dim, const TensorArg& index,
                 const TensorArg& src) override;
  void gather(const TensorArg& out, const TensorArg& in, int dim, const TensorArg& index) override;
  void scatter_add(const TensorArg& out, int dim, const TensorArg& index,
                   const TensorArg& src) override;
  void im2col(const TensorArg& col, const TensorArg& in, const Im2colGeometry& geo) override;
  void col2im(const TensorArg& in, const TensorArg& col, const Im2colGeometry& geo) override;
  bool find_index_out_of_range(const TensorArg& index, std::int64_t bound,
                               std::int64_t* bad) override;
};

// Fused log-densities, samplers and sample gradients.
template <typename Impl>
class DistributionArea : public virtual Backend {
 public:
  void log_prob(LogProbFamily family, const TensorArg& out, const TensorArg& value,
                const TensorArg* params, const TensorArg* const* grads) override;
  void sample(SampleOp op, const TensorArg& out, const TensorArg* params, RngState rng) override;
  void sample_grad(SampleGradOp op, const TensorArg& out, const TensorArg& sample,
                   const TensorArg* params) override;
};

// The launcher's memory: memory_allocate, memory_deallocate, memory_copy_from_host,
// memory_copy_to_host, memory_allocate_pinned, memory_deallocate_pinned,
// memory_copy_from_host_async, memory_synchronize.
template <typename Impl>
class MemoryArea : public virtual Backend {
 public:
  void* allocate(std::size_t nbytes) override;
  void deallocate(void* ptr, void* stream, bool shared) override;
  void copy_from_host(void* dst, const void* src, std::size_t nbytes) override;
  void copy_to_host(void* dst, const void* src, std::size_t nbytes) override;
  void* allocate_pinned(std::size_t nbytes) override;
  void deallocate_pinned(void* ptr, void* stream, bool shared) override;
  void copy_from_host_async(void* dst, const void* src, std::size_t nbytes) override;
  void synchronize() override;
};

// Reductions: launch_reduce, launch_reduce_product (what they combine: reduce_bodies.hpp).
template <typename Impl>
class ReduceArea : public virtual Backend {
 public:
  void reduce(ReduceOp op, const TensorArg& out, const TensorArg& in) override;
  void reduce_product(const TensorArg& out, const TensorArg& a, const TensorArg& b) override;
};

// Line ops along a dim: launch_scan, launch_line_map, launch_line_backward,
// launch_categorical_log_prob(_backward) and launch_categorical_sample (line bodies:
// reduce_bodies.hpp).
template <typename Impl>
class ScanArea : public virtual Backend {
 public:
  void scan(ScanOp op, const TensorArg& out, const TensorArg& in, int dim, bool reverse) override;
  void line_backward(LineGrad op, const TensorArg& gx, const TensorArg& g, const TensorArg& x,
                     int dim) override;
  void line_map(LineMap op, const TensorArg& out, const TensorArg& in, int dim) override;
  void categorical_log_prob(const TensorArg& out, const TensorArg& table, const TensorArg& value,
                            bool logits) override;
  void categorical_log_prob_backward(const TensorArg& gtable, const TensorArg& g,
                                     const TensorArg& table, const TensorArg& value,
                                     bool logits) override;
  void categorical_sample(const TensorArg& out, const TensorArg& table, const TensorArg& u,
                          bool logits) override;
};

// Linear algebra: launch_matmul, launch_cholesky, launch_triangular_solve, and the log-space
// product launch_log_matmul_exp / launch_log_matmul_exp_backward.
template <typename Impl>
class LinalgArea : public virtual Backend {
 public:
  void matmul(const TensorArg& out, const TensorArg& a, const TensorArg& b,
              bool accumulate) override;
  void cholesky(const TensorArg& out, const TensorArg& in, std::int64_t* first_failed) override;
  void triangular_solve(const TensorArg& out, const TensorArg& l, const TensorArg& b, bool lower,
                        bool transpose) override;
  void log_matmul_exp(const TensorArg& out, const TensorArg& a, const TensorArg& b,
                      bool max_plus) override;
  void log_matmul_exp_backward(const TensorArg& ga, const TensorArg& gb, const TensorArg& g,
                               const TensorArg& a, const TensorArg& b,
                               const TensorArg& out) override;
};

// The multi-tensor passes of a step: launch_optimizer_step (per-element updates in
// math/optim.hpp) and launch_all_finite.
template <typename Impl>
class OptimArea : public virtual Backend {
 public:
  void optimizer_step(OptimKind kind, DType dtype, std::span<const OptimSlot> slots) override;
  bool all_finite(std::span<const TensorArg> tensors) override;
};

template <typename Impl>
class Launcher : public ElementwiseArea<Impl>,
                 public BinaryArea<Impl>,
                 public IndexArea<Impl>,
                 public DistributionArea<Impl>,
                 public MemoryArea<Impl>,
                 public ReduceArea<Impl>,
                 public ScanArea<Impl>,
                 public LinalgArea<Impl>,
                 public OptimArea<Impl> {};

}  // namespace ember::kernels
