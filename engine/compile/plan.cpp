// Recording a step's backend calls into a Plan, and replaying them.
#include "engine/compile/plan.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <sstream>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "ember/error.hpp"
#include "ember/param_store.hpp"
#include "engine/internal.hpp"
#include "kernels/common/counters.hpp"

namespace ember::detail {

constinit thread_local Recorder* t_recorder = nullptr;
constinit thread_local int t_programs = 0;

namespace {

std::uint64_t mix(std::uint64_t h, std::uint64_t v) { return (h ^ v) * 0x100000001b3ULL; }

std::uint64_t mix_double(std::uint64_t h, double v) {
  return mix(h, std::bit_cast<std::uint64_t>(v));
}

std::string describe(const kernels::TensorArg& a) {
  if (a.is_scalar()) return concat("scalar ", a.dtype);
  std::ostringstream os;
  os << a.dtype << " (";
  for (int i = 0; i < a.ndim; ++i) os << (i ? ", " : "") << a.sizes[i];
  os << ")";
  return os.str();
}

}  // namespace

void throw_host_read() {
  throw CompileError(
      "compile: a compiled step or function read a tensor's value on the host while it was "
      "being recorded (Tensor::item, to_vector, or a copy of a device tensor to the CPU, in the "
      "model, the guide, the function or a callback they run). A compiled program replays "
      "kernel calls only: values cannot steer it. Compute the value outside and pass it in as an "
      "argument (a 0-d tensor, or a number), or run the program without compile()");
}

// The backend a recording thread's ops see: each call runs on `inner` now, and is kept (its
// operands copied into the plan) to run again at replay.
class RecordingBackend final : public kernels::Backend {
 public:
  RecordingBackend(Recorder& rec, kernels::Backend& inner, Device device)
      : rec_(rec), b_(&inner), device_(device) {}

  // ---- memory: not recorded ----
  void* allocate(std::size_t nbytes) override { return b_->allocate(nbytes); }
  void deallocate(void* ptr, void* stream, bool shared) override {
    b_->deallocate(ptr, stream, shared);
  }
  kernels::StreamControl* streams() override { return b_->streams(); }
  void* allocate_pinned(std::size_t nbytes) override { return b_->allocate_pinned(nbytes); }
  void deallocate_pinned(void* ptr, void* stream, bool shared) override {
    b_->deallocate_pinned(ptr, stream, shared);
  }
  void copy_to_host(void* dst, const void* src, std::size_t nbytes) override {
    (void)dst, (void)src, (void)nbytes;
    throw_host_read();
  }
  void copy_from_host(void* dst, const void* src, std::size_t nbytes) override {
    b_->copy_from_host(dst, src, nbytes);
    void** d = rec_.keep_pointer(dst, nbytes);
    const void* s = rec_.host_source(src, nbytes);
    void** sp = rec_.keep_pointer(const_cast<void*>(s), nbytes);
    rec_.cur_reads_.push_back(s);
    rec_.declare_writes({dst});
    rec_.declare_host();  // from pageable memory: the host waits
    add({"copy_from_host"}, mix(0, nbytes),
        [b = b_, d, sp, nbytes] { b->copy_from_host(*d, *sp, nbytes); });
  }
  void copy_from_host_async(void* dst, const void* src, std::size_t nbytes) override {
    // The replayed copy reads the plan's source synchronously: no pinned block to track.
    copy_from_host(dst, src, nbytes);
  }
  void synchronize() override {
    b_->synchronize();
    rec_.declare_writes({});
    rec_.declare_pinned();
    add({"synchronize"}, 0, [b = b_] { b->synchronize(); });
  }

  // ---- creation and copies ----
  void fill(const kernels::TensorArg& out, double value) override {
    b_->fill(out, value);
    auto* o = rec_.keep(&out);
    add(
        {"fill", nullptr, o}, mix_double(h(*o), value), [b = b_, o, value] { b->fill(*o, value); },
        true);
  }
  void fill_linear(const kernels::TensorArg& out, double start, double step) override {
    b_->fill_linear(out, start, step);
    auto* o = rec_.keep(&out);
    add(
        {"fill_linear", nullptr, o}, mix_double(mix_double(h(*o), start), step),
        [b = b_, o, start, step] { b->fill_linear(*o, start, step); }, true);
  }
  void copy(const kernels::TensorArg& out, const kernels::TensorArg& in) override {
    b_->copy(out, in);
    auto* o = rec_.keep(&out);
    auto* i = rec_.keep(&in);
    add(
        {"copy", nullptr, i, o}, h(*o, *i), [b = b_, o, i] { b->copy(*o, *i); }, true);
  }

  // ---- elementwise ----
  void unary(kernels::UnaryOp op, const kernels::TensorArg& out, const kernels::TensorArg& x,
             double p0, double p1) override {
    b_->unary(op, out, x, p0, p1);
    auto* o = rec_.keep(&out);
    auto* xa = rec_.keep(&x);
    rec_.declare_repeatable();
    add(
        {"unary", kernels::unary_op_name(op), o},
        mix_double(mix_double(mix(h(*o, *xa), static_cast<std::uint64_t>(op)), p0), p1),
        [b = b_, op, o, xa, p0, p1] { b->unary(op, *o, *xa, p0, p1); }, true);
  }
  void unary_backward(kernels::UnaryOp op, const kernels::TensorArg& gx,
                      const kernels::TensorArg& g, const kernels::TensorArg& x,
                      const kernels::TensorArg& y, double p0, double p1) override {
    b_->unary_backward(op, gx, g, x, y, p0, p1);
    auto* a = rec_.keep(&gx);
    auto* ga = rec_.keep(&g);
    auto* xa = rec_.keep(&x);
    auto* ya = rec_.keep(&y);
    rec_.declare_repeatable();
    add(
        {"unary_backward", kernels::unary_op_name(op), a},
        mix_double(mix_double(mix(h(*a, *ga, *xa, *ya), static_cast<std::uint64_t>(op)), p0), p1),
        [b = b_, op, a, ga, xa, ya, p0, p1] { b->unary_backward(op, *a, *ga, *xa, *ya, p0, p1); },
        true);
  }
  void binary(kernels::BinaryOp op, const kernels::TensorArg& out, const kernels::TensorArg& a,
              const kernels::TensorArg& b) override {
    b_->binary(op, out, a, b);
    auto* o = rec_.keep(&out);
    auto* aa = rec_.keep(&a);
    auto* ba = rec_.keep(&b);
    rec_.declare_repeatable();
    add(
        {"binary", kernels::binary_op_name(op), aa, ba},
        mix(h(*o, *aa, *ba), static_cast<std::uint64_t>(op)),
        [be = b_, op, o, aa, ba] { be->binary(op, *o, *aa, *ba); }, true);
  }
  void binary_backward(kernels::BinaryOp op, const kernels::TensorArg* ga,
                       const kernels::TensorArg* gb, const kernels::TensorArg& g,
                       const kernels::TensorArg& a, const kernels::TensorArg& b,
                       const kernels::TensorArg& y) override {
    b_->binary_backward(op, ga, gb, g, a, b, y);
    auto* gaa = ga != nullptr ? rec_.keep(ga) : nullptr;
    auto* gba = gb != nullptr ? rec_.keep(gb) : nullptr;
    auto* g2 = rec_.keep(&g);
    auto* aa = rec_.keep(&a);
    auto* ba = rec_.keep(&b);
    auto* ya = rec_.keep(&y);
    std::uint64_t hash = mix(h(*g2, *aa, *ba, *ya), static_cast<std::uint64_t>(op));
    hash = mix(hash, (gaa != nullptr ? 1u : 0u) | (gba != nullptr ? 2u : 0u));
    rec_.declare_writes(
        {gaa != nullptr ? gaa->data : nullptr, gba != nullptr ? gba->data : nullptr});
    add(
        {"binary_backward", kernels::binary_op_name(op), g2}, hash,
        [be = b_, op, gaa, gba, g2, aa, ba, ya] {
          be->binary_backward(op, gaa, gba, *g2, *aa, *ba, *ya);
        },
        true);
  }
  void where(const kernels::TensorArg& out, const kernels::TensorArg& cond,
             const kernels::TensorArg& a, const kernels::TensorArg& b) override {
    b_->where(out, cond, a, b);
    auto* o = rec_.keep(&out);
    auto* c = rec_.keep(&cond);
    auto* aa = rec_.keep(&a);
    auto* ba = rec_.keep(&b);
    rec_.declare_repeatable();
    add(
        {"where", nullptr, o}, h(*o, *c, *aa, *ba),
        [be = b_, o, c, aa, ba] { be->where(*o, *c, *aa, *ba); }, true);
  }

