// Compiled steps: a step's backend calls recorded once, while the step runs eagerly, as a
// plan that replays them without the model, the guide, the tape or any tensor: a flat loop
// over kernel calls on buffers that the plan keeps alive. See docs/compile.md.
//
// What varies between replays is bound at replay time: the step's tensor inputs (the data
// passed to step(), rebased where their storage moved), the random-number offset (each draw
// at its offset relative to the generator's position when the step began: read by the kernels
// from memory the plan sets before each replay, so that draws go into CUDA Graphs), one-element
// operands that the CPU loops take by value (read again from their memory just before the
// call that uses them), subsample indices (drawn again on the host) and the optimizer's
// scalars (its step count and learning rate).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "ember/compile.hpp"
#include "ember/random.hpp"
#include "ember/tensor.hpp"
#include "engine/optim/optim_impl.hpp"
#include "kernels/backend.hpp"

namespace ember::detail {

class RecordingBackend;

// The bytes a recorded call's operand spans, [lo, hi), and whether the call writes them.
struct MemorySpan {
  const unsigned char *lo, *hi;
  bool written;
};

class Plan {
 public:
  // CompileOptions' cuda_graphs (on a CUDA device, replay runs of calls as CUDA Graphs), fuse
  // (on the CPU, run groups of calls over the same elements tile by tile) and stage_inputs
  // (copy inputs that keep moving into buffers of the plan's own).
  explicit Plan(const CompileOptions& options);
  ~Plan();
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  // ---- replay ----
  // Runs every recorded call with `inputs` bound and the draws placed after `gen`'s current
  // position, which then advances as the recorded step advanced it. Returns false when a
  // recorded finite check failed (the caller decides what that means; nothing was updated).
  bool replay(const StepInputs& inputs, Generator& gen);
  // The recorded loss, read from its buffer (after a replay).
  const Tensor& loss() const { return loss_; }
  // The optimizer update recorded with the step; null for a forward-only plan.
  PreparedUpdate* update() { return update_.get(); }

  // ---- CUDA Graphs ----
  // On a CUDA device (and with graphs on), each run of two or more consecutive calls that take
  // the same arguments at every replay is captured as a CUDA Graph at its first replay and
  // relaunched after (docs/compile.md, "The GPU").
  // What the last replay launched: graphs, and recorded calls run inside them.
  std::size_t graphs_launched() const { return graphs_launched_; }
  std::size_t graph_calls() const { return graph_calls_; }
  // Calls of the last replay that ran bound (on the CPU), and those of them that ran fused.
  std::size_t bound_calls() const { return bound_calls_; }
  std::size_t fused_calls() const;
  // Calls that copy the result of an earlier equal call (CompileOptions::merge_repeats).
  std::size_t merged_calls() const { return merged_; }
  // Buffers living in another's memory (CompileOptions::share_buffers), and the bytes spared.
  std::size_t shared_buffers() const { return shared_; }
  std::size_t shared_bytes() const { return shared_bytes_; }
  // Buffers that fused runs keep to a tile per thread, and their bytes (Plan::tile_locals).
  std::size_t tile_buffers() const { return tile_buffers_; }
  std::size_t tile_bytes() const { return tile_bytes_; }
  // Over all replays: graphs instantiated, and graphs captured again and updated in place.
  std::size_t graph_instantiations() const { return instantiations_; }
  std::size_t graph_updates() const { return updates_; }
  // Replays whose inputs had moved back to where they were bound before (Placement).
  std::size_t placements_reused() const { return placements_reused_; }
  // Inputs copied into the plan's own buffers at every replay (CompileOptions::stage_inputs).
  std::size_t staged_inputs() const;
  // Why capture was given up for this plan (empty while it works or was never tried).
  const std::string& capture_error() const { return capture_error_; }

