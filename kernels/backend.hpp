// The launcher interface: one implementation iterates on the CPU (kernels/cpu), one on a
// CUDA device (kernels/cuda). Both evaluate the same math from kernels/math. The engine
// validates shapes and dtypes before calling in, so launchers trust their arguments:
//  - elementwise operands all have out's sizes (broadcast dims carry stride 0), or are
//    scalars (TensorArg::data == nullptr);
//  - reduce: `in` and `out` have the same rank; dims where out has size 1 and in does not
//    are reduced;
//  - out arguments are freshly allocated and contiguous unless stated otherwise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "ember/device.hpp"
#include "kernels/common/geometry.hpp"
#include "kernels/common/tensor_arg.hpp"
#include "kernels/math/distributions/families.hpp"
#include "kernels/math/elementwise_ops.hpp"
#include "kernels/math/optim.hpp"

namespace ember::kernels {

// The ordered queues of work (streams) of a device whose launcher has them; the CPU has one
// implicit queue and no StreamControl. Streams are Ember's own, made once and pooled, never
// destroyed: memory may be freed on the stream that last used it long after the thread or
// the Stream object that chose that stream is gone.
class StreamControl {
 public:
  virtual ~StreamControl() = default;
  // The calling thread's current stream on this device (the device's default stream unless
  // set_current or per-thread streams chose another).
  virtual void* current() = 0;
  // Makes `stream` the calling thread's current stream on this device (null: back to the
  // default, or to the thread's own stream in per-thread mode); returns the one it replaces
  // (null when none was set).
  virtual void* set_current(void* stream) = 0;
  // A stream from the pool (made when the pool is empty) / back into it.
  virtual void* acquire() = 0;
  virtual void release(void* stream) = 0;
  // The current stream's later work waits for the work queued on `stream` so far (an event;
  // the host does not wait). No-op when `stream` is the current stream or null.
  virtual void wait(void* stream) = 0;
  // The host waits for `stream`'s queued work / for every stream of Ember's on the device.
  virtual void synchronize(void* stream) = 0;
  virtual void synchronize_all() = 0;