  // ---- reductions and scans ----
  void reduce(kernels::ReduceOp op, const kernels::TensorArg& out,
              const kernels::TensorArg& in) override {
    b_->reduce(op, out, in);
    auto* o = rec_.keep(&out);
    auto* i = rec_.keep(&in);
    rec_.declare_repeatable();
    add(
        {"reduce", nullptr, i, o}, mix(h(*o, *i), static_cast<std::uint64_t>(op)),
        [b = b_, op, o, i] { b->reduce(op, *o, *i); }, true);
  }
  void reduce_product(const kernels::TensorArg& out, const kernels::TensorArg& a,
                      const kernels::TensorArg& b) override {
    b_->reduce_product(out, a, b);
    auto* o = rec_.keep(&out);
    auto* aa = rec_.keep(&a);
    auto* ba = rec_.keep(&b);
    rec_.declare_repeatable();
    add(
        {"reduce_product", nullptr, aa, o}, h(*o, *aa, *ba),
        [be = b_, o, aa, ba] { be->reduce_product(*o, *aa, *ba); }, true);
  }
  void scan(kernels::ScanOp op, const kernels::TensorArg& out, const kernels::TensorArg& in,
            int dim, bool reverse) override {
    b_->scan(op, out, in, dim, reverse);
    auto* o = rec_.keep(&out);
    auto* i = rec_.keep(&in);
    rec_.declare_repeatable();
    add(
        {"scan", nullptr, i},
        mix(mix(mix(h(*o, *i), static_cast<std::uint64_t>(op)), static_cast<std::uint64_t>(dim)),
            reverse),
        [b = b_, op, o, i, dim, reverse] { b->scan(op, *o, *i, dim, reverse); }, true);
  }
  void line_backward(kernels::LineGrad op, const kernels::TensorArg& gx,
                     const kernels::TensorArg& g, const kernels::TensorArg& x, int dim) override {
    b_->line_backward(op, gx, g, x, dim);
    auto* a = rec_.keep(&gx);
    auto* ga = rec_.keep(&g);
    auto* xa = rec_.keep(&x);
    rec_.declare_repeatable();
    add(
        {kernels::line_grad_name(op), nullptr, xa},
        mix(mix(h(*a, *ga, *xa), static_cast<std::uint64_t>(dim)), static_cast<std::uint64_t>(op)),
        [b = b_, op, a, ga, xa, dim] { b->line_backward(op, *a, *ga, *xa, dim); }, true);
  }
  void categorical_log_prob(const kernels::TensorArg& out, const kernels::TensorArg& table,
                            const kernels::TensorArg& value, bool logits) override {
    b_->categorical_log_prob(out, table, value, logits);
    auto* o = rec_.keep(&out);
    auto* t = rec_.keep(&table);
    auto* v = rec_.keep(&value);
    rec_.declare_repeatable();
    add(
        {"categorical_log_prob", logits ? "logits" : nullptr, t},
        mix(h(*o, *t, *v), static_cast<std::uint64_t>(logits)),
        [b = b_, o, t, v, logits] { b->categorical_log_prob(*o, *t, *v, logits); }, true);
  }
  void categorical_sample(const kernels::TensorArg& out, const kernels::TensorArg& table,
                          const kernels::TensorArg& u, bool logits) override {
    b_->categorical_sample(out, table, u, logits);
    auto* o = rec_.keep(&out);
    auto* t = rec_.keep(&table);
    auto* ua = rec_.keep(&u);
    add(
        {"categorical_sample", logits ? "logits" : nullptr, t},
        mix(h(*o, *t, *ua), static_cast<std::uint64_t>(logits)),
        [b = b_, o, t, ua, logits] { b->categorical_sample(*o, *t, *ua, logits); }, true);
  }
  void categorical_log_prob_backward(const kernels::TensorArg& gtable, const kernels::TensorArg& g,
                                     const kernels::TensorArg& table,
                                     const kernels::TensorArg& value, bool logits) override {
    b_->categorical_log_prob_backward(gtable, g, table, value, logits);
    auto* gt = rec_.keep(&gtable);
    auto* ga = rec_.keep(&g);
    auto* t = rec_.keep(&table);
    auto* v = rec_.keep(&value);
    add(
        {"categorical_log_prob_backward", logits ? "logits" : nullptr, t},
        mix(h(*gt, *ga, *t, *v), static_cast<std::uint64_t>(logits)),
        [b = b_, gt, ga, t, v, logits] {
          b->categorical_log_prob_backward(*gt, *ga, *t, *v, logits);
        },
        true);
  }
  void line_map(kernels::LineMap op, const kernels::TensorArg& out, const kernels::TensorArg& in,
                int dim) override {
    b_->line_map(op, out, in, dim);
    auto* o = rec_.keep(&out);
    auto* i = rec_.keep(&in);
    rec_.declare_repeatable();
    add(
        {kernels::line_map_name(op), nullptr, i},
        mix(mix(h(*o, *i), static_cast<std::uint64_t>(dim)), static_cast<std::uint64_t>(op)),
        [b = b_, op, o, i, dim] { b->line_map(op, *o, *i, dim); }, true);
  }

  // ---- indexing ----
  void index_select(const kernels::TensorArg& out, const kernels::TensorArg& in, int dim,
                    const kernels::TensorArg& index) override {
    b_->index_select(out, in, dim, index);
    auto* o = rec_.keep(&out);
    auto* i = rec_.keep(&in);
    auto* x = rec_.keep(&index);
    rec_.declare_repeatable();
    add(
        {"index_select", nullptr, i}, mix(h(*o, *i, *x), static_cast<std::uint64_t>(dim)),
        [b = b_, o, i, dim, x] { b->index_select(*o, *i, dim, *x); }, true);
  }
  void index_add(const kernels::TensorArg& out, int dim, const kernels::TensorArg& index,
                 const kernels::TensorArg& src) override {
    b_->index_add(out, dim, index, src);
    auto* o = rec_.keep(&out);
    auto* x = rec_.keep(&index);
    auto* s = rec_.keep(&src);
    rec_.declare_writes({o->data}, true);
    add(
        {"index_add", nullptr, o}, mix(h(*o, *x, *s), static_cast<std::uint64_t>(dim)),
        [b = b_, o, dim, x, s] { b->index_add(*o, dim, *x, *s); }, true);
  }
  void gather(const kernels::TensorArg& out, const kernels::TensorArg& in, int dim,
              const kernels::TensorArg& index) override {
    b_->gather(out, in, dim, index);
    auto* o = rec_.keep(&out);
    auto* i = rec_.keep(&in);
    auto* x = rec_.keep(&index);
    rec_.declare_repeatable();
    add(
        {"gather", nullptr, i}, mix(h(*o, *i, *x), static_cast<std::uint64_t>(dim)),
        [b = b_, o, i, dim, x] { b->gather(*o, *i, dim, *x); }, true);
  }
  void scatter_add(const kernels::TensorArg& out, int dim, const kernels::TensorArg& index,
                   const kernels::TensorArg& src) override {
    b_->scatter_add(out, dim, index, src);
    auto* o = rec_.keep(&out);
    auto* x = rec_.keep(&index);
    auto* s = rec_.keep(&src);
    rec_.declare_writes({o->data}, true);
    add(
        {"scatter_add", nullptr, o}, mix(h(*o, *x, *s), static_cast<std::uint64_t>(dim)),
        [b = b_, o, dim, x, s] { b->scatter_add(*o, dim, *x, *s); }, true);
  }
  void im2col(const kernels::TensorArg& col, const kernels::TensorArg& in,
              const kernels::Im2colGeometry& geo) override {
    b_->im2col(col, in, geo);
    auto* c = rec_.keep(&col);
    auto* i = rec_.keep(&in);
    add(
        {"im2col", nullptr, i}, h(*c, *i), [b = b_, c, i, geo] { b->im2col(*c, *i, geo); }, true);
  }
  void col2im(const kernels::TensorArg& in, const kernels::TensorArg& col,
              const kernels::Im2colGeometry& geo) override {
    b_->col2im(in, col, geo);
    auto* i = rec_.keep(&in);
    auto* c = rec_.keep(&col);
    rec_.declare_writes({i->data}, true);
    add(
        {"col2im", nullptr, i}, h(*i, *c), [b = b_, i, c, geo] { b->col2im(*i, *c, geo); }, true);
  }
  bool find_index_out_of_range(const kernels::TensorArg& index, std::int64_t bound,
                               std::int64_t* bad) override {
    const bool found = b_->find_index_out_of_range(index, bound, bad);
    record_index_check(index, bound, [bound](std::int64_t v) {
      throw ValueError(
          concat("compiled step: index ", v, " is out of range for a dim of size ", bound));
    });
    return found;
  }
  // A check that reads the index and writes nothing: kept where the index can change between
  // replays, hoisted where it cannot.
  void record_index_check(const kernels::TensorArg& index, std::int64_t bound,
                          std::function<void(std::int64_t)> fail) {
    auto* x = rec_.keep(&index);
    rec_.declare_writes({});
    rec_.declare_check();
    rec_.declare_host();  // it waits for the index's values
    add({"index check", nullptr, x}, mix(h(*x), static_cast<std::uint64_t>(bound)),
        [b = b_, x, bound, fail = std::move(fail)] {
          std::int64_t v = 0;
          if (b->find_index_out_of_range(*x, bound, &v)) fail(v);
        });
  }

  // ---- linear algebra ----
  void matmul(const kernels::TensorArg& out, const kernels::TensorArg& a,
              const kernels::TensorArg& b, bool accumulate) override {
    b_->matmul(out, a, b, accumulate);
    auto* o = rec_.keep(&out);
    auto* aa = rec_.keep(&a);
    auto* ba = rec_.keep(&b);
    rec_.declare_writes({o->data}, accumulate);
    if (!accumulate) rec_.declare_repeatable();
    add(
        {"matmul", nullptr, aa, ba}, mix(h(*o, *aa, *ba), accumulate),
        [be = b_, o, aa, ba, accumulate] { be->matmul(*o, *aa, *ba, accumulate); }, true);
  }
  void log_matmul_exp(const kernels::TensorArg& out, const kernels::TensorArg& a,
                      const kernels::TensorArg& b, bool max_plus) override {
    b_->log_matmul_exp(out, a, b, max_plus);
    auto* o = rec_.keep(&out);
    auto* aa = rec_.keep(&a);
    auto* ba = rec_.keep(&b);
    rec_.declare_writes({o->data});
    rec_.declare_repeatable();
    add(
        {"log_matmul_exp", max_plus ? "max_plus" : nullptr, aa, ba}, mix(h(*o, *aa, *ba), max_plus),
        [be = b_, o, aa, ba, max_plus] { be->log_matmul_exp(*o, *aa, *ba, max_plus); }, true);
  }
  void log_matmul_exp_backward(const kernels::TensorArg& ga, const kernels::TensorArg& gb,
                               const kernels::TensorArg& g, const kernels::TensorArg& a,
                               const kernels::TensorArg& b,
                               const kernels::TensorArg& out) override {
    b_->log_matmul_exp_backward(ga, gb, g, a, b, out);
    auto* gaa = rec_.keep(&ga);
    auto* gba = rec_.keep(&gb);
    auto* g2 = rec_.keep(&g);
    auto* aa = rec_.keep(&a);
    auto* ba = rec_.keep(&b);
    auto* o = rec_.keep(&out);
    rec_.declare_writes({gaa->data, gba->data});
    add(
        {"log_matmul_exp_backward", nullptr, g2}, h(*gaa, *gba, *g2, *aa, *ba, *o),
        [be = b_, gaa, gba, g2, aa, ba, o] {
          be->log_matmul_exp_backward(*gaa, *gba, *g2, *aa, *ba, *o);
        },
        true);
  }

