// Compiled programs (docs/compile.md): a step of SVI (SVI::compile) or any function of
// tensors (ember::compile) recorded once as the kernel calls it makes, then replayed without
// running the program: no trace, tape, tensor or shape logic per call.
//
//   auto encode = compile([&](const Tensor& x) { return encoder(x).loc; });
//   for (const data::Batch& batch : loader) codes.push_back(encode(batch[0]));
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ember/error.hpp"
#include "ember/tensor.hpp"

namespace ember {

// A compiled program that cannot be recorded or replayed as it is: it read a value on the
// host while recording, drew from a generator other than the thread's, or changed its
// structure under verify_every. The message says which and what to do.
class CompileError : public ValueError {
 public:
  using ValueError::ValueError;
};

struct CompileOptions {
  // Every this many calls (0: never) the program runs eagerly, recorded afresh, and its
  // structure (the sequence of kernel calls, their options, operand geometry and constants)
  // is compared with the plan's: a difference throws CompileError naming the first call that
  // differs.
  std::int64_t verify_every = 0;
  // Plans kept, one per input signature (the shapes, strides, dtypes and devices of the
  // tensors passed, the values of numbers passed); the least recently used goes.
  std::size_t max_plans = 8;
  // On a CUDA device, replay the runs of kernel calls whose arguments never change as CUDA
  // Graphs (one launch each instead of one per kernel). Off: every kernel is launched alone.
  bool cuda_graphs = true;
  // On the CPU, run groups of calls over the same elements (at least 16384): elementwise
  // calls, up to four full reductions and narrow matrix-vector products (a regression's X w
  // and X^T r), tile by tile: every call on a tile of elements before the next tile, so that
  // what one call writes or reads is read again from the cache. Independent calls recorded
  // between them move out of the way; what lives within one such run alone (written and read
  // by it and nothing else) is kept to a tile per thread and never goes out to memory (with
  // share_buffers, whose analysis finds it). The same values bit for bit (docs/compile.md,
  // "Fusion"). Off: every call runs over all its elements alone, in recorded order.
  bool fuse = true;
  // A call that repeats an earlier one of the same program (the same kernel, options and
  // operands) on memory nothing wrote in between copies the earlier call's result instead of
  // computing it again: an enumerated markov chain normalizes its one transition table once,
  // not at every step. The same values bit for bit (docs/compile.md, "Repeated calls"). Off:
  // every call computes its result.
  bool merge_repeats = true;
  // On the CPU, buffers that live within one call (a forward's intermediates, a backward's
  // partials: each written whole before anything reads it, and read by nothing after its
  // last reader) share memory with others of the same size whose lives end before theirs
  // begin: the plan keeps less, and a fused run writes fewer distinct buffers. The same
  // values bit for bit (docs/compile.md, "Shared buffers"). Off: every buffer of the
  // recorded step is the plan's own.
  bool share_buffers = true;
  // Copy a tensor input whose memory keeps moving between calls (a loader's batches) into a
  // buffer of the plan's own, from its second move on, so that the recorded calls keep
  // reading the same memory: on a CUDA device the graphs that read it are then not captured
  // and updated again for every batch, on the CPU its calls are not bound again. Costs one
  // device copy of each such input per call. Only for contiguous inputs of plans in which no
  // call writes an input. Off: the calls follow the data where it is (docs/compile.md, "Data
  // that moves").
  bool stage_inputs = false;
};

// What compilation has done so far.
struct CompileStats {
  std::int64_t recordings = 0;     // calls recorded (each also ran eagerly)
  std::int64_t replays = 0;        // calls replayed from a plan
  std::int64_t verifications = 0;  // verify_every calls
  std::int64_t eager_steps = 0;    // calls that ran eagerly: the first, the first after
                                   // the params changed, and fallbacks
  std::int64_t discarded = 0;      // recordings dropped (parameters made while recording)
  // ember::compile: calls made inside another compiled program running on the same thread (a
  // compiled function's call, this function's own included, or an SVI step), which ran the
  // function as it is, its kernel calls part of that program's (docs/compile.md, "Nesting").
  std::int64_t inline_calls = 0;
  std::size_t plans = 0;              // plans cached now
  std::size_t calls_per_replay = 0;   // kernel calls a replay of the last plan used makes
  std::size_t retained_bytes = 0;     // buffers kept alive by the cached plans
  double last_recording_seconds = 0;  // the call that recorded the last plan
  // The last replay on a CUDA device: graphs launched, and the recorded calls inside them
  // (the rest, calls_per_replay - graph_calls_per_replay, were launched one by one).
  std::size_t graphs_per_replay = 0;
  std::size_t graph_calls_per_replay = 0;
  // The last replay on the CPU: recorded calls run bound (their loop, geometry and operands
  // set up once, at the first replay; Backend::run_bound), the rest through the launcher.
  std::size_t bound_calls_per_replay = 0;
  // Of those, the calls that ran fused with their neighbours (CompileOptions::fuse).
  std::size_t fused_calls_per_replay = 0;
  // Calls of the last plan used that copy the result of an earlier equal call instead of
  // computing it (CompileOptions::merge_repeats).
  std::size_t merged_calls_per_replay = 0;
  // Buffers of the last plan used that live in the memory of another
  // (CompileOptions::share_buffers), and the bytes that spares.
  std::size_t shared_buffers = 0;
  std::size_t shared_bytes = 0;
  // Buffers of the last plan used that its fused runs keep to one tile per thread, and their
  // bytes (CompileOptions::fuse with share_buffers): written and read within one run alone,
  // they stay in cache instead of going out to memory and back (docs/compile.md, "Fusion").
  std::size_t tile_buffers = 0;
  std::size_t tile_bytes = 0;
  // The last plan used, over all its replays on the CPU: replays whose data had moved back to
  // memory it was bound in before (a loader's batches, buffers used in turn), which found
  // their calls bound and their runs made there (the plan keeps those of the last four
  // places; data that moves elsewhere binds its calls again).
  std::size_t placements_reused = 0;
  // The last plan used: inputs it copies into buffers of its own (CompileOptions::stage_inputs).
  std::size_t staged_inputs = 0;
  // The last plan used, over all its replays: graphs instantiated, and graphs captured again
  // and updated in place (its inputs moved, or a new seed) without a new instantiation.
  std::size_t graph_instantiations = 0;
  std::size_t graph_updates = 0;
  // Why CUDA Graph capture was given up for a plan (empty when it never was); its calls are
  // then launched one by one, with the same results.
  std::string capture_error;
};

namespace detail {

class Plan;

// A non-owning reference to a callable taking nothing: what a compiled call hands its core
// without allocating (a std::function made from it fits in its small buffer).
template <typename R>
class FunctionRefOf {
 public:
  template <typename F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, FunctionRefOf>)
      FunctionRefOf(F&& f)  // NOLINT: converts from any callable, as std::function does
      : object_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* o) -> R { return (*static_cast<std::remove_reference_t<F>*>(o))(); }) {}
  R operator()() const { return call_(object_); }

 private:
  void* object_;
  R (*call_)(void*);
};
using FunctionRef = FunctionRefOf<void>;