  // CUDA Graphs. begin_capture: the calling thread's work on its current stream is captured
  // (thread-local mode: other threads are not affected) instead of run. end_capture: the
  // captured work as an executable graph, or null when the capture failed, with `why` set
  // and the error cleared. With `update` (a graph end_capture returned before, now owned by
  // this call), the captured work replaces update's in place when only the kernels' arguments
  // differ, without a new instantiation, and `update` is returned; else update is destroyed
  // and a new graph made. Launches already queued run what they were queued with. A graph
  // runs on the calling thread's current stream; one launched while in flight is freed when
  // it ends.
  virtual void begin_capture() = 0;
  virtual void* end_capture(std::string* why, void* update) noexcept = 0;
  virtual void launch_graph(void* graph) = 0;
  virtual void destroy_graph(void* graph) noexcept = 0;
};

// Per-thread streams for every device (process-wide; off by default): each host thread
// queues its work on a stream of its own instead of the device's default stream.
void set_stream_per_thread(bool on);
bool stream_per_thread();

// A scalar operand (TensorArg::scalar) that a bound call read: its value then, and where the
// bound loop reads it from (`slot`, which `set` fills with a new value), or null where the
// launcher took the value into the loop's body, where it cannot change.
struct BoundScalar {
  double value;
  void* slot;
  void (*set)(void* slot, double value);
};
// A bound call's loop run over a part of its elements at a time, so that a run of such calls
// can go over cache-sized tiles together (Backend::run_fused): an elementwise loop over flat
// operands (`run` over [begin, end); `reduces` false), or a full reduction of flat operands.
// A reduction adds its elements in slices, as the unfused call does on the same number of
// threads (the CPU's reduce_slices), each slice carrying its accumulators from part to part
// in a carry of its own (kFuseCarryBytes, aligned to 64): `start` on a slice's carry before
// its first part, `run` for each part of the slice in order, and after every slice,
// `finish` with the slices' carries (the k-th at carries + k * stride bytes), which
// combines them in order and writes the result. The parts of a slice, but for its last, are
// multiples of kFuseAlign elements long, and so are the slices but for the last.
//
// `at` lists the loop's operands that it reads or writes at element i for element i (dense,
// of `bytes` each; a scalar's place is null): those a fused run may keep to one tile's worth
// of memory per thread (Backend::run_fused's `locals`). `run`'s `shift` and `local`: operand k
// of `at` with bit k of `local` set is read and written at element i - shift instead (shift 0
// and local 0: where the operands are).
inline constexpr int kMaxRangedOperands = 8;
struct RangedLoop {
  std::int64_t n = 0;  // the call's elements; 0: it does not run in parts
  bool reduces = false;
  std::function<void(std::int64_t begin, std::int64_t end, void* carry, std::int64_t shift,
                     unsigned local)>
      run;
  std::function<void(void* carry)> start;
  std::function<void(const unsigned char* carries, std::size_t stride, int slices)> finish;
  // Kept out of line, made once when the call binds: a replay's calls stay small.
  struct Operand {
    const void* at;
    std::size_t bytes;
  };
  std::vector<Operand> at;
  // Lists an operand in `at` (nothing past kMaxRangedOperands: such an operand stays where it
  // is).
  void add_operand(const void* p, std::size_t element_bytes) {
    if (at.size() < kMaxRangedOperands) at.push_back({p, element_bytes});
  }
};
inline constexpr std::int64_t kFuseAlign = 64;
inline constexpr std::size_t kFuseCarryBytes = 512;
// Reductions one fused run may hold (each carries its own accumulators).
inline constexpr int kMaxFusedReductions = 4;
// Slices a reduction is added in at most (one per thread, up to this many).
inline constexpr int kMaxReduceSlices = 256;
// A reduction's accumulators for one slice of a fused run.
struct alignas(64) FuseCarry {
  unsigned char bytes[kFuseCarryBytes];
};

// A call bound by a launcher (Backend::run_bound): its work, the scalars it reads, and where
// it can, its loop in parts.
struct BoundCall {
  std::function<void()> run;
  std::vector<BoundScalar> scalars;
  RangedLoop ranged;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // ---- memory ----
  // Memory for the calling thread's current stream.
  virtual void* allocate(std::size_t nbytes) = 0;
  // Frees ptr in the order of `stream`, the stream that last used it (null: the default
  // stream); `shared`: other streams used it too, and their work so far must finish first.
  virtual void deallocate(void* ptr, void* stream, bool shared) = 0;
  // This device's streams; null where there are none (the CPU).
  virtual StreamControl* streams() { return nullptr; }
  // Contiguous bytes between this backend's memory and the host (either direction); the host
  // buffer may be reused as soon as these return.
  virtual void copy_from_host(void* dst, const void* src, std::size_t nbytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, std::size_t nbytes) = 0;
  // Page-locked host memory, from which copy_from_host_async runs without waiting (a CUDA
  // device: cudaHostAlloc'd blocks kept in a small cache; the CPU: ordinary aligned memory).
  virtual void* allocate_pinned(std::size_t nbytes) = 0;
  // Gives the block back once the work queued so far on `stream` (null: none), and on every
  // other stream when `shared`, is done: an asynchronous copy may still be reading it.
  virtual void deallocate_pinned(void* ptr, void* stream, bool shared) = 0;
  // Queues a copy of host bytes to this backend's memory on the calling thread's current
  // stream and returns at once. `src` must stay untouched until the copy is done: pinned
  // memory released through deallocate_pinned with this stream is (from pageable memory the
  // copy is staged and the host may wait).
  virtual void copy_from_host_async(void* dst, const void* src, std::size_t nbytes) = 0;
  virtual void synchronize() = 0;