  // ---- distributions ----
  void log_prob(kernels::LogProbFamily family, const kernels::TensorArg& out,
                const kernels::TensorArg& value, const kernels::TensorArg* params,
                const kernels::TensorArg* const* grads) override {
    b_->log_prob(family, out, value, params, grads);
    const int n = kernels::log_prob_param_count(family);
    auto* o = rec_.keep(&out);
    auto* v = rec_.keep(&value);
    auto* p = rec_.keep(params, static_cast<std::size_t>(n));
    std::array<const kernels::TensorArg*, kernels::kMaxDistParams + 1> g{};
    std::uint64_t hash = mix(h(*o, *v), static_cast<std::uint64_t>(family));
    for (int k = 0; k < n; ++k) hash = h(p[k], hash);
    for (int k = 0; k <= n; ++k) {
      if (grads[k] != nullptr) {
        g[static_cast<std::size_t>(k)] = rec_.keep(grads[k]);
        hash = h(*g[static_cast<std::size_t>(k)], mix(hash, k));
      }
    }
    rec_.declare_writes(
        {o->data, g[0] != nullptr ? g[0]->data : nullptr, g[1] != nullptr ? g[1]->data : nullptr,
         g[2] != nullptr ? g[2]->data : nullptr, g[3] != nullptr ? g[3]->data : nullptr});
    add(
        {"log_prob", kernels::log_prob_family_name(family), o}, hash,
        [b = b_, family, o, v, p, g] { b->log_prob(family, *o, *v, p, g.data()); }, true);
  }
  void sample(kernels::SampleOp op, const kernels::TensorArg& out, const kernels::TensorArg* params,
              kernels::RngState rng) override {
    b_->sample(op, out, params, rng);
    Generator& gen = rec_.generator();
    EMBER_CHECK_T(CompileError,
                  rng.base == nullptr && rng.seed == gen.seed() &&
                      rec_.relative_offset(rng.offset) < rec_.relative_offset(gen.offset()),
                  "compile: a ", kernels::sample_op_name(op),
                  " draw came from a generator other than the calling thread's default one (an "
                  "explicit Generator, a seed handler inside the program, or a generator that "
                  "keeps its offset on a device); a compiled program replays draws of the thread's "
                  "generator only");
    const int n = kernels::sample_param_count(op);
    auto* o = rec_.keep(&out);
    auto* p = n > 0 ? rec_.keep(params, static_cast<std::size_t>(n)) : nullptr;
    const std::uint64_t rel = rec_.relative_offset(rng.offset);
    std::uint64_t hash = mix(mix(h(*o), static_cast<std::uint64_t>(op)), rel);
    for (int k = 0; k < n; ++k) hash = h(p[k], hash);
    const std::uint64_t* seed = &rec_.plan_.seed_;
    const std::uint64_t* base = rec_.plan_.draw_base(device_, b_->streams());
    rec_.declare_draw();  // a fresh draw at every replay
    add({"sample", kernels::sample_op_name(op), o}, hash, [b = b_, op, o, p, rel, seed, base] {
      b->sample(op, *o, p, kernels::RngState{*seed, rel, base});
    });
  }
  void sample_grad(kernels::SampleGradOp op, const kernels::TensorArg& out,
                   const kernels::TensorArg& sample, const kernels::TensorArg* params) override {
    b_->sample_grad(op, out, sample, params);
    const int n = kernels::sample_grad_param_count(op);
    auto* o = rec_.keep(&out);
    auto* s = rec_.keep(&sample);
    auto* p = rec_.keep(params, static_cast<std::size_t>(n));
    std::uint64_t hash = mix(h(*o, *s), static_cast<std::uint64_t>(op));
    for (int k = 0; k < n; ++k) hash = h(p[k], hash);
    rec_.declare_repeatable();
    add(
        {"sample_grad", nullptr, o}, hash, [b = b_, op, o, s, p] { b->sample_grad(op, *o, *s, p); },
        true);
  }

  // ---- factorizations ----
  void cholesky(const kernels::TensorArg& out, const kernels::TensorArg& in,
                std::int64_t* first_failed) override {
    b_->cholesky(out, in, first_failed);
    auto* o = rec_.keep(&out);
    auto* i = rec_.keep(&in);
    rec_.declare_host();  // the factorization's error check reads a flag on the host
    add({"cholesky", nullptr, i}, h(*o, *i), [b = b_, o, i] {
      std::int64_t failed = -1;
      b->cholesky(*o, *i, &failed);
      EMBER_CHECK(failed < 0, "cholesky (compiled step): the matrix at batch index ", failed,
                  " of ", describe(*i), " is not positive definite");
    });
  }
  void triangular_solve(const kernels::TensorArg& out, const kernels::TensorArg& l,
                        const kernels::TensorArg& b, bool lower, bool transpose) override {
    b_->triangular_solve(out, l, b, lower, transpose);
    auto* o = rec_.keep(&out);
    auto* la = rec_.keep(&l);
    auto* ba = rec_.keep(&b);
    rec_.declare_repeatable();
    add({"triangular_solve", nullptr, ba}, mix(mix(h(*o, *la, *ba), lower), transpose),
        [be = b_, o, la, ba, lower, transpose] {
          be->triangular_solve(*o, *la, *ba, lower, transpose);
        });
  }

  // ---- optimizers and checks ----
  void optimizer_step(kernels::OptimKind kind, DType dtype,
                      std::span<const kernels::OptimSlot> slots) override {
    b_->optimizer_step(kind, dtype, slots);
    std::vector<kernels::OptimSlot> kept(slots.begin(), slots.end());
    // What it touches, for hoisting and for buffers that share memory: each slot's gradient
    // read, its parameter and states read and written.
    rec_.declare_writes({}, /*rmw=*/true);
    for (const kernels::OptimSlot& s : kept) {
      rec_.cur_reads_.push_back(s.grad);
      rec_.cur_writes_.push_back(s.param);
      rec_.cur_reads_.push_back(s.param);
      for (const void* st : s.state) {
        if (st == nullptr) continue;
        rec_.cur_writes_.push_back(st);
        rec_.cur_reads_.push_back(st);
      }
    }
    rec_.declare_pinned();
    add({"optimizer_step", kernels::optim_kind_name(kind)},
        mix(static_cast<std::uint64_t>(kind), slots.size()),
        [b = b_, kind, dtype, kept = std::move(kept)] { b->optimizer_step(kind, dtype, kept); });
  }
  bool all_finite(std::span<const kernels::TensorArg> tensors) override {
    const bool finite = b_->all_finite(tensors);
    auto* t = tensors.empty() ? nullptr : rec_.keep(tensors.data(), tensors.size());
    const std::size_t n = tensors.size();
    std::uint64_t hash = mix(0, n);
    for (std::size_t k = 0; k < n; ++k) hash = h(t[k], hash);
    bool* flag = &rec_.plan_.finite_;
    rec_.declare_writes({});
    rec_.declare_pinned();
    add({"finite check"}, hash, [b = b_, t, n, flag] {
      if (!b->all_finite(std::span<const kernels::TensorArg>(t, n))) *flag = false;
    });
    return finite;
  }

 private:
  // The structure hash of operands: geometry and dtype, and the values of scalars that are
  // constants of the step (not those read again at replay).
  std::uint64_t h(const kernels::TensorArg& a, std::uint64_t hash = 0) const {
    hash = mix(hash, static_cast<std::uint64_t>(a.dtype) * 2 + (a.is_scalar() ? 1 : 0));
    if (a.is_scalar()) {
      return rec_.is_refreshed(&a) ? mix(hash, 7) : mix_double(hash, a.scalar);
    }
    hash = mix(hash, static_cast<std::uint64_t>(a.ndim));
    for (int i = 0; i < a.ndim; ++i) hash = mix(mix(hash, a.sizes[i]), a.strides[i]);
    return hash;
  }
  template <typename... More>
  std::uint64_t h(const kernels::TensorArg& a, const kernels::TensorArg& b,
                  const More&... more) const {
    std::uint64_t hash = h(b, h(a));
    ((hash = h(more, hash)), ...);
    return hash;
  }
  // `bindable`: the call is one loop of the launcher's, which may bind it (Backend::run_bound).
  template <typename F>
  void add(const Plan::CallInfo& what, std::uint64_t hash, F&& run, bool bindable = false) {
    rec_.add_call(std::function<void()>(std::forward<F>(run)), what, hash, b_->streams(), b_,
                  bindable);
  }