  // ---- what a recording leaves ----
  void set_loss(Tensor loss) { loss_ = std::move(loss); }
  // A compiled function's results: buffers a replay writes.
  void set_outputs(std::vector<Tensor> outputs) { outputs_ = std::move(outputs); }
  const std::vector<Tensor>& outputs() const { return outputs_; }
  void set_update(std::unique_ptr<PreparedUpdate> update) { update_ = std::move(update); }
  // Adds to each step input that requires grad the gradients the recorded backward pass gave
  // it (Recorder::keep_input_grad), from the buffers the last replay (or the recording) wrote,
  // in the order the pass added them: the .grad an eager step leaves, bit for bit.
  void accumulate_input_grads(const StepInputs& inputs) const;
  // The buffers it reads (memory read after a replay: Recorder::share_buffers' live_out).
  std::vector<const void*> input_grad_buffers() const;
  // Recorded calls (infos) and the calls a replay runs (fewer when some were hoisted).
  std::size_t size() const { return infos_.size(); }
  std::size_t replayed_calls() const { return calls_.size(); }
  bool hoisted(std::size_t k) const { return !hoisted_.empty() && hoisted_[k]; }
  // What recorded call k is: its kind, op and the geometry of its main operands.
  std::string describe_call(std::size_t k) const;
  // The plan for a listing: "<title>, N calls recorded, M replayed, key K:" and one line per
  // recorded call, hoisted ones marked "(hoisted)", those that ran bound at the last replay
  // (on the CPU) "(bound)", those of them that ran in the N-th fused run "(bound, fused N)",
  // and those that copy the result of recorded call M instead of computing it "(copies M)".
  std::string listing(const std::string& title, std::uint64_t key) const;
  // One structure hash per recorded call (kind, options, operand geometry and constants).
  const std::vector<std::uint64_t>& signature() const { return signature_; }

  // What a recorded call is, kept for messages (formatted only when one is needed).
  struct CallInfo {
    const char* kind;
    const char* op = nullptr;
    const kernels::TensorArg* first = nullptr;  // operands the plan keeps
    const kernels::TensorArg* second = nullptr;
  };
  // Where this plan's structure first differs from `other`'s; nullopt when they match.
  std::optional<std::string> difference(const Plan& other) const;
  // Bytes of the buffers the plan keeps alive.
  std::size_t retained_bytes() const;

 private:
  friend class Recorder;
  friend class RecordingBackend;