  // ---- calls bound once ----
  // Runs `call`, one call of this launcher's, and returns its work bound for running again
  // with the same operands in the same memory, its dispatch, shape logic and operand setup
  // done; `run` is empty where the launcher cannot bind it (the default: none). The CPU binds
  // an elementwise loop over operands that are all in memory (kernels/cpu/cpu_loops.hpp).
  // Compiled steps replay bound calls (engine/compile/plan.cpp). `capture`: only bind, running
  // nothing, for a call that bound before and is bound again at new addresses (every piece of
  // its work is then in the bound loop); a call that does not bind ran nothing either.
  virtual BoundCall run_bound(const std::function<void()>& call, bool capture) {
    if (!capture) call();
    return {};
  }
  // Runs `count` bound calls in parts (RangedLoop) over their common n elements, tile by
  // tile, each tile through every call in order before the next, so that what one call writes
  // is still in cache when the next reads it; the same values as running each call alone
  // (the reductions among them, up to kMaxFusedReductions, add in the same slices and order
  // and write their results after the last tile, in call order: no call of the run may read
  // them). `carries`: room for the reductions' slices (kMaxReduceSlices for each reduction
  // holds any). `locals` (null: none): per call, the operands of its `at` (bits) that live
  // within the run alone, written before they are read and read by no one after it: each
  // thread keeps them to the first tile of the elements it takes, every later tile of its
  // written over the one before, so that they stay in cache and never reach memory (what
  // they hold after the run is undefined). False, having run nothing, where it cannot (the
  // default).
  virtual bool run_fused(const RangedLoop* const* loops, int count, FuseCarry* carries,
                         std::size_t carry_count, const unsigned* locals) {
    (void)loops;
    (void)count;
    (void)carries;
    (void)carry_count;
    (void)locals;
    return false;
  }

  // ---- creation and copies ----
  virtual void fill(const TensorArg& out, double value) = 0;
  // out[i] = start + i * step over the flattened (contiguous) out.
  virtual void fill_linear(const TensorArg& out, double start, double step) = 0;
  // Strided copy with dtype conversion; out may be any strided view.
  virtual void copy(const TensorArg& out, const TensorArg& in) = 0;

  // ---- elementwise ----
  // out = op(x) (floating dtypes; out and x share a dtype).
  virtual void unary(UnaryOp op, const TensorArg& out, const TensorArg& x, double p0,
                     double p1) = 0;
  // gx = d op / dx * g, given the forward input x and output y.
  virtual void unary_backward(UnaryOp op, const TensorArg& gx, const TensorArg& g,
                              const TensorArg& x, const TensorArg& y, double p0, double p1) = 0;
  // out = a op b; a, b share a dtype; out's dtype is theirs, or bool for comparisons.
  virtual void binary(BinaryOp op, const TensorArg& out, const TensorArg& a,
                      const TensorArg& b) = 0;
  // ga = d(a op b)/da * g and gb likewise, over out's (broadcast) shape. Either of ga, gb
  // may be null (not wanted). Floating arithmetic ops only.
  virtual void binary_backward(BinaryOp op, const TensorArg* ga, const TensorArg* gb,
                               const TensorArg& g, const TensorArg& a, const TensorArg& b,
                               const TensorArg& y) = 0;
  // out = cond ? a : b; cond is bool, a/b/out share a dtype.
  virtual void where(const TensorArg& out, const TensorArg& cond, const TensorArg& a,
                     const TensorArg& b) = 0;