  Recorder& rec_;
  kernels::Backend* b_;
  Device device_;
};

// ---------------------------------------------------------------------- Plan ----
Plan::Plan(const CompileOptions& options)
    : graphs_on_(options.cuda_graphs),
      fuse_on_(options.fuse),
      stage_on_(options.stage_inputs),
      merge_on_(options.merge_repeats),
      share_on_(options.share_buffers) {}
Plan::~Plan() { drop_graphs(); }

bool Plan::replay(const StepInputs& inputs, Generator& gen) {
  ++replays_;
  // Inputs whose memory moved: every pointer into them follows; graphs captured with the old
  // pointers are captured again, and calls bound with them bound again (place_inputs). An
  // input read only as scalars read again before their calls run (a 0-d factor made anew at
  // every step) binds no call.
  // A staged input is copied into the plan's buffer instead (copy_staged), and the pointers
  // stay.
  bool moved = false, rebind = false;
  for (std::size_t k = 0; k < bound_.size(); ++k) {
    if (!inputs[k].defined() || (!staged_.empty() && staged_[k].defined())) continue;
    const void* now = inputs[k].data_ptr();
    if (now == bound_[k]) continue;
    // The key of the place the inputs leave, where their calls' bound loops will be kept.
    if (!moved) placement_key(bound_, spare_.at);
    if (stage_on_ && moves_[k] >= 0 && ++moves_[k] >= kMovesToStage) {
      moves_[k] = -1;  // decided: staged from now on, or never
      if (may_stage(k, inputs[k])) {
        // In a buffer of the plan's: the calls bound once more, to it.
        staged_.resize(bound_.size());
        staged_[k] =
            empty(inputs[k].shape(),
                  TensorOptions{}.with_dtype(inputs[k].dtype()).with_device(inputs[k].device()));
        now = staged_[k].data_ptr();
      }
    }
    rebase(k, now);
    moved = true;
    rebind = rebind || bound_inputs_[k];
  }
  copy_staged(inputs);
  if (moved) {
    for (Segment& g : segments_) g.stale = g.stale || g.reads_inputs;
    if (rebind) place_inputs();
  }
  if (!segments_built_) build_segments();
  seed_ = gen.seed();
  base_ = gen.offset();
  gen.set_offset(base_ + advance_);
  set_draw_bases();
  finite_ = true;
  graphs_launched_ = graph_calls_ = bound_calls_ = 0;
  kernels::t_event_counters.backend_calls += calls_.size();
  std::size_t k = 0;
  for (Segment& g : segments_) {
    for (; k < g.begin; ++k) run_call(calls_[k]);
    run_segment(g);
    k = g.end;
  }
  for (Fused& f : fused_) {
    for (; k < f.begin; ++k) run_call(calls_[k]);
    run_fused(f);
    k = f.end;
  }
  for (; k < calls_.size(); ++k) run_call(calls_[k]);
  // After the calls ran, so that the replay that bound them all builds the runs, not the
  // next (whose work should be only the calls').
  if (!fused_built_) build_fused();
  return finite_;
}

void Plan::exchange(Call& c, BoundState& s) {
  std::swap(c.bound, s.bound);
  c.rereads.swap(s.rereads);
  std::swap(c.ranged, s.ranged);
}

void Plan::rebase(std::size_t input, const void* to) {
  for (const Patch& p : patches_) {
    if (p.input == input) *p.where = static_cast<unsigned char*>(const_cast<void*>(to)) + p.delta;
  }
  bound_[input] = to;
}

bool Plan::may_stage(std::size_t input, const Tensor& t) const {
  // Only where no call writes an input (a write must reach the caller's tensor), and only a
  // contiguous input that covers every pointer into its storage (its bytes are what is copied).
  if (!t.is_contiguous() || writes_an_input()) return false;
  const auto nbytes = static_cast<std::ptrdiff_t>(t.numel() * element_size(t.dtype()));
  for (const Patch& p : patches_) {
    if (p.input == input && (p.delta < 0 || p.delta >= nbytes)) return false;
  }
  return true;
}

void Plan::copy_staged(const StepInputs& inputs) {
  // On the device's current stream, before anything of the replay: the calls read the copy.
  for (std::size_t k = 0; k < staged_.size(); ++k) {
    if (!staged_[k].defined() || !inputs[k].defined()) continue;
    backend(inputs[k]).copy(arg(staged_[k]), arg(inputs[k]));
  }
}

std::size_t Plan::staged_inputs() const {
  return static_cast<std::size_t>(
      std::count_if(staged_.begin(), staged_.end(), [](const Tensor& t) { return t.defined(); }));
}

void Plan::placement_key(const std::vector<const void*>& at, std::vector<const void*>& key) const {
  key.resize(at.size());
  for (std::size_t k = 0; k < at.size(); ++k) key[k] = bound_inputs_[k] ? at[k] : nullptr;
}

void Plan::place_inputs() {
  // The calls bound at the place left (its key set by replay), and their runs, kept in
  // spare_, whose room earlier moves made (all of it empty now).
  Placement& kept = spare_;
  placement_key(bound_, key_);
  kept.calls.clear();
  std::size_t n = 0;
  for (std::size_t k = 0; k < calls_.size(); ++k) {
    Call& c = calls_[k];
    if (!c.binds_inputs || !c.bound) continue;
    kept.calls.push_back(k);
    if (kept.states.size() <= n) kept.states.emplace_back();
    exchange(c, kept.states[n++]);  // kept: the states are empty
  }
  kept.fused.swap(fused_);
  kept.fused_built = fused_built_;
  kept.order = order_;
  kept.used = replays_;
  // Bound before at the new place (and in the same order of calls): put back.
  auto back = std::find_if(placements_.begin(), placements_.end(),
                           [&](const Placement& p) { return p.order == order_ && p.at == key_; });
  if (back != placements_.end()) {
    for (std::size_t i = 0; i < back->calls.size(); ++i)
      exchange(calls_[back->calls[i]], back->states[i]);  // kept: the calls are empty
    fused_.swap(back->fused);
    fused_built_ = back->fused_built;
    if (!back->calls.empty()) ++placements_reused_;
  } else {
    if (placements_.size() < kMaxPlacements) {
      placements_.emplace_back();
      back = placements_.end() - 1;
    } else {
      // One kept for an older order of the calls first, else the least recently used.
      auto age = [&](const Placement& p) { return p.order == order_ ? p.used + 1 : 0; };
      back =
          std::min_element(placements_.begin(), placements_.end(),
                           [&](const Placement& a, const Placement& b) { return age(a) < age(b); });
    }
    fused_built_ = false;
  }
  // The slot used is now the kept placement's; what it held (moved out, or dropped) is the
  // room of the next move.
  std::swap(*back, kept);
  for (BoundState& s : spare_.states) {
    s.bound = nullptr;
    s.rereads.clear();
    s.ranged = {};
  }
  spare_.fused.clear();
  // Calls bound at the old place and not at the new: bound again from the patched pointers
  // before anything runs (their launchers only capture: all the work of a call that bound is
  // in its bound loop), so that the runs can be made for this very replay. A call that does
  // not bind so is bound, or run, when its turn comes.
  for (const std::size_t k : back->calls) {
    Call& c = calls_[k];
    if (c.bound) continue;
    c.binder = c.rebinder;
    refresh(c);
    bind(c, /*capture=*/true);
  }
  if (!fused_built_) build_fused();  // fused_ is empty: runs are only ever made whole
}

namespace {
double refreshed_value(const void* src, DType dtype) {
  return dtype == kFloat32 ? double{*static_cast<const float*>(src)}
                           : *static_cast<const double*>(src);
}
std::uint64_t bits(double v) { return std::bit_cast<std::uint64_t>(v); }
}  // namespace

void Plan::reread(const Call& c) {
  for (const Reread& x : c.rereads) x.set(x.slot, refreshed_value(x.from->src, x.from->arg->dtype));
}

void Plan::refresh(const Call& c) {
  for (std::size_t r = c.refresh_begin; r < c.refresh_end; ++r) {
    const Refresh& f = refreshes_[r];
    if (f.arg != nullptr) f.arg->scalar = refreshed_value(f.src, f.arg->dtype);
  }
}

void Plan::run_call(Call& c) {
  if (c.bound) {
    reread(c);
    c.bound();
    ++bound_calls_;
    return;
  }
  refresh(c);
  if (c.binder != nullptr) {
    bind(c);
    return;
  }
  c.run();
}

void Plan::bind(Call& c, bool capture) {
  // Run through the launcher once more, and bound if it can be: later replays skip its
  // dispatch, shape logic and operand setup.
  kernels::BoundCall b = c.binder->run_bound(c.run, capture);
  if (!b.run) {
    c.binder = nullptr;
    return;
  }
  std::vector<const Refresh*> live;
  for (std::size_t r = c.refresh_begin; r < c.refresh_end; ++r)
    if (refreshes_[r].arg != nullptr) live.push_back(&refreshes_[r]);
  if (live.empty()) {
    c.bound = std::move(b.run);
    c.ranged = std::move(b.ranged);
    return;
  }
  // A scalar read again at every replay goes into the slot the bound loop reads it from. The
  // launcher reads copies of the call's operands, so the slot is found by the value: binding
  // waits for a replay at which no other scalar operand of the call has that value.
  auto refreshed = [&](const kernels::TensorArg* a) -> const Refresh* {
    for (const Refresh* f : live)
      if (f->arg == a) return f;
    return nullptr;
  };
  for (const Refresh* f : live) {
    for (std::size_t s = c.scalar_begin; s < c.scalar_end; ++s) {
      const kernels::TensorArg* other = scalar_args_[s];
      if (other == f->arg || bits(other->scalar) != bits(f->arg->scalar)) continue;
      const Refresh* o = refreshed(other);
      if (o != nullptr && o->src == f->src) continue;  // the same value read twice
      if (++c.bind_tries >= kMaxBindTries) c.binder = nullptr;
      return;
    }
  }
  std::vector<Reread> rereads;
  std::vector<bool> found(live.size(), false);
  for (const kernels::BoundScalar& u : b.scalars) {
    for (std::size_t r = 0; r < live.size(); ++r) {
      if (bits(live[r]->arg->scalar) != bits(u.value)) continue;
      if (u.slot == nullptr) {  // taken into the loop's body: it cannot change there
        c.binder = nullptr;
        return;
      }
      rereads.push_back({live[r], u.slot, u.set});
      found[r] = true;
      break;
    }
  }
  if (std::find(found.begin(), found.end(), false) != found.end()) {
    c.binder = nullptr;  // a scalar read some other way
    return;
  }
  c.bound = std::move(b.run);
  c.rereads = std::move(rereads);
  c.ranged = std::move(b.ranged);
}

namespace {
// The bytes a strided operand spans, [lo, hi).
std::pair<const unsigned char*, const unsigned char*> extent(const kernels::TensorArg& a) {
  const auto size = static_cast<std::int64_t>(element_size(a.dtype));
  std::int64_t lo = 0, hi = 0;
  for (int d = 0; d < a.ndim; ++d) {
    if (a.sizes[d] == 0) return {nullptr, nullptr};
    const std::int64_t span = (a.sizes[d] - 1) * a.strides[d];
    (span < 0 ? lo : hi) += span;
  }
  const auto* base = static_cast<const unsigned char*>(a.data);
  return {base + lo * size, base + (hi + 1) * size};
}

// The bytes from an operand's first element to the end of its extent (0 when it is empty).
std::size_t bytes_from_first(const kernels::TensorArg& a) {
  const unsigned char* hi = extent(a).second;
  return hi == nullptr ? 0
                       : static_cast<std::size_t>(hi - static_cast<const unsigned char*>(a.data));
}
}  // namespace

std::vector<MemorySpan> Plan::spans(const Call& c) const {
  std::vector<MemorySpan> out;
  for (std::size_t o = c.operand_begin; o < c.operand_end; ++o) {
    const auto [lo, hi] = extent(*operands_[o].arg);
    if (lo != nullptr) out.push_back({lo, hi, operands_[o].written});
  }
  for (const Reread& r : c.rereads) {
    const auto* src = static_cast<const unsigned char*>(r.from->src);
    out.push_back({src, src + element_size(r.from->arg->dtype), false});
  }
  return out;
}

namespace {
bool overlap(const MemorySpan& a, const MemorySpan& b) { return a.lo < b.hi && b.lo < a.hi; }

// Whether two calls' order matters: one writes memory the other reads or writes.
bool conflict(const std::vector<MemorySpan>& x, const std::vector<MemorySpan>& y) {
  for (const MemorySpan& a : x)
    for (const MemorySpan& b : y)
      if ((a.written || b.written) && overlap(a, b)) return true;
  return false;
}
}  // namespace

bool Plan::starts_fused(const Call& c) const {
  return c.bound && c.ranged.run && c.ranged.n >= kFuseMin;
}

bool Plan::joins(std::span<const std::size_t> run, std::size_t k,
                 const std::vector<std::vector<MemorySpan>>& access) const {
  const Call& c = calls_[k];
  if (!starts_fused(c)) return false;
  if (run.empty()) return true;
  if (c.ranged.n != calls_[run.front()].ranged.n) return false;
  int reductions = c.ranged.reduces ? 1 : 0;
  for (const std::size_t j : run) reductions += calls_[j].ranged.reduces ? 1 : 0;
  if (reductions > kernels::kMaxFusedReductions) return false;
  // Tile by tile, call k runs on a tile after the earlier calls ran on it and before they run
  // on the next: memory one of them writes and another reads or writes must be the same
  // elements in both (the same extent), so that each tile sees exactly its own elements. A
  // reduction writes its result after the last tile: no later call may touch it.
  for (const std::size_t j : run) {
    const bool reduces = calls_[j].ranged.reduces;
    for (const MemorySpan& a : access[j]) {
      for (const MemorySpan& b : access[k]) {
        if ((!a.written && !b.written) || !overlap(a, b)) continue;
        if ((reduces && a.written) || a.lo != b.lo || a.hi != b.hi) return false;
      }
    }
  }
  return true;
}

void Plan::gather_fusable(std::span<std::size_t> order,
                          const std::vector<std::vector<MemorySpan>>& access) const {
  // From each call that may start a fused run, the calls after it (up to kFuseScan of them, and
  // to the first that is not bound, whose memory is not all in its operands) are dealt into
  // three groups, keeping their order within each: those that join the run; those that touch
  // nothing the run or the third group touches, which move before the run (and are gathered
  // in turn: another chain's run); and the rest, which stay after it. Only independent calls
  // change places, so a replay computes what it did, in fewer passes over memory (a
  // regression's X w, its log-density, its sums and X^T r become one run that reads X once).
  std::vector<std::size_t> before, run, after;
  for (std::size_t s = 0; s < order.size();) {
    if (!starts_fused(calls_[order[s]])) {
      ++s;
      continue;
    }
    before.clear();
    run.assign(1, order[s]);
    after.clear();
    for (std::size_t t = s + 1; t < order.size() && t - s <= kFuseScan; ++t) {
      const std::size_t j = order[t];
      if (!calls_[j].bound) break;
      auto conflicts_with = [&](const std::vector<std::size_t>& group) {
        for (const std::size_t g : group)
          if (conflict(access[g], access[j])) return true;
        return false;
      };
      if (conflicts_with(after)) {
        after.push_back(j);
      } else if (joins(run, j, access)) {
        run.push_back(j);
      } else if (conflicts_with(run)) {
        after.push_back(j);
      } else {
        before.push_back(j);
      }
    }
    std::size_t at = s;
    for (const auto* group : {&before, &run, &after})
      for (const std::size_t j : *group) order[at++] = j;
    const std::size_t moved_before = before.size(), in_run = run.size();
    gather_fusable(order.subspan(s, moved_before), access);
    s += moved_before + in_run;
  }
}

bool Plan::writes_an_input() const {
  std::vector<void* const*> patched;
  for (const Patch& p : patches_) patched.push_back(p.where);
  std::sort(patched.begin(), patched.end());
  for (const Operand& op : operands_) {
    if (op.written && std::binary_search(patched.begin(), patched.end(), &op.arg->data))
      return true;
  }
  return false;
}

void Plan::build_fused() {
  if (!fuse_on_ || !segments_.empty()) {
    fused_built_ = true;
    return;
  }
  // Built once every call that binds has bound (a call binds at its first replay).
  for (const Call& c : calls_)
    if (c.binder != nullptr && !c.bound) return;
  fused_built_ = true;
  // A small model has no call long enough to fuse: nothing to look at.
  if (std::none_of(calls_.begin(), calls_.end(), [&](const Call& c) { return starts_fused(c); }))
    return;
  std::vector<std::vector<MemorySpan>> access;
  auto note_access = [&] {
    access.clear();
    for (const Call& c : calls_) access.push_back(spans(c));
  };
  note_access();
  std::vector<std::size_t> order(calls_.size());
  for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
  // The order found stays when inputs move (only the runs are made again), so it must not
  // depend on where they are: it does not while no call writes an input's memory (whose
  // reads then never conflict with anything).
  if (!writes_an_input()) gather_fusable(order, access);
  if (!std::is_sorted(order.begin(), order.end())) {
    std::vector<Call> sorted;
    sorted.reserve(calls_.size());
    for (const std::size_t k : order) sorted.push_back(std::move(calls_[k]));
    calls_ = std::move(sorted);
    ++order_;  // placements kept for the old order no longer fit
    note_access();
  }
  std::vector<std::size_t> run;
  tile_buffers_ = tile_bytes_ = 0;
  for (std::size_t k = 0; k < calls_.size();) {
    run.clear();
    std::size_t end = k;
    while (end < calls_.size() && joins(run, end, access)) run.push_back(end++);
    if (run.size() >= 2) {
      Fused f{k, end, {}, {}, {}};
      std::size_t reductions = 0;
      for (std::size_t j = k; j < end; ++j) {
        f.loops.push_back(&calls_[j].ranged);
        reductions += calls_[j].ranged.reduces ? 1 : 0;
      }
      f.carries.resize(reductions * kernels::kMaxReduceSlices);
      tile_locals(f, access);
      fused_.push_back(std::move(f));
    }
    k = std::max(end, k + 1);
  }
}

void Plan::tile_locals(Fused& f, const std::vector<std::vector<MemorySpan>>& access) {
  f.locals.assign(f.end - f.begin, 0u);
  if (scratch_.empty()) return;
  auto in_scratch = [&](const MemorySpan& a) {
    auto it = std::upper_bound(
        scratch_.begin(), scratch_.end(), a.lo,
        [](const unsigned char* p, const auto& region) { return p < region.first; });
    return it != scratch_.begin() && a.hi <= std::prev(it)->second;
  };
  const std::int64_t n = calls_[f.begin].ranged.n;
  std::vector<const unsigned char*> looked;
  std::vector<unsigned> bits(f.end - f.begin);
  for (std::size_t j = f.begin; j < f.end; ++j) {
    for (const MemorySpan& a : access[j]) {
      if (!a.written || !in_scratch(a) ||
          std::find(looked.begin(), looked.end(), a.lo) != looked.end()) {
        continue;
      }
      looked.push_back(a.lo);
      // No call outside the run touches it; the run's calls touch it whole, the first of them
      // writing it without reading it, each through operands of its `at`.
      bool local = true, first = true;
      std::fill(bits.begin(), bits.end(), 0u);
      for (std::size_t c = 0; c < calls_.size() && local; ++c) {
        bool touches = false, reads = false;
        for (const MemorySpan& b : access[c]) {
          if (!overlap(a, b)) continue;
          touches = true;
          reads = reads || !b.written;
          local = local && c >= f.begin && c < f.end && b.lo == a.lo && b.hi == a.hi;
        }
        if (!touches || !local) continue;
        local = !(first && reads);
        first = false;
        const kernels::RangedLoop& l = calls_[c].ranged;
        unsigned& mine = bits[c - f.begin];
        for (std::size_t k = 0; k < l.at.size(); ++k) {
          if (l.at[k].at == a.lo && a.hi - a.lo == n * static_cast<std::int64_t>(l.at[k].bytes))
            mine |= 1u << k;
        }
        local = local && mine != 0;
      }
      if (!local) continue;
      for (std::size_t c = 0; c < bits.size(); ++c) f.locals[c] |= bits[c];
      ++tile_buffers_;
      tile_bytes_ += static_cast<std::size_t>(a.hi - a.lo);
    }
  }
}

void Plan::run_fused(Fused& f) {
  for (std::size_t k = f.begin; k < f.end; ++k) reread(calls_[k]);
  f.ran = calls_[f.begin].rebinder->run_fused(f.loops.data(), static_cast<int>(f.loops.size()),
                                              f.carries.data(), f.carries.size(), f.locals.data());
  if (!f.ran) {
    for (std::size_t k = f.begin; k < f.end; ++k) run_call(calls_[k]);
    return;
  }
  bound_calls_ += f.end - f.begin;
}

std::size_t Plan::fused_calls() const {
  std::size_t n = 0;
  for (const Fused& f : fused_)
    if (f.ran) n += f.end - f.begin;
  return n;
}

void Plan::build_segments() {
  segments_built_ = true;
  if (!graphs_on_) return;
  for (std::size_t k = 0; k < calls_.size();) {
    kernels::StreamControl* device = calls_[k].graph_device;
    std::size_t end = k + 1;
    bool reads_inputs = calls_[k].reads_inputs, draws = calls_[k].draws;
    while (device != nullptr && end < calls_.size() && calls_[end].graph_device == device) {
      reads_inputs = reads_inputs || calls_[end].reads_inputs;
      draws = draws || calls_[end].draws;
      ++end;
    }
    // One call gains nothing from a graph: a graph launch costs about what a kernel's does.
    if (device != nullptr && end - k >= 2)
      segments_.push_back({k, end, device, reads_inputs, draws});
    k = end;
  }
}

void Plan::run_segment(Segment& g) {
  // Captured again: data that moved, or draws under a new seed (their offset the graph reads
  // from the device); the graph updated in place where it can be.
  const bool recapture = g.graph == nullptr || g.stale || (g.draws && g.seed != seed_);
  if (recapture && capture_error_.empty() &&
      (g.graph != nullptr || g.instantiations < kMaxInstantiations)) {
    std::string why;
    void* graph = nullptr;
    void* previous = std::exchange(g.graph, nullptr);
    try {
      g.device->begin_capture();
    } catch (const std::exception& e) {
      why = concat("the capture did not begin: ", e.what());
      g.device->destroy_graph(previous);
      previous = nullptr;
    }
    if (why.empty()) {
      // Captured, not run: the graph runs the calls once it is launched below.
      try {
        for (std::size_t k = g.begin; k < g.end; ++k) run_call(calls_[k]);
      } catch (const std::exception& e) {
        why = concat("a call failed while captured: ", e.what());
      }
      graph = g.device->end_capture(why.empty() ? &why : nullptr, previous);
    }
    if (graph != nullptr && why.empty()) {
      if (graph == previous) {
        ++updates_;
      } else {
        ++g.instantiations;
        ++instantiations_;
      }
      g.graph = graph;
      g.stale = false;
      g.seed = seed_;
    } else {
      g.device->destroy_graph(graph);
      // Given up for this plan: its calls are launched one by one from now on.
      capture_error_ = why;
      drop_graphs();
    }
  }
  if (g.graph == nullptr) {
    for (std::size_t k = g.begin; k < g.end; ++k) run_call(calls_[k]);
    return;
  }
  g.device->launch_graph(g.graph);
  ++graphs_launched_;
  graph_calls_ += g.end - g.begin;
}

void Plan::drop_graphs() {
  for (Segment& g : segments_) {
    g.device->destroy_graph(g.graph);
    g.graph = nullptr;
  }
}

const std::uint64_t* Plan::draw_base(Device device, kernels::StreamControl* streams) {
  if (streams == nullptr) return &base_;
  for (const DrawBase& d : draw_bases_)
    if (d.device == device) return static_cast<const std::uint64_t*>(d.word.data_ptr());
  const PauseRecording pause;  // made now, set at every replay: not a recorded call
  draw_bases_.push_back(
      {device, zeros({}, TensorOptions{}.with_dtype(kInt64).with_device(device))});
  return static_cast<const std::uint64_t*>(draw_bases_.back().word.data_ptr());
}

void Plan::set_draw_bases() {
  // A launch that takes base_ by value, queued before the replay's draws; a double holds
  // integers below 2^53 exactly, a larger base is set in two exact parts.
  constexpr std::uint64_t kExact = std::uint64_t{1} << 53, kLow = (std::uint64_t{1} << 32) - 1;
  for (const DrawBase& d : draw_bases_) {
    const kernels::TensorArg word = arg(d.word);
    kernels::Backend& b = backend(d.word);
    if (base_ < kExact) {
      b.fill(word, static_cast<double>(base_));
      continue;
    }
    b.fill(word, static_cast<double>(base_ & ~kLow));
    b.binary(kernels::BinaryOp::Add, word, word,
             kernels::scalar_arg(static_cast<double>(base_ & kLow), kInt64));
  }
}

std::string Plan::describe_call(std::size_t k) const {
  const CallInfo& c = infos_[k];
  std::string s = c.kind;
  if (c.op != nullptr) s += concat(" ", c.op);
  if (c.first != nullptr) s += concat(" ", describe(*c.first));
  if (c.second != nullptr) s += concat(", ", describe(*c.second));
  return s;
}

std::string Plan::listing(const std::string& title, std::uint64_t key) const {
  std::ostringstream os;
  os << title << ", " << size() << " calls recorded, " << replayed_calls() << " replayed, key "
     << std::hex << key << std::dec << ":\n";
  // calls_ holds the calls that were not hoisted, in the order a replay runs them.
  std::vector<std::size_t> replayed(size(), calls_.size());
  for (std::size_t r = 0; r < calls_.size(); ++r) replayed[calls_[r].recorded] = r;
  for (std::size_t k = 0; k < size(); ++k) {
    std::string mark = " ";
    if (hoisted(k)) {
      mark = " (hoisted) ";
    } else if (!copies_.empty() && copies_[k] != kNoCopy) {
      mark = concat(" (copies ", copies_[k], ") ");
    } else if (replayed[k] < calls_.size()) {
      const std::size_t r = replayed[k];
      // Fused runs are numbered from 1 in order.
      std::size_t run = 0;
      while (run < fused_.size() && fused_[run].end <= r) ++run;
      if (run < fused_.size() && fused_[run].begin <= r && fused_[run].ran) {
        mark = concat(" (bound, fused ", run + 1, ") ");
      } else if (calls_[r].bound) {
        mark = " (bound) ";
      }
    }
    os << "  " << k << mark << describe_call(k) << "\n";
  }
  return os.str();
}

std::optional<std::string> Plan::difference(const Plan& other) const {
  const std::size_t n = std::min(signature_.size(), other.signature_.size());
  for (std::size_t k = 0; k < n; ++k) {
    if (signature_[k] == other.signature_[k]) continue;
    const std::string was = describe_call(k), now = other.describe_call(k);
    return concat(
        "kernel call ", k, " of ", signature_.size(), " was `", was, "` when recorded and is now `",
        now, "`",
        was == now ? " (the same kind and shape; its strides, options or constants changed)" : "");
  }
  if (signature_.size() == other.signature_.size()) return std::nullopt;
  return concat("the recorded step made ", signature_.size(), " kernel calls, the step now makes ",
                other.signature_.size(), " (the first ", n, " agree)");
}

std::size_t Plan::retained_bytes() const {
  std::size_t n = 0;
  for (const auto& s : retained_) n += s->nbytes();
  for (const auto& s : snapshots_) n += s.size();
  for (const Tensor& t : staged_)
    if (t.defined()) n += t.numel() * element_size(t.dtype());
  return n;
}

// ------------------------------------------------------------------ Recorder ----
Recorder::Recorder(Plan& plan, const StepInputs& inputs, Generator& gen)
    : plan_(plan), inputs_(inputs), gen_(gen), start_offset_(gen.offset()), previous_(t_recorder) {
  plan_.bound_.resize(inputs.size());
  plan_.bound_inputs_.assign(inputs.size(), false);
  plan_.moves_.assign(inputs.size(), 0);
  own_.assign(inputs.size(), {nullptr, nullptr});
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& t = inputs[k];
    if (!t.defined()) continue;  // an absent optional argument
    plan_.bound_[k] = t.data_ptr();
    own_[k] = extent(arg(t));
    const Storage& s = *t.impl().storage;
    const auto* begin = static_cast<const unsigned char*>(s.data());
    ranges_.emplace(begin, Range{begin + s.nbytes(), k});
  }
  t_recorder = this;
}