template <typename T>
struct IsVector : std::false_type {};
template <typename T, typename A>
struct IsVector<std::vector<T, A>> : std::true_type {};
template <typename T>
struct IsReferenceWrapper : std::false_type {};
template <typename T>
struct IsReferenceWrapper<std::reference_wrapper<T>> : std::true_type {};
// A batch of a DataLoader (data::Batch): its tensors and its indices.
template <typename T>
concept BatchLike = requires(const T& b) {
  { b.tensors } -> std::convertible_to<const std::vector<Tensor>&>;
  { b.indices } -> std::convertible_to<const Tensor&>;
};

// The tensors and numbers a call was made with: a compiled program's input slots, and the key
// of its plan (the tensors' geometry, dtype and device; the numbers' and strings' values).
// Tensors are seen as arguments, in a std::vector, or in a DataLoader's batch; an argument of
// another type (a struct holding tensors, a callable) is opaque: a compiled call refuses it,
// since tensors inside it would be read as constants.
class StepInputs {
 public:
  template <typename T>
  void add(const T& value) {
    using U = std::remove_cvref_t<T>;
    if constexpr (std::is_same_v<U, Tensor>) {
      add_tensor(value);
    } else if constexpr (std::is_floating_point_v<U>) {
      mix(std::bit_cast<std::uint64_t>(static_cast<double>(value)));
    } else if constexpr (std::is_integral_v<U> || std::is_enum_v<U>) {
      mix(static_cast<std::uint64_t>(value));
    } else if constexpr (std::is_convertible_v<const U&, std::string_view>) {
      mix(std::hash<std::string_view>{}(std::string_view(value)));
    } else if constexpr (std::is_same_v<U, std::nullptr_t>) {
      mix(0);
    } else if constexpr (IsReferenceWrapper<U>::value) {
      add(value.get());
    } else if constexpr (IsVector<U>::value) {
      mix(value.size());
      for (const auto& item : value) add(item);
    } else if constexpr (BatchLike<U>) {
      add(value.tensors);
      add(value.indices);
    } else if (opaque_ < 0) {
      opaque_ = arguments_;
    }
  }
  template <typename... Args>
  static StepInputs of(const Args&... args) {
    StepInputs inputs;
    ((inputs.add(args), ++inputs.arguments_), ...);
    return inputs;
  }
  std::size_t size() const { return count_; }
  const Tensor& operator[](std::size_t k) const {
    return k < kInline ? inline_[k] : more_[k - kInline];
  }
  std::uint64_t key() const { return key_; }
  // Throws CompileError naming the first argument of a type whose tensors cannot be seen.
  void check_visible(const char* where) const;