  // An operand value a call takes by value, read from memory just before the call.
  struct Refresh {
    kernels::TensorArg* arg;
    const void* src;
  };
  // A refreshed value put into the slot a bound loop reads it from.
  struct Reread {
    const Refresh* from;
    void* slot;
    void (*set)(void*, double);
  };
  // An operand of a call in memory, and whether the call writes it.
  struct Operand {
    const kernels::TensorArg* arg;
    bool written;
  };
  struct Call {
    std::function<void()> run;
    std::size_t refresh_begin, refresh_end;
    // Non-null when the call may be captured in a graph on this device: a kernel launch whose
    // arguments are the same at every replay (no draw, no scalar read again, no host work);
    // `reads_inputs`: unless the step's inputs moved.
    kernels::StreamControl* graph_device = nullptr;
    bool reads_inputs = false;
    // Its launcher reads pointers into the step's inputs (its operands, kept pointers), which a
    // bound loop holds; a call that reads an input only as a scalar read again before it runs
    // (Refresh) does not.
    bool binds_inputs = false;
    // A draw: its seed is captured with it (the offset is read from the device's draw base).
    bool draws = false;
    // The launcher the call runs on (null: work of the host's).
    kernels::Backend* backend = nullptr;
    // Its result is a function of its operands and of the options in its signature alone,
    // written to its one written operand (Recorder::declare_repeatable).
    bool repeatable = false;
    // The launcher that may bind the call (Backend::run_bound), and the call bound by it at
    // the first replay (bound again after its inputs moved); null/empty: run as recorded.
    kernels::Backend* binder = nullptr;
    kernels::Backend* rebinder = nullptr;
    std::function<void()> bound;
    std::vector<Reread> rereads;  // run before `bound`
    kernels::RangedLoop ranged;   // the bound loop in parts, where it has them
    // The call's scalar operands (scalar_args_) and operands in memory (operands_), and
    // replays at which binding was put off.
    std::size_t scalar_begin = 0, scalar_end = 0, operand_begin = 0, operand_end = 0;
    int bind_tries = 0;
    // Its index among the recorded calls (calls may run in another order: gather_fusable).
    std::size_t recorded = 0;
  };
  // Calls [begin, end), bound, run together in parts (Backend::run_fused); `ran`: they did
  // at the last replay (else one by one).
  struct Fused {
    std::size_t begin, end;
    std::vector<const kernels::RangedLoop*> loops;
    // Per call, the operands (bits of its RangedLoop::at) local to the run (tile_locals).
    std::vector<unsigned> locals;
    // Room for its reductions' accumulators in every slice (kernels::kMaxReduceSlices each).
    std::vector<kernels::FuseCarry> carries;
    bool ran = false;
  };
  // Calls [begin, end) run as one graph on `device`; null until captured. A segment that
  // reads the step's inputs is captured again when they move (`stale`), and one that draws
  // when the seed changes, and its graph updated in place; a graph that cannot be updated
  // is instantiated anew, up to kMaxInstantiations times in all.
  struct Segment {
    std::size_t begin, end;
    kernels::StreamControl* device;
    bool reads_inputs, draws;
    void* graph = nullptr;
    bool stale = false;
    int instantiations = 0;
    std::uint64_t seed = 0;  // the generator's seed its draws were captured with
  };
  static constexpr int kMaxInstantiations = 4;
  // What a call that reads the step's inputs holds bound for one placement of them.
  struct BoundState {
    std::function<void()> bound;
    std::vector<Reread> rereads;
    kernels::RangedLoop ranged;
  };
  // The bound loops of the calls that read the step's inputs, and the fused runs made of them,
  // at one placement of the inputs (`at`: the first elements of those that calls bind, the
  // others null: placement_key), kept when the inputs move so that data coming back to
  // memory it was in before (a loader's batches, a few buffers in turn) finds its calls bound
  // and its runs made: such a replay neither binds nor allocates. `order`: the order of
  // calls_ the indices in `calls` refer to; `used`: the replay that last used it.
  struct Placement {
    std::vector<const void*> at;
    std::vector<std::size_t> calls;
    std::vector<BoundState> states;
    std::vector<Fused> fused;
    bool fused_built = false;
    std::size_t order = 0;
    std::uint64_t used = 0;
  };
  static constexpr std::size_t kMaxPlacements = 4;
  // What c holds bound for one placement and `s`, swapped (neither allocates).
  static void exchange(Call& c, BoundState& s);
  // Inputs that calls bind moved to bound_ from the place whose key is spare_.at: their
  // calls' bound loops and runs are kept for that place, and those kept for bound_ put back,
  // or the calls bound anew.
  void place_inputs();
  // An input that moved kMovesToStage times is copied into a buffer of the plan's own from
  // then on (with stage_inputs), where its calls read it; the input's bytes must cover every
  // pointer the plan holds into its storage.
  static constexpr int kMovesToStage = 2;
  bool may_stage(std::size_t input, const Tensor& t) const;
  // Points every pointer into input k at `to` (its first element) instead.
  void rebase(std::size_t input, const void* to);
  void copy_staged(const StepInputs& inputs);
  // `at` with the inputs no call binds left out (null): a placement's key.
  void placement_key(const std::vector<const void*>& at, std::vector<const void*>& key) const;
  // Replays at which a call with a scalar read again is tried for binding (Plan::bind).
  static constexpr int kMaxBindTries = 4;
  void run_call(Call& c);
  // Binds c through its launcher (Backend::run_bound), which runs it unless `capture`.
  void bind(Call& c, bool capture = false);
  void reread(const Call& c);
  // The call's scalar operands read again from memory, into its operands.
  void refresh(const Call& c);
  // The runs of bound calls that may run fused, once every call that binds is bound; empty
  // again when inputs move (their calls are bound anew).
  void build_fused();
  std::vector<MemorySpan> spans(const Call& c) const;
  // A call that may run in a fused run: bound, with its loop in parts, long enough.
  bool starts_fused(const Call& c) const;
  // Whether call k may run fused after the calls `run` (access: each call's spans).
  bool joins(std::span<const std::size_t> run, std::size_t k,
             const std::vector<std::vector<MemorySpan>>& access) const;
  // Orders the calls `order` (indices into calls_) so that independent calls that can run
  // fused come together.
  void gather_fusable(std::span<std::size_t> order,
                      const std::vector<std::vector<MemorySpan>>& access) const;
  // Whether a call writes memory of the step's inputs (found through patches_).
  bool writes_an_input() const;
  // The operands of run f's calls that live within it alone, which it keeps to a tile per
  // thread (Backend::run_fused's `locals`): memory of the plan's own buffers that may share
  // (scratch_), written whole by the run's first call to touch it before any call reads it,
  // touched by no call outside the run, and reached by every call of the run through a
  // listed operand of the run's n elements. Counts them into tile_buffers_ and tile_bytes_.
  void tile_locals(Fused& f, const std::vector<std::vector<MemorySpan>>& access);
  // Calls after one that starts a fused run that gather_fusable looks at.
  static constexpr std::size_t kFuseScan = 256;
  void run_fused(Fused& f);
  // Smallest call (elements) worth fusing: below it every operand stays in cache anyway.
  static constexpr std::int64_t kFuseMin = 16384;
  void build_segments();
  void run_segment(Segment& g);
  void drop_graphs();
  // Where a draw on `device` reads the offset a replay's draws start from: base_ itself on the
  // CPU; on a GPU a word of device memory that each replay sets to base_ before its first
  // call, which kernels in graphs read when they run (made while recording, on first use).
  const std::uint64_t* draw_base(Device device, kernels::StreamControl* streams);
  void set_draw_bases();
  // A pointer into the storage of input k, at `delta` bytes from its first element.
  struct Patch {
    void** where;
    std::size_t input;
    std::ptrdiff_t delta;
  };