Recorder::~Recorder() { t_recorder = previous_; }

void Recorder::finish() { plan_.advance_ = gen_.offset() - start_offset_; }

kernels::Backend& Recorder::backend(Device device) {
  for (auto& [d, b] : backends_)
    if (d == device) return *b;
  backends_.emplace_back(
      device, std::make_unique<RecordingBackend>(*this, kernels::backend_for(device), device));
  return *backends_.back().second;
}

void Recorder::retain(const std::shared_ptr<Storage>& storage, bool trained, bool leaf) {
  if (trained) trained_.insert(static_cast<const unsigned char*>(storage->data()));
  if (leaf) leaves_.insert(static_cast<const unsigned char*>(storage->data()));
  if (!retained_.insert(storage.get()).second) return;
  const auto* begin = static_cast<const unsigned char*>(storage->data());
  if (input_storage(begin) != kNotInput) return;  // an input's: bound afresh at every replay
  ranges_.emplace(begin, Range{begin + storage->nbytes(), kNotInput});
  plan_.retained_.push_back(storage);
}

std::size_t Recorder::input_storage(const void* p) const {
  const auto* q = static_cast<const unsigned char*>(p);
  auto it = ranges_.upper_bound(q);
  if (it == ranges_.begin()) return kNotInput;
  --it;
  return q < it->second.end ? it->second.input : kNotInput;
}