  // ---- reductions and scans ----
  virtual void reduce(ReduceOp op, const TensorArg& out, const TensorArg& in) = 0;
  // out = the sum of a * b over the dims where out has size 1 and the operands do not, in
  // one pass and without the product's temporary (how a fused log-density's partials are
  // weighted by the incoming gradient and reduced to a parameter's shape). a and b have the
  // full sizes (broadcast strides); out has their rank. Floating dtypes.
  virtual void reduce_product(const TensorArg& out, const TensorArg& a, const TensorArg& b) = 0;
  // Inclusive scan along dim (reverse: from the end). out is contiguous, in any strides.
  virtual void scan(ScanOp op, const TensorArg& out, const TensorArg& in, int dim,
                    bool reverse) = 0;
  // The gradient gx (contiguous) of a line op along dim from g and the op's input x:
  // Cumprod's exactly, with no division (zeros in x are handled); LogNormalize's,
  // g / x - sum(g) / sum(x); StickBreaking's (g one longer than x along dim).
  virtual void line_backward(LineGrad op, const TensorArg& gx, const TensorArg& g,
                             const TensorArg& x, int dim) = 0;
  // A line map along dim, each line in one pass; out contiguous, floating dtypes.
  // LogNormalize: out = log(in) - log(sum of in along dim) (a Categorical's table of
  // log-probabilities from unnormalized probabilities). StickBreaking: StickBreakingTransform's
  // map of a line of n reals to the simplex of n + 1 (out one longer along dim).
  virtual void line_map(LineMap op, const TensorArg& out, const TensorArg& in, int dim) = 0;
  // A Categorical's log-probability of `value` along the last dim of `table` (probabilities,
  // normalized or not; or logits): log(table[v] / sum(table)) or table[v] - logsumexp(table),
  // -inf where v is not an integer in 0..K-1. All args have the table's sizes; out and value
  // are stride 0 along the last dim (one entry per line); value int64 or the table's dtype.
  virtual void categorical_log_prob(const TensorArg& out, const TensorArg& table,
                                    const TensorArg& value, bool logits) = 0;
  // A Categorical's draws: out (int64) the category that u, a uniform draw in [0, 1), picks
  // from each line along the last dim of `table` (probabilities, normalized or not; or logits):
  // the first whose cumulative weight reaches u times the line's total. All args have the
  // table's sizes; out and u (the table's dtype) are stride 0 along the last dim.
  virtual void categorical_sample(const TensorArg& out, const TensorArg& table, const TensorArg& u,
                                  bool logits) = 0;
  // Its gradient into gtable (contiguous, the table's sizes) from g (stride 0 along the last
  // dim, as out): probs g ([j == v] / table[v] - 1 / sum), logits g ([j == v] - softmax_j);
  // zero for a value out of range.
  virtual void categorical_log_prob_backward(const TensorArg& gtable, const TensorArg& g,
                                             const TensorArg& table, const TensorArg& value,
                                             bool logits) = 0;

  // ---- indexing (index: int64; bounds already checked by the engine) ----
  // out = in with dim `dim` replaced by index's length: out[.., i, ..] = in[.., index[i], ..].
  virtual void index_select(const TensorArg& out, const TensorArg& in, int dim,
                            const TensorArg& index) = 0;
  // out[.., index[i], ..] += src[.., i, ..]; out holds the values to add to.
  virtual void index_add(const TensorArg& out, int dim, const TensorArg& index,
                         const TensorArg& src) = 0;
  // out[i][j] = in[index[i][j]][j] (for dim 0); out and index share sizes.
  virtual void gather(const TensorArg& out, const TensorArg& in, int dim,
                      const TensorArg& index) = 0;
  // out[index[i][j]][j] += src[i][j] (for dim 0); index and src share sizes.
  virtual void scatter_add(const TensorArg& out, int dim, const TensorArg& index,
                           const TensorArg& src) = 0;
  // col (contiguous, geo.numel() elements) = the convolution input `in` unfolded as geo
  // says (geo.in_strides are in's), zeros in the padding. Floating dtypes.
  virtual void im2col(const TensorArg& col, const TensorArg& in, const Im2colGeometry& geo) = 0;
  // The adjoint: adds every element of col into the position of `in` it was read from
  // (geo.in_strides are in's; in holds the values to add to).
  virtual void col2im(const TensorArg& in, const TensorArg& col, const Im2colGeometry& geo) = 0;
  // True (and the value in *bad) when some index lies outside [0, bound). Synchronizes.
  virtual bool find_index_out_of_range(const TensorArg& index, std::int64_t bound,
                                       std::int64_t* bad) = 0;