 private:
  static constexpr std::size_t kInline = 6;
  void add_tensor(const Tensor& t);
  void add_defined(const Tensor& t);
  void mix(std::uint64_t v) { key_ = (key_ ^ v) * 0x100000001b3ULL; }

  std::array<Tensor, kInline> inline_;
  std::vector<Tensor> more_;
  std::size_t count_ = 0;
  std::uint64_t key_ = 0xcbf29ce484222325ULL;
  int arguments_ = 0;  // the argument being added
  int opaque_ = -1;    // the first opaque argument
};

// The part of CompiledFunction that does not depend on the function's type.
class FunctionCore {
 public:
  explicit FunctionCore(const CompileOptions& opts);
  ~FunctionCore();
  FunctionCore(const FunctionCore&) = delete;
  FunctionCore& operator=(const FunctionCore&) = delete;

  // The outputs of fn for `inputs`: run eagerly, recorded, or replayed; a replay's outputs
  // are fresh copies of the plan's buffers.
  std::vector<Tensor> call(FunctionRefOf<std::vector<Tensor>> fn, const StepInputs& inputs);
  CompileStats stats() const;
  std::string describe_plans() const;

 private:
  struct Cached;
  mutable std::mutex
      mutex_;  // calls from several threads take turns: a replay writes the plan's buffers
  CompileOptions options_;
  std::vector<Cached> plans_;
  CompileStats stats_;
  std::atomic<std::int64_t> inline_calls_{0};  // taken without the lock (CompileStats)
  std::int64_t calls_ = 0, uses_ = 0;
};

}  // namespace detail

// A function of tensors compiled for repeated calls: the first call with a new input
// signature runs it eagerly, the second records its kernel calls, and later ones replay them
// (the contract of docs/compile.md: the function's structure may depend on the shapes of the
// tensors and the values of the numbers it is passed, not on tensor values; tensors it
// captures otherwise are constants). It runs without autograd (a NoGradGuard), but for a call
// inside another compiled program (a compiled function, or an SVI step's model or guide), which
// runs as part of that program, with its gradients (docs/compile.md, "Nesting"): for inference,
// an encoder's forward pass, a posterior predictive, a loss to monitor. F returns a Tensor or
// a std::vector<Tensor>; each call returns tensors of its own.
template <typename F>
class CompiledFunction {
 public:
  explicit CompiledFunction(F fn, const CompileOptions& opts = {})
      : fn_(std::move(fn)), core_(std::make_unique<detail::FunctionCore>(opts)) {}

  template <typename... Args>
  auto operator()(const Args&... args) {
    using R = std::invoke_result_t<F&, const Args&...>;
    static_assert(std::is_same_v<R, Tensor> || std::is_same_v<R, std::vector<Tensor>>,
                  "ember::compile: the function must return a Tensor or a std::vector<Tensor>");
    auto run = [&]() -> std::vector<Tensor> {
      if constexpr (std::is_same_v<R, Tensor>) {
        return {fn_(args...)};
      } else {
        return fn_(args...);
      }
    };
    std::vector<Tensor> out = core_->call(run, detail::StepInputs::of(args...));
    if constexpr (std::is_same_v<R, Tensor>) {
      return out[0];
    } else {
      return out;
    }
  }

  CompileStats stats() const { return core_->stats(); }
  // The cached plans, one line per recorded call.
  std::string describe_plans() const { return core_->describe_plans(); }

 private:
  F fn_;
  std::unique_ptr<detail::FunctionCore> core_;
};

template <typename F>
CompiledFunction<F> compile(F fn, const CompileOptions& opts = {}) {
  return CompiledFunction<F>(std::move(fn), opts);
}

}  // namespace ember