std::optional<std::pair<std::size_t, std::ptrdiff_t>> Recorder::input_of(std::size_t first,
                                                                         const void* lo,
                                                                         const void* hi) const {
  // Inputs sharing a storage (views of one tensor) are keyed by where they lie in it
  // (StepInputs), so any input whose elements hold the bytes finds them at a replay.
  const Storage* storage = inputs_[first].impl().storage.get();
  const auto* q = static_cast<const unsigned char*>(lo);
  for (std::size_t k = first; k < inputs_.size(); ++k) {
    if (!inputs_[k].defined() || inputs_[k].impl().storage.get() != storage) continue;
    if (q < own_[k].first || static_cast<const unsigned char*>(hi) > own_[k].second) continue;
    return std::make_pair(k, q - static_cast<const unsigned char*>(inputs_[k].data_ptr()));
  }
  return std::nullopt;
}

void Recorder::patch_if_input(void** where, std::size_t nbytes, bool in_loop) {
  if (*where == nullptr) return;
  const auto* lo = static_cast<const unsigned char*>(*where);
  const std::size_t first = input_storage(lo);
  if (first == kNotInput) return;
  auto in = input_of(first, lo, lo + std::max<std::size_t>(nbytes, 1));
  if (!in) {
    // Memory of an input's storage outside every input's elements: a constant of the plan
    // (a captured tensor the input is a view of), read where it is and kept alive.
    const std::shared_ptr<Storage>& storage = inputs_[first].impl().storage;
    if (retained_.insert(storage.get()).second) plan_.retained_.push_back(storage);
    return;
  }
  plan_.patches_.push_back({where, in->first, in->second});
  if (!in_loop) return;
  cur_binds_input_ = true;
  plan_.bound_inputs_[in->first] = true;
}

void Recorder::note_scalar_source(const void* src, DType dtype, double value) {
  scalar_sources_.push_back({src, dtype, value});
}

bool Recorder::is_refreshed(const kernels::TensorArg* a) const {
  for (std::size_t r = refresh_begin_; r < plan_.refreshes_.size(); ++r)
    if (plan_.refreshes_[r].arg == a) return true;
  return false;
}

kernels::TensorArg* Recorder::keep(const kernels::TensorArg* a, std::size_t n) {
  // From blocks of kArgBlock operands: a run of n stays contiguous (an operand array).
  constexpr std::size_t kArgBlock = 64;
  if (plan_.args_.empty() || plan_.args_used_ + n > plan_.args_capacity_) {
    plan_.args_capacity_ = std::max(kArgBlock, n);
    plan_.args_.push_back(std::make_unique<kernels::TensorArg[]>(plan_.args_capacity_));
    plan_.args_used_ = 0;
  }
  kernels::TensorArg* out = plan_.args_.back().get() + plan_.args_used_;
  plan_.args_used_ += n;
  for (std::size_t k = 0; k < n; ++k) {
    out[k] = a[k];
    if (!out[k].is_scalar()) {
      patch_if_input(&out[k].data, bytes_from_first(out[k]));
      cur_reads_.push_back(out[k].data);
      plan_.operands_.push_back({&out[k], false});
      continue;
    }
    call_has_scalar_ = true;
    plan_.scalar_args_.push_back(&out[k]);
    // A scalar that operand_arg read from a one-element tensor: read it again at replay.
    // Sources are matched in the order the operands were made, by dtype and value.
    for (auto it = scalar_sources_.begin(); it != scalar_sources_.end(); ++it) {
      if (it->dtype != out[k].dtype ||
          std::bit_cast<std::uint64_t>(it->value) != std::bit_cast<std::uint64_t>(out[k].scalar)) {
        continue;
      }
      plan_.refreshes_.push_back({&out[k], it->src});
      cur_reads_.push_back(it->src);
      patch_if_input(const_cast<void**>(&plan_.refreshes_.back().src), element_size(out[k].dtype),
                     /*in_loop=*/false);
      scalar_sources_.erase(it);
      break;
    }
  }
  return out;
}

void** Recorder::keep_pointer(void* p, std::size_t nbytes) {
  plan_.pointers_.push_back(p);
  void** where = &plan_.pointers_.back();
  patch_if_input(where, nbytes);
  return where;
}

const void* Recorder::host_source(const void* src, std::size_t nbytes) {
  const auto* q = static_cast<const unsigned char*>(src);
  auto it = ranges_.upper_bound(q);
  if (it != ranges_.begin()) {
    --it;
    if (q + nbytes <= it->second.end) return src;  // an input or a kept storage
  }
  // A constant: no call writes it (an empty one gets a byte, so that it has an address).
  auto& copy = plan_.snapshots_.emplace_back(q, q + nbytes);
  if (copy.empty()) copy.push_back(0);
  ranges_.emplace(copy.data(), Range{copy.data() + copy.size(), kNotInput});
  return copy.data();
}