  // ---- linear algebra ----
  // out[b] = a[b] @ b[b] over 3-d args (batch, rows, cols), or out[b] += a[b] @ b[b] with
  // `accumulate` (a GEMM's beta = 1: a bias already in out costs no pass of its own). Each
  // matrix of a and b is either row-major (strides[2] == 1) or column-major
  // (strides[1] == 1); batch stride may be 0 (broadcast). out is contiguous. Floating dtypes.
  virtual void matmul(const TensorArg& out, const TensorArg& a, const TensorArg& b,
                      bool accumulate) = 0;
  // out[i] = log(exp(a[i]) @ exp(b[i])) over contiguous 3-d args (batch, rows, inner),
  // (batch, inner, cols) and (batch, rows, cols), each element's terms shifted by their max
  // (kernels/math/log_matmul.hpp); with max_plus, max over the inner dim of a + b instead (the
  // max-product semiring). Floating dtypes.
  virtual void log_matmul_exp(const TensorArg& out, const TensorArg& a, const TensorArg& b,
                              bool max_plus) = 0;
  // Its gradients, into contiguous ga (as a) and gb (as b): ga[i, m, k] = sum_n g[i, m, n]
  // exp(a[i, m, k] + b[i, k, n] - out[i, m, n]), and gb likewise summed over m.
  virtual void log_matmul_exp_backward(const TensorArg& ga, const TensorArg& gb, const TensorArg& g,
                                       const TensorArg& a, const TensorArg& b,
                                       const TensorArg& out) = 0;

  // ---- distributions (math in kernels/math/distributions) ----
  // One fused pass: out = log p(value | params) of `family`, and for each non-null
  // grads[k] the partial of out in value (k = 0) or in params[k - 1]. All operands have
  // out's sizes (broadcast strides) and one floating dtype; params holds
  // log_prob_param_count(family) entries, grads one more.
  virtual void log_prob(LogProbFamily family, const TensorArg& out, const TensorArg& value,
                        const TensorArg* params, const TensorArg* const* grads) = 0;
  // Fills the contiguous out with draws of `op` given its params (broadcast to out); element
  // i uses Philox counter element i of (rng.seed, rng.offset).
  virtual void sample(SampleOp op, const TensorArg& out, const TensorArg* params, RngState rng) = 0;
  // out = d sample / d params[0] for draws `sample` of `op`'s family (implicit
  // reparameterization), or that times params[1] (a `Vjp` op); operands broadcast to out.
  virtual void sample_grad(SampleGradOp op, const TensorArg& out, const TensorArg& sample,
                           const TensorArg* params) = 0;

  // ---- factorizations and triangular solves (floating dtypes) ----
  // out (batch, n, n), contiguous, gets the lower Cholesky factor of each contiguous matrix
  // of in (only in's lower triangles are read); *first_failed is the first batch index that
  // is not positive definite, or -1. May synchronize.
  virtual void cholesky(const TensorArg& out, const TensorArg& in, std::int64_t* first_failed) = 0;
  // out[i] = op(l[i])^-1 b[i], op(l) = l or l^T (transpose), l lower or upper triangular
  // (only that triangle is read). Contiguous 3-d args (batch, n, n) and (batch, n, k); l's
  // batch stride may be 0 (one matrix for the whole batch).
  virtual void triangular_solve(const TensorArg& out, const TensorArg& l, const TensorArg& b,
                                bool lower, bool transpose) = 0;

  // ---- optimizers (math in kernels/math/optim.hpp) ----
  // One fused update of every slot with `kind`'s rule; all slots share `dtype` (floating)
  // and live in this backend's memory. On a GPU this is one launch for the whole span (one
  // per 256 slots beyond that), queued without waiting for the device.
  virtual void optimizer_step(OptimKind kind, DType dtype, std::span<const OptimSlot> slots) = 0;
  // True when every element of every tensor (contiguous, float32 or float64, on this
  // backend) is finite: one pass over all of them; on a GPU one launch and one read, the
  // step's only wait for the device.
  virtual bool all_finite(std::span<const TensorArg> tensors) = 0;
};

// The CPU backend always exists.
Backend& cpu_backend();
// The CUDA backend for a device; throws DeviceError when CUDA is not built or the device is
// absent.
Backend& cuda_backend(int device_index);
Backend& backend_for(Device device);

// Implemented by the CUDA backend when built; 0 otherwise.
int cuda_backend_device_count();

}  // namespace ember::kernels