  std::vector<Call> calls_;
  std::vector<Segment> segments_;
  std::vector<Fused> fused_;
  bool graphs_on_, segments_built_ = false;
  bool fuse_on_, fused_built_ = false;
  bool stage_on_;
  bool merge_on_;
  std::size_t merged_ = 0;
  bool share_on_;
  std::size_t shared_ = 0, shared_bytes_ = 0;
  // Memory of the plan's CPU buffers that share_buffers found free to share: written whole
  // before it is read within a replay and read by nothing outside the replay's calls (by
  // address). Fused runs keep what lives within one of them to a tile (tile_locals).
  std::vector<std::pair<const unsigned char*, const unsigned char*>> scratch_;
  std::size_t tile_buffers_ = 0, tile_bytes_ = 0;
  // Per recorded call: the recorded call whose result it copies (merge_repeats), or kNoCopy.
  static constexpr std::size_t kNoCopy = ~std::size_t{0};
  std::vector<std::size_t> copies_;
  // Per input: the times its memory moved (-1 once staging was decided), and the plan's copy
  // of it once staged.
  std::vector<int> moves_;
  std::vector<Tensor> staged_;
  std::size_t graphs_launched_ = 0, graph_calls_ = 0, instantiations_ = 0, updates_ = 0;
  std::size_t bound_calls_ = 0;
  std::string capture_error_;
  // Operands, in blocks whose addresses stay put: calls, refreshes and patches point in.
  std::vector<std::unique_ptr<kernels::TensorArg[]>> args_;
  std::size_t args_used_ = 0, args_capacity_ = 0;  // of the last block
  std::deque<void*> pointers_;                     // raw pointers of copies, patched like operands
  std::deque<Refresh> refreshes_;
  std::deque<const kernels::TensorArg*> scalar_args_;  // kept scalar operands, call by call
  std::deque<Operand> operands_;                       // kept operands in memory, call by call
  std::vector<Patch> patches_;
  std::vector<std::shared_ptr<Storage>> retained_;
  std::vector<std::vector<unsigned char>> snapshots_;  // host bytes uploaded as constants
  std::vector<CallInfo> infos_;
  std::vector<bool> hoisted_;  // per recorded call: its result is the same at every replay
  std::vector<std::uint64_t> signature_;
  std::vector<const void*> bound_;  // the first element of each input when last bound
  std::vector<bool> bound_inputs_;  // per input: a call binds it (Call::binds_inputs)
  std::vector<const void*> key_;    // bound_'s placement key (place_inputs)
  std::vector<Placement> placements_;
  Placement spare_;        // room a move fills, swapped with placements_'
  std::size_t order_ = 0;  // times calls_ was put in another order
  std::uint64_t replays_ = 0;
  std::size_t placements_reused_ = 0;
  Tensor loss_;
  std::vector<Tensor> outputs_;
  // Gradients of the step's inputs, by input, in the order the backward pass made them.
  struct InputGrad {
    std::size_t input;
    Tensor grad;
  };
  std::vector<InputGrad> input_grads_;
  std::unique_ptr<PreparedUpdate> update_;
  // Draws: seed and base offset of the step being replayed, the recorded step's advance.
  std::uint64_t seed_ = 0, base_ = 0, advance_ = 0;
  // Per GPU that draws: the word its draws read base_ from (a 0-d int64 tensor).
  struct DrawBase {
    Device device;
    Tensor word;
  };
  std::vector<DrawBase> draw_bases_;
  bool finite_ = true;
};

// Records the backend calls the calling thread makes into `plan` while alive (detail::backend
// hands out recording backends). `inputs` are the step's input slots; `gen` the generator
// whose draws the step makes.
class Recorder {
 public:
  Recorder(Plan& plan, const StepInputs& inputs, Generator& gen);
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // Ends the recording: the generator's advance (what a replay moves it by) is noted.
  void finish();
  // Drops from the replay the calls whose results cannot change between replays: those that
  // read only memory no call of the plan or anything between replays writes (constants made
  // in the step: a prior's zeros, an identity's masks), or that earlier such calls wrote, and
  // write memory no other call writes. `external` is memory written between replays (the
  // optimizer's parameters and state); the inputs, the param store's parameters and what
  // draws and host calls write count as changing too.
  // Then merges repeated calls (merge_repeats).
  void hoist(std::span<const void* const> external);
  // After hoist: on the CPU, the plan's buffers that live within one replay (each written
  // whole by the first call that touches it, before any read) share the memory of buffers of
  // the same size whose last reader comes before their first writer
  // (CompileOptions::share_buffers). `live_out`: memory read after a replay (the loss, the
  // gradients the update reads, a function's outputs); with `external` (written between
  // replays), inputs, parameters and memory the host or a launcher reaches by a pointer the
  // plan cannot move, it keeps its own buffer.
  void share_buffers(std::span<const void* const> external, std::span<const void* const> live_out);
  // Smaller buffers keep their own memory: they spare little, and a buffer shared makes the
  // calls that use it depend on one another, which keeps independent small calls (a sum's
  // result, a scalar's gradient) from moving out of a fused run's way.
  static constexpr std::size_t kShareMinBytes = std::size_t{64} << 10;