void Recorder::add_call(std::function<void()> run, const Plan::CallInfo& what, std::uint64_t hash,
                        kernels::StreamControl* device, kernels::Backend* backend, bool bindable) {
  const std::size_t end = plan_.refreshes_.size();
  // Into a graph only what takes the same arguments at every replay.
  const bool graphable =
      device != nullptr && (!cur_pinned_ || cur_draw_) && !cur_host_ && end == refresh_begin_;
  const bool reads_inputs = plan_.patches_.size() > patch_begin_;
  const bool binds_inputs = std::exchange(cur_binds_input_, false);
  patch_begin_ = plan_.patches_.size();
  // A call with scalar operands consumed the sources noted for it, and any left were not
  // operands of a call; sources survive calls without scalar operands (a conversion copy
  // may come between the source and its use).
  if (call_has_scalar_) scalar_sources_.clear();
  call_has_scalar_ = false;
  // Without a declaration the call writes its first operand (every launcher's `out`) alone.
  Access access;
  access.pinned = cur_pinned_;
  access.check = cur_check_;
  if (cur_declared_) {
    access.writes = std::move(cur_writes_);
    access.reads = std::move(cur_reads_);
  } else if (!cur_reads_.empty()) {
    access.writes.push_back(cur_reads_.front());
    access.reads.assign(cur_reads_.begin() + 1, cur_reads_.end());
  }
  access_.push_back(std::move(access));
  cur_reads_.clear();
  cur_writes_.clear();
  const bool draws = cur_draw_, repeatable = cur_repeatable_;
  cur_declared_ = cur_pinned_ = cur_host_ = cur_draw_ = cur_repeatable_ = cur_check_ = false;
  // Bound on the CPU alone.
  kernels::Backend* binder = device == nullptr && bindable ? backend : nullptr;
  Plan::Call& call = plan_.calls_.emplace_back();
  call.run = std::move(run);
  call.refresh_begin = refresh_begin_;
  call.refresh_end = end;
  call.graph_device = graphable ? device : nullptr;
  call.reads_inputs = reads_inputs;
  call.binds_inputs = binds_inputs;
  call.draws = draws;
  call.backend = backend;
  call.repeatable = repeatable;
  call.binder = call.rebinder = binder;
  call.scalar_begin = scalar_begin_;
  call.scalar_end = scalar_begin_ = plan_.scalar_args_.size();
  call.operand_begin = operand_begin_;
  call.operand_end = operand_begin_ = plan_.operands_.size();
  call.recorded = plan_.infos_.size();
  const std::vector<const void*>& writes = access_.back().writes;
  for (std::size_t o = call.operand_begin; o < call.operand_end; ++o) {
    Plan::Operand& op = plan_.operands_[o];
    op.written = std::find(writes.begin(), writes.end(), op.arg->data) != writes.end();
  }
  refresh_begin_ = end;
  plan_.infos_.push_back(what);
  plan_.signature_.push_back(hash);
}

bool Recorder::keep_input_grad(const TensorImpl& leaf, const Tensor& g) {
  for (std::size_t k = 0; k < inputs_.size(); ++k) {
    if (!inputs_[k].defined() || &inputs_[k].impl() != &leaf) continue;
    plan_.input_grads_.push_back({k, g});
    return true;
  }
  return false;
}

void Plan::accumulate_input_grads(const StepInputs& inputs) const {
  if (input_grads_.empty()) return;
  const NoGradGuard no_grad;
  for (const InputGrad& a : input_grads_) {
    TensorImpl& leaf = inputs[a.input].impl();
    if (leaf.grad && leaf.grad->defined()) {
      *leaf.grad = *leaf.grad + a.grad;
    } else {
      leaf.grad = pooled<Tensor>(a.grad.clone());  // the plan's buffer is the next replay's
    }
  }
}

std::vector<const void*> Plan::input_grad_buffers() const {
  std::vector<const void*> out;
  for (const InputGrad& a : input_grads_) out.push_back(a.grad.data_ptr());
  return out;
}

void Recorder::add_index_check(const kernels::TensorArg& index, std::int64_t bound,
                               std::function<void(std::int64_t)> fail) {
  static_cast<RecordingBackend&>(backend(Device::cpu()))
      .record_index_check(index, bound, std::move(fail));
}

void Recorder::declare_writes(std::initializer_list<const void*> writes, bool rmw) {
  cur_declared_ = true;
  for (const void* w : writes) {
    if (w == nullptr) continue;
    cur_writes_.push_back(w);
    if (!rmw) std::erase(cur_reads_, w);
  }
}

const unsigned char* Recorder::storage_of(const void* p) const {
  const auto* q = static_cast<const unsigned char*>(p);
  auto it = ranges_.upper_bound(q);
  if (it == ranges_.begin()) return nullptr;
  --it;
  return q < it->second.end ? it->first : nullptr;
}

std::vector<const unsigned char*> Recorder::param_storages() const {
  std::vector<const unsigned char*> out;
  const ParamStore& store = current_param_store();
  for (const std::string& name : store.names())
    if (const auto* b = storage_of(store.unconstrained(name).data_ptr())) out.push_back(b);
  return out;
}

bool Recorder::described(const Plan::Call& c, const std::vector<MemorySpan>& spans) const {
  const Plan& p = plan_;
  if (c.backend == nullptr || (access_[c.recorded].pinned && !c.draws)) return false;
  for (const void* w : access_[c.recorded].writes) {
    bool found = false;
    for (std::size_t o = c.operand_begin; o < c.operand_end && !found; ++o)
      found = p.operands_[o].written && p.operands_[o].arg->data == w;
    if (!found) return false;
  }
  for (const MemorySpan& s : spans)
    if (s.written && storage_of(s.lo) == nullptr) return false;
  return true;
}

void Recorder::hoist(std::span<const void* const> external) {
  // Memory is named by the storage (kept or input) that holds it; unknown memory changes.
  std::unordered_map<const unsigned char*, int> writers;
  std::unordered_set<const unsigned char*> changing;
  for (const auto& [start, range] : ranges_)
    if (range.input != kNotInput) changing.insert(start);
  for (const void* p : external)
    if (const auto* b = storage_of(p)) changing.insert(b);
  for (const unsigned char* start : trained_) changing.insert(start);
  for (const unsigned char* b : param_storages()) changing.insert(b);
  for (const Access& a : access_) {
    for (const void* w : a.writes)
      if (const auto* b = storage_of(w)) ++writers[b];
  }
  std::unordered_set<const unsigned char*> made;  // written by hoisted calls
  std::vector<bool> hoisted(access_.size(), false);
  for (std::size_t k = 0; k < access_.size(); ++k) {
    const Access& a = access_[k];
    // A check that reads only constants passes at every replay as it passed now.
    bool constant = !a.pinned && (!a.writes.empty() || a.check);
    for (const void* r : a.reads) {
      const auto* b = storage_of(r);
      constant =
          constant && b != nullptr && !changing.count(b) && (writers[b] == 0 || made.count(b) != 0);
    }
    for (const void* w : a.writes) {
      const auto* b = storage_of(w);
      constant = constant && b != nullptr && !changing.count(b) && writers[b] == 1;
    }
    for (const void* w : a.writes) {
      if (const auto* b = storage_of(w)) (constant ? made : changing).insert(b);
    }
    hoisted[k] = constant;
  }
  // A scalar operand read from memory that nothing changes between replays (a constant of
  // the step, or written by hoisted calls alone) keeps its recorded value: on the CPU the call
  // takes it as a constant (a log-density's fixed scale into the loop's body). Its refresh is
  // left in place, dead (patches point into the refreshes).
  auto constant_source = [&](const Plan::Refresh& f) {
    const auto* b = storage_of(f.src);
    return b != nullptr && !changing.count(b);
  };
  std::vector<Plan::Call> kept;
  for (std::size_t k = 0; k < plan_.calls_.size(); ++k) {
    if (hoisted[k]) continue;
    Plan::Call& c = plan_.calls_[k];
    if (c.rebinder != nullptr) {
      for (std::size_t r = c.refresh_begin; r < c.refresh_end; ++r)
        if (constant_source(plan_.refreshes_[r])) plan_.refreshes_[r].arg = nullptr;
    }
    kept.push_back(std::move(c));
  }
  plan_.calls_ = std::move(kept);
  plan_.hoisted_ = std::move(hoisted);
  merge_repeats();
}

namespace {
// Whether two operands are the same memory seen the same way.
bool same_geometry(const kernels::TensorArg& a, const kernels::TensorArg& b) {
  if (a.dtype != b.dtype || a.ndim != b.ndim) return false;
  for (int d = 0; d < a.ndim; ++d)
    if (a.sizes[d] != b.sizes[d] || a.strides[d] != b.strides[d]) return false;
  return true;
}
bool same_operand(const kernels::TensorArg& a, const kernels::TensorArg& b) {
  return a.data == b.data && same_geometry(a, b);
}
}  // namespace

void Recorder::merge_repeats() {
  Plan& p = plan_;
  p.copies_.assign(p.infos_.size(), Plan::kNoCopy);
  if (!p.merge_on_) return;
  std::vector<Plan::Call>& calls = p.calls_;
  // The one operand call c writes, where that is all it writes (its declared writes are that
  // operand's, which it does not read too); null otherwise.
  auto written = [&](const Plan::Call& c) -> const kernels::TensorArg* {
    const kernels::TensorArg* out = nullptr;
    for (std::size_t o = c.operand_begin; o < c.operand_end; ++o) {
      if (!p.operands_[o].written) continue;
      if (out != nullptr) return nullptr;
      out = p.operands_[o].arg;
    }
    const Access& a = access_[c.recorded];
    if (out == nullptr || a.writes.size() != 1 || a.writes[0] != out->data) return nullptr;
    return std::find(a.reads.begin(), a.reads.end(), out->data) == a.reads.end() ? out : nullptr;
  };
  // A call another may copy: repeatable, on constant scalars and memory the plan holds (no
  // input, which moves), writing one operand that none of its reads overlaps.
  auto candidate = [&](const Plan::Call& c, const std::vector<MemorySpan>& spans) {
    if (!c.repeatable || c.reads_inputs || c.draws || written(c) == nullptr) return false;
    for (std::size_t r = c.refresh_begin; r < c.refresh_end; ++r)
      if (p.refreshes_[r].arg != nullptr) return false;
    for (const MemorySpan& s : spans) {
      if (storage_of(s.lo) == nullptr) return false;
      for (const MemorySpan& t : spans)
        if (s.written && !t.written && overlap(s, t)) return false;
    }
    return true;
  };
  // Calls equal to one another: the same kernel, options and scalars, the same operands read
  // and the same geometry of the one they write.
  auto equal = [&](const Plan::Call& a, const Plan::Call& b) {
    const Plan::CallInfo &x = p.infos_[a.recorded], &y = p.infos_[b.recorded];
    if (p.signature_[a.recorded] != p.signature_[b.recorded] || std::strcmp(x.kind, y.kind) != 0 ||
        (x.op == nullptr) != (y.op == nullptr) ||
        (x.op != nullptr && std::strcmp(x.op, y.op) != 0) || a.backend != b.backend ||
        a.graph_device != b.graph_device ||
        a.operand_end - a.operand_begin != b.operand_end - b.operand_begin ||
        a.scalar_end - a.scalar_begin != b.scalar_end - b.scalar_begin) {
      return false;
    }
    for (std::size_t k = 0; k < a.operand_end - a.operand_begin; ++k) {
      const Plan::Operand &u = p.operands_[a.operand_begin + k],
                          &v = p.operands_[b.operand_begin + k];
      if (u.written != v.written ||
          !(u.written ? same_geometry(*u.arg, *v.arg) : same_operand(*u.arg, *v.arg))) {
        return false;
      }
    }
    for (std::size_t k = 0; k < a.scalar_end - a.scalar_begin; ++k) {
      const kernels::TensorArg &u = *p.scalar_args_[a.scalar_begin + k],
                               &v = *p.scalar_args_[b.scalar_begin + k];
      if (u.dtype != v.dtype || bits(u.scalar) != bits(v.scalar)) return false;
    }
    return true;
  };
  auto key = [&](const Plan::Call& c) {
    std::uint64_t h = p.signature_[c.recorded];
    for (std::size_t o = c.operand_begin; o < c.operand_end; ++o)
      if (!p.operands_[o].written)
        h = mix(h, reinterpret_cast<std::uintptr_t>(p.operands_[o].arg->data));
    return h;
  };
  // The calls that may still be copied (their reads and result unchanged since they ran), by
  // key, and by the buffers they touch, which a later write looks through.
  std::vector<bool> live(calls.size(), false);
  std::vector<std::vector<MemorySpan>> access(calls.size());
  std::unordered_map<std::uint64_t, std::vector<std::size_t>> by_key;
  std::unordered_map<const unsigned char*, std::vector<std::size_t>> by_buffer;
  for (std::size_t k = 0; k < calls.size(); ++k) {
    Plan::Call& c = calls[k];
    access[k] = p.spans(c);
    const bool may_copy = candidate(c, access[k]);
    std::uint64_t h = 0;
    bool merged = false;
    if (may_copy) {
      h = key(c);
      auto it = by_key.find(h);
      if (it != by_key.end()) {
        std::vector<std::size_t>& same = it->second;
        std::erase_if(same, [&](std::size_t j) { return !live[j]; });
        for (auto j = same.rbegin(); j != same.rend() && !merged; ++j) {
          const Plan::Call& a = calls[*j];
          if (!equal(a, c)) continue;
          const kernels::TensorArg* from = written(a);
          kernels::TensorArg* to = const_cast<kernels::TensorArg*>(written(c));
          const auto [lo, hi] = extent(*to);
          bool clear = true;
          for (const MemorySpan& s : access[*j]) clear = clear && !overlap(s, {lo, hi, true});
          if (!clear) continue;
          // c becomes a copy of a's result into its own: its operands the two results.
          p.operands_.push_back({to, true});
          p.operands_.push_back({from, false});
          c.operand_begin = p.operands_.size() - 2;
          c.operand_end = p.operands_.size();
          c.scalar_begin = c.scalar_end;
          c.refresh_begin = c.refresh_end;
          c.run = [be = c.backend, to, from] { be->copy(*to, *from); };
          // Bound on the CPU (where a call that may be copied is in no graph).
          c.binder = c.rebinder = c.graph_device == nullptr ? c.backend : nullptr;
          p.copies_[c.recorded] = a.recorded;
          ++p.merged_;
          access[k] = p.spans(c);
          merged = true;
        }
      }
    }
    // What c writes ends the calls whose reads or result it overlaps.
    if (!described(c, access[k])) {
      std::fill(live.begin(), live.end(), false);
      by_key.clear();
      by_buffer.clear();
    } else {
      for (const MemorySpan& w : access[k]) {
        if (!w.written) continue;
        auto it = by_buffer.find(storage_of(w.lo));
        if (it == by_buffer.end()) continue;
        for (const std::size_t j : it->second) {
          if (!live[j]) continue;
          for (const MemorySpan& s : access[j]) live[j] = live[j] && !overlap(s, w);
        }
        std::erase_if(it->second, [&](std::size_t j) { return !live[j]; });
      }
    }
    if (may_copy && !merged) {
      live[k] = true;
      by_key[h].push_back(k);
      for (const MemorySpan& s : access[k]) {
        std::vector<std::size_t>& list = by_buffer[storage_of(s.lo)];
        if (list.empty() || list.back() != k) list.push_back(k);
      }
    }
  }
}

void Recorder::share_buffers(std::span<const void* const> external,
                             std::span<const void* const> live_out) {
  Plan& p = plan_;
  if (!p.share_on_) return;
  const std::vector<Plan::Call>& calls = p.calls_;
  // Buffers that keep their memory: what is read or written outside the replay's calls, and
  // memory reached through a pointer the plan does not hold as an operand.
  std::unordered_set<const unsigned char*> fixed;
  auto fix = [&](const void* q) {
    if (const auto* b = storage_of(q)) fixed.insert(b);
  };
  for (const void* q : external) fix(q);
  for (const void* q : live_out) fix(q);
  for (const unsigned char* t : leaves_) fixed.insert(t);
  for (const unsigned char* b : param_storages()) fixed.insert(b);
  for (const void* q : p.pointers_) fix(q);
  for (const Plan::Refresh& f : p.refreshes_) fix(f.src);
  // A call whose writes are not all in its operands (a host call, a check, an update) keeps
  // what it declares reading and writing, and its operands, where they are.
  for (const Plan::Call& c : calls) {
    if (described(c, p.spans(c))) continue;
    const Access& a = access_[c.recorded];
    for (const void* q : a.reads) fix(q);
    for (const void* q : a.writes) fix(q);
    for (std::size_t o = c.operand_begin; o < c.operand_end; ++o) fix(p.operands_[o].arg->data);
  }
  // Each buffer's life over the replayed calls: the first call that touches it and the last,
  // and whether that first call writes all of it and reads none of it (dense operands only:
  // a strided one leaves gaps).
  struct Life {
    std::size_t first, last;
    bool whole;
  };
  std::unordered_map<const unsigned char*, Life> lives;
  std::vector<std::pair<const unsigned char*, const unsigned char*>> wrote;
  std::vector<const unsigned char*> read, touched;
  for (std::size_t k = 0; k < calls.size(); ++k) {
    const Plan::Call& c = calls[k];
    wrote.clear();
    read.clear();
    touched.clear();
    for (std::size_t o = c.operand_begin; o < c.operand_end; ++o) {
      const Plan::Operand& op = p.operands_[o];
      const auto [lo, hi] = extent(*op.arg);
      const auto* b = lo != nullptr ? storage_of(lo) : nullptr;
      if (b == nullptr) continue;
      touched.push_back(b);
      const auto dense = static_cast<std::ptrdiff_t>(op.arg->numel()) *
                         static_cast<std::ptrdiff_t>(element_size(op.arg->dtype));
      if (op.written && hi - lo == dense) {
        wrote.emplace_back(lo, hi);
      } else {
        read.push_back(b);  // read, or written with gaps: not a whole first write
      }
    }
    std::sort(wrote.begin(), wrote.end());
    for (const unsigned char* b : touched) {
      auto [it, fresh] = lives.try_emplace(b, Life{k, k, false});
      it->second.last = k;
      if (!fresh || std::find(read.begin(), read.end(), b) != read.end()) continue;
      // Written whole: the call's dense writes into b cover it from its first byte to its end.
      const unsigned char* covered = b;
      const unsigned char* end = ranges_.at(b).end;
      for (const auto& [lo, hi] : wrote)
        if (lo <= covered && hi > covered && storage_of(lo) == b) covered = hi;
      it->second.whole = covered >= end;
    }
  }
  // The plan's CPU buffers that may share: in first-use order.
  struct Candidate {
    const unsigned char* at;
    std::size_t nbytes, first, last;
  };
  std::vector<Candidate> candidates;
  for (const std::shared_ptr<Storage>& st : p.retained_) {
    const auto* b = static_cast<const unsigned char*>(st->data());
    const auto it = lives.find(b);
    // Held by the plan alone: a tensor kept outside it (a program's value that the caller
    // holds on to, a cache) sees the buffer's own values after every replay.
    if (!st->device().is_cpu() || st->nbytes() < kShareMinBytes || st.use_count() != 1 ||
        fixed.count(b) != 0 || it == lives.end() || !it->second.whole) {
      continue;
    }
    candidates.push_back({b, st->nbytes(), it->second.first, it->second.last});
  }
  std::sort(candidates.begin(), candidates.end(),
            [](const Candidate& x, const Candidate& y) { return x.first < y.first; });

  // Greedy: each takes the memory of a buffer of its size whose last use came before its
  // first (a call never reads and writes two buffers that share), else keeps its own.
  struct Held {
    const unsigned char* at;
    std::size_t nbytes, last;
  };
  std::vector<Held> busy, idle;
  std::unordered_map<const unsigned char*, const unsigned char*> moved;  // buffer -> memory
  for (const Candidate& c : candidates) {
    for (auto it = busy.begin(); it != busy.end();) {
      if (it->last < c.first) {
        idle.push_back(*it);
        it = busy.erase(it);
      } else {
        ++it;
      }
    }
    auto same =
        std::find_if(idle.begin(), idle.end(), [&](const Held& h) { return h.nbytes == c.nbytes; });
    if (same == idle.end()) {
      busy.push_back({c.at, c.nbytes, c.last});
      continue;
    }
    moved[c.at] = same->at;
    busy.push_back({same->at, c.nbytes, c.last});
    idle.erase(same);
  }
  // The memory such buffers use (the candidates that keep their own, which the others move
  // into), which the plan keeps: what a fused run may keep to a tile where one of them lives
  // within the run (Plan::tile_locals).
  for (const Candidate& c : candidates)
    if (moved.count(c.at) == 0) p.scratch_.emplace_back(c.at, c.at + c.nbytes);
  std::sort(p.scratch_.begin(), p.scratch_.end());
  if (moved.empty()) return;
  // Every operand the plan keeps into a moved buffer points into its new memory (an operand
  // may be listed more than once: the copies merge_repeats made read kept operands).
  std::unordered_set<kernels::TensorArg*> done;
  for (const Plan::Operand& op : p.operands_) {
    auto* arg = const_cast<kernels::TensorArg*>(op.arg);
    if (!done.insert(arg).second) continue;
    const auto* b = storage_of(arg->data);
    const auto it = b != nullptr ? moved.find(b) : moved.end();
    if (it == moved.end()) continue;
    arg->data =
        const_cast<unsigned char*>(it->second) + (static_cast<unsigned char*>(arg->data) - b);
  }
  std::erase_if(p.retained_, [&](const std::shared_ptr<Storage>& st) {
    const auto it = moved.find(static_cast<const unsigned char*>(st->data()));
    if (it == moved.end()) return false;
    ++p.shared_;
    p.shared_bytes_ += st->nbytes();
    return true;
  });
}

void Recorder::add_host_call(std::function<void()> call, const char* what, std::uint64_t hash,
                             const void* writes) {
  declare_writes({writes});
  declare_pinned();
  add_call(std::move(call), Plan::CallInfo{what}, mix(hash, 0x686f7374));
}

PauseRecording::PauseRecording() : saved_(t_recorder) { t_recorder = nullptr; }
PauseRecording::~PauseRecording() { t_recorder = saved_; }

}  // namespace ember::detail