  kernels::Backend& backend(Device device);
  // A storage whose memory a recorded call may touch: kept alive as long as the plan.
  // `trained`: the tensor requires a gradient (a parameter, which an optimizer may update in
  // place between replays): its memory counts as changing for hoist(). `leaf`: it is a leaf
  // too (a parameter itself, not a result computed from one): share_buffers() leaves it be.
  void retain(const std::shared_ptr<Storage>& storage, bool trained = false, bool leaf = false);
  // The value of a one-element tensor that operand_arg passes by value: the next recorded
  // scalar operand equal to it reads it again from `src` at replay.
  void note_scalar_source(const void* src, DType dtype, double value);
  // Work the host does at replay between recorded calls (drawing subsample indices).
  // `what` names it in messages (a static string); `hash` is its part of the signature.
  // It writes `writes` (it runs at every replay).
  void add_host_call(std::function<void()> call, const char* what, std::uint64_t hash,
                     const void* writes);
  // Where draws of a replay start: (seed, offset of the recorded draw) at replay time.
  const std::uint64_t& replay_seed() const { return plan_.seed_; }
  std::uint64_t relative_offset(std::uint64_t offset) const { return offset - start_offset_; }
  const std::uint64_t& replay_base() const { return plan_.base_; }
  Generator& generator() { return gen_; }

  // Recording-side helpers for the recording backend: copies of operands (n of them in a
  // row) and of raw pointers that the plan owns, inputs patched and scalars refreshed.
  kernels::TensorArg* keep(const kernels::TensorArg* a, std::size_t n = 1);
  // A raw pointer to `nbytes` bytes (a copy's source or destination).
  void** keep_pointer(void* p, std::size_t nbytes);
  // True when `a` (kept for the call being recorded) is read again from memory at replay.
  bool is_refreshed(const kernels::TensorArg* a) const;
  // `device`: the streams of the device the call runs on (null on the CPU). `backend`: the
  // launcher it runs on (null: host work), which may bind it where `bindable`
  // (Backend::run_bound).
  void add_call(std::function<void()> run, const Plan::CallInfo& what, std::uint64_t hash,
                kernels::StreamControl* device = nullptr, kernels::Backend* backend = nullptr,
                bool bindable = false);
  // What the next recorded call writes, when not just its first operand (`rmw`: it reads
  // them too, as an accumulation does); `pinned`: it must run at every replay (a draw, a
  // check, a host call).
  void declare_writes(std::initializer_list<const void*> writes, bool rmw = false);
  void declare_pinned() { cur_pinned_ = true; }
  // The next recorded call waits for the host or works on host memory (a copy from the host,
  // an error check): it never goes into a CUDA Graph.
  void declare_host() { cur_host_ = true; }
  // The next recorded call draws (pinned, its arguments fixed but for the captured seed).
  void declare_draw() { cur_pinned_ = cur_draw_ = true; }
  // The next recorded call is a check: it writes nothing, runs at every replay where what it
  // reads can change between replays, and is hoisted (dropped) where it cannot.
  void declare_check() { cur_check_ = true; }
  // The bounds check of an index op's index on the CPU, repeated at every replay where the
  // index can change (an input, or computed from one), since a replay's index kernels read and
  // write wherever the index points; `fail` throws the op's error for the offending index.
  void add_index_check(const kernels::TensorArg& index, std::int64_t bound,
                       std::function<void(std::int64_t)> fail);
  // The next recorded call's result is a function of its operands and of the options its
  // structure hash takes alone, the same bits at every run, written to its first operand:
  // a later call equal to it on memory nothing wrote in between may copy its result.
  void declare_repeatable() { cur_repeatable_ = true; }
  // A gradient the backward pass adds to `leaf`: where the leaf is one of the step's inputs,
  // kept by the plan (Plan::accumulate_input_grads adds it after every replay, as the eager
  // step adds it), and true; false for any other leaf (a parameter, whose gradient the update
  // reads and the step clears: the recorded calls make it). The recorded accumulation would
  // instead leave the input's .grad pointing into the plan's buffers.
  bool keep_input_grad(const TensorImpl& leaf, const Tensor& g);
  // A host source of an upload: the memory of an input or a kept storage as it is at replay,
  // else a copy of its bytes now (a constant).
  const void* host_source(const void* src, std::size_t nbytes);

 private:
  friend class RecordingBackend;
  struct Range {
    const unsigned char* end;
    std::size_t input;  // npos: a retained storage
  };
  static constexpr std::size_t kNotInput = ~std::size_t{0};
  // The first byte of the kept storage or input holding `p`; null for other memory.
  const unsigned char* storage_of(const void* p) const;
  // The storages of the current param store's parameters (the kept ones).
  std::vector<const unsigned char*> param_storages() const;
  // Whether all that c writes is in its operands (`spans`), memory the plan holds: not a host
  // call, a check or an update, nor a call that writes through a pointer of its own.
  bool described(const Plan::Call& c, const std::vector<MemorySpan>& spans) const;
  // The input whose storage holds `p` (the first such input), or kNotInput.
  std::size_t input_storage(const void* p) const;
  // Of the inputs sharing the storage of input `first` (input_storage(lo)), the one whose own
  // elements span the bytes [lo, hi), and lo's distance from its first element; nullopt where
  // none's do (memory of the storage outside every input's elements: a constant the program
  // captured that the inputs are views of, which a replay reads where it was).
  std::optional<std::pair<std::size_t, std::ptrdiff_t>> input_of(std::size_t first, const void* lo,
                                                                 const void* hi) const;
  // A replayed call that repeats an earlier one (the same kernel, options, operands read and
  // shape of its result) when nothing between them wrote what the earlier call read or wrote
  // copies the earlier call's result instead (CompileOptions::merge_repeats): the same bits.
  void merge_repeats();
  // `in_loop`: a pointer a launcher reads (not a refreshed scalar's source, which the plan
  // reads itself).
  // `nbytes`: the bytes from *where that the pointer reaches (an operand's extent).
  void patch_if_input(void** where, std::size_t nbytes, bool in_loop = true);

  Plan& plan_;
  const StepInputs& inputs_;
  Generator& gen_;
  std::uint64_t start_offset_;
  Recorder* previous_;
  std::unordered_set<const Storage*> retained_;
  std::unordered_set<const unsigned char*> trained_;  // storages of tensors requiring grad
  std::unordered_set<const unsigned char*> leaves_;   // of leaves requiring grad
  std::map<const unsigned char*, Range> ranges_;      // by start: kept storages and inputs
  // The bytes each input's elements span, [lo, hi) (null for an absent or empty input).
  std::vector<std::pair<const unsigned char*, const unsigned char*>> own_;
  struct ScalarSource {
    const void* src;
    DType dtype;
    double value;
  };
  std::vector<ScalarSource> scalar_sources_;
  std::size_t refresh_begin_ = 0, patch_begin_ = 0, scalar_begin_ = 0, operand_begin_ = 0;
  bool cur_binds_input_ = false;  // the call being recorded: patch_if_input with in_loop
  bool call_has_scalar_ = false;
  // What each recorded call reads and writes (first elements of operands), for hoist().
  struct Access {
    std::vector<const void*> reads, writes;
    bool pinned = false;
    bool check = false;  // declare_check
  };
  std::vector<Access> access_;
  std::vector<const void*> cur_reads_, cur_writes_;
  bool cur_declared_ = false, cur_pinned_ = false, cur_host_ = false, cur_draw_ = false,
       cur_repeatable_ = false, cur_check_ = false;
  std::vector<std::pair<Device, std::unique_ptr<RecordingBackend>>> backends_;
};

// What the replay just made of `plan` tells the stats: calls, graphs, a capture given up.
inline void note_replay(CompileStats& stats, const Plan& plan) {
  stats.calls_per_replay = plan.replayed_calls();
  stats.graphs_per_replay = plan.graphs_launched();
  stats.graph_calls_per_replay = plan.graph_calls();
  stats.bound_calls_per_replay = plan.bound_calls();
  stats.fused_calls_per_replay = plan.fused_calls();
  stats.merged_calls_per_replay = plan.merged_calls();
  stats.shared_buffers = plan.shared_buffers();
  stats.shared_bytes = plan.shared_bytes();
  stats.tile_buffers = plan.tile_buffers();
  stats.tile_bytes = plan.tile_bytes();
  stats.graph_instantiations = plan.graph_instantiations();
  stats.graph_updates = plan.graph_updates();
  stats.placements_reused = plan.placements_reused();
  stats.staged_inputs = plan.staged_inputs();
  if (!plan.capture_error().empty()) stats.capture_error = plan.capture_error();
}

// The calling thread's recorder; null when no step is being recorded.
extern constinit thread_local Recorder* t_recorder;
inline Recorder* recorder() { return t_recorder; }

// Compiled programs running on the calling thread (ember::compile's calls, SVI steps and loss
// evaluations, whether eager, recorded or replayed): a compiled function called inside one
// runs as it is (FunctionCore::call), so that a recording around it records its kernel calls
// and its lock is never taken twice.
extern constinit thread_local int t_programs;
class ProgramScope {
 public:
  ProgramScope() { ++t_programs; }
  ~ProgramScope() { --t_programs; }
  ProgramScope(const ProgramScope&) = delete;
  ProgramScope& operator=(const ProgramScope&) = delete;
};

// Throws the CompileError of a value read on the host while a step is being recorded.
[[noreturn]] void throw_host_read();

// While alive, the calling thread's ops run without being recorded (checks whose work a
// replay skips: argument validation, the finite check's diagnosis).
class PauseRecording {
 public:
  PauseRecording();
  ~PauseRecording();
  PauseRecording(const PauseRecording&) = delete;
  PauseRecording& operator=(const PauseRecording&) = delete;

 private:
  Recorder* saved_;
};

}  // namespace ember::detail
