// Generators, the plain random tensors and plate subsampling's index draw; the draws of
// tensors are the Philox samplers of kernels/math/distributions/samplers.hpp, run by the
// device's launcher (detail::draw, engine/ops/distributions.cpp).
#include "ember/random.hpp"

#include <algorithm>
#include <cstddef>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/compile/plan.hpp"
#include "engine/internal.hpp"
#include "kernels/math/philox.hpp"

namespace ember {
namespace {

// SplitMix64 finalizer: decorrelates derived seeds.
std::uint64_t mix64(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::atomic<std::uint64_t> g_thread_counter{0};

}  // namespace

Generator::Generator(const Generator& other)
    : seed_(other.seed_),
      offset_(other.offset()),
      device_base_(other.device_base_.defined() ? other.device_base_.clone() : Tensor()),
      device_owner_(std::this_thread::get_id()) {}

Generator& Generator::operator=(const Generator& other) {
  if (this == &other) return *this;
  seed_ = other.seed_;
  set_offset(other.offset());
  device_base_ = other.device_base_.defined() ? other.device_base_.clone() : Tensor();
  device_owner_ = std::this_thread::get_id();
  return *this;
}

void Generator::use_device_offset(Device device) {
  if (has_device_offset()) check_device_owner("use_device_offset");
  device_owner_ = std::this_thread::get_id();
  const std::uint64_t start =
      offset_.exchange(0) +
      (device_base_.defined() ? static_cast<std::uint64_t>(device_base_.item()) : 0);
  device_base_ =
      full({}, static_cast<double>(start), TensorOptions{}.with_dtype(kInt64).with_device(device));
}

void Generator::commit_device_offset() {
  EMBER_CHECK(has_device_offset(),
              "commit_device_offset: this generator keeps its offset on the host; call "
              "use_device_offset(device) first");
  check_device_owner("commit_device_offset");
  const std::uint64_t used = offset_.exchange(0);
  if (used == 0) return;
  // In place: the base's memory address is what captured kernels read.
  const kernels::TensorArg base = detail::arg(device_base_);
  detail::backend(device_base_)
      .binary(kernels::BinaryOp::Add, base, base,
              kernels::scalar_arg(static_cast<double>(used), kInt64));
}

void Generator::check_device_owner(std::string_view site) const {
  if (!has_device_offset() || device_owner_ == std::this_thread::get_id()) return;
  std::ostringstream owner;
  owner << device_owner_;
  throw ValueError(std::string(site) + ": this generator keeps its offset on " +
                   device_base_.device().str() + " for thread " + owner.str() +
                   ", which alone may draw from it and commit it; give each thread its own "
                   "generator (Generator::fork)");
}

const std::uint64_t* Generator::device_offset_ptr() const {
  return device_base_.defined() ? static_cast<const std::uint64_t*>(device_base_.data_ptr())
                                : nullptr;
}

void Generator::manual_seed(std::uint64_t seed) {
  seed_ = seed;
  set_offset(0);
}

Generator Generator::fork() {
  const std::uint64_t at = next_offset();
  return Generator(mix64(seed_ ^ mix64(at ^ 0xA5A5A5A5A5A5A5A5ULL)));
}

namespace {
// Set by GeneratorScope.
thread_local Generator* t_scoped_generator = nullptr;
}  // namespace

Generator& default_generator() {
  if (t_scoped_generator != nullptr) return *t_scoped_generator;
  thread_local Generator gen(mix64(Generator::kDefaultSeed + g_thread_counter.fetch_add(1)));
  return gen;
}

GeneratorScope::GeneratorScope(Generator& gen) : prev_(t_scoped_generator) {
  t_scoped_generator = &gen;
}
GeneratorScope::~GeneratorScope() { t_scoped_generator = prev_; }

void set_rng_seed(std::uint64_t seed) { default_generator().manual_seed(seed); }

namespace detail {

namespace {

// Draws subsample_size distinct indices of [0, size) into out: a partial Fisher-Yates
// shuffle with the swaps kept sparse in `moved` (O(subsample_size) work and memory whatever
// the size), element i from Philox counter i of (seed, offset).
void draw_subset(std::int64_t size, std::int64_t subsample_size, std::uint64_t seed,
                 std::uint64_t offset, std::unordered_map<std::int64_t, std::int64_t>& moved,
                 std::int64_t* out) {
  moved.clear();
  moved.reserve(static_cast<std::size_t>(subsample_size) * 2);
  auto at = [&](std::int64_t i) {
    auto it = moved.find(i);
    return it == moved.end() ? i : it->second;
  };
  for (std::int64_t i = 0; i < subsample_size; ++i) {
    const kernels::Philox4 b = kernels::philox_block(seed, offset, static_cast<std::uint64_t>(i));
    const std::uint64_t r =
        static_cast<std::uint64_t>(b.x) | (static_cast<std::uint64_t>(b.y) << 32);
    const auto span = static_cast<unsigned __int128>(size - i);
    const std::int64_t j = i + static_cast<std::int64_t>((span * r) >> 64);
    const std::int64_t vj = at(j);
    moved[j] = at(i);
    out[i] = vj;
  }
}

// Host indices on `device`. On a GPU they go up from page-locked memory, queued on the
// calling thread's stream: the host does not wait for the device, as a copy from pageable
// memory would make it.
Tensor indices_on(const std::vector<std::int64_t>& host, Device device) {
  const Shape shape = {static_cast<std::int64_t>(host.size())};
  if (device.is_cpu()) return from_vector(host, shape, TensorOptions{}.with_dtype(kInt64));
  Tensor pinned = make_pinned_tensor(shape, kInt64, device);
  std::copy(host.begin(), host.end(), static_cast<std::int64_t*>(pinned.data_ptr()));
  return pinned.to(device, /*non_blocking=*/true);
}

}  // namespace

Tensor random_subset(std::int64_t size, std::int64_t subsample_size, Device device) {
  // Drawn on the host from the thread's generator so that every device gets the same indices
  // for the same seed.
  Generator& gen = default_generator();
  const std::uint64_t seed = gen.seed();
  const std::uint64_t offset = gen.next_offset();
  std::unordered_map<std::int64_t, std::int64_t> moved;
  std::vector<std::int64_t> out(static_cast<std::size_t>(subsample_size));
  draw_subset(size, subsample_size, seed, offset, moved, out.data());
  Recorder* rec = recorder();
  if (rec == nullptr) return indices_on(out, device);
  // Recording a compiled step: a replay draws the indices afresh, at this draw's offset from
  // the replay's position, into the same memory.
  EMBER_CHECK_T(CompileError, &gen == &rec->generator(),
                "compile: a subsample was drawn from a generator other than the one the "
                "program began with (a seed handler inside it?); a compiled program replays "
                "draws of the thread's generator only");
  Tensor t;
  {
    const PauseRecording pause;
    t = indices_on(out, device);
  }
  order_use(t);  // kept alive by the plan
  struct Redraw {
    std::int64_t size, subsample_size;
    std::uint64_t rel;
    const std::uint64_t* seed;
    const std::uint64_t* base;
    kernels::Backend* backend;
    void* dst;
    std::shared_ptr<std::unordered_map<std::int64_t, std::int64_t>> moved;
    // On the CPU, drawn into the indices' own memory. On a GPU, drawn into a page-locked block
    // and uploaded on the current stream without a host wait; the block returns to its cache
    // once the stream has run the copy.
    void operator()() const {
      kernels::StreamControl* streams = backend->streams();
      if (streams == nullptr) {
        draw_subset(size, subsample_size, *seed, *base + rel, *moved,
                    static_cast<std::int64_t*>(dst));
        return;
      }
      const std::size_t nbytes = static_cast<std::size_t>(subsample_size) * sizeof(std::int64_t);
      void* block = backend->allocate_pinned(nbytes);
      void* stream = streams->current();
      try {
        draw_subset(size, subsample_size, *seed, *base + rel, *moved,
                    static_cast<std::int64_t*>(block));
        backend->copy_from_host_async(dst, block, nbytes);
      } catch (...) {
        backend->deallocate_pinned(block, stream, false);
        throw;
      }
      backend->deallocate_pinned(block, stream, false);
    }
  };
  rec->add_host_call(Redraw{size, subsample_size, rec->relative_offset(offset), &rec->replay_seed(),
                            &rec->replay_base(), &kernels::backend_for(device), t.data_ptr(),
                            std::make_shared<std::unordered_map<std::int64_t, std::int64_t>>()},
                     "subsample",
                     static_cast<std::uint64_t>(size) * 0x9e3779b97f4a7c15ULL ^
                         static_cast<std::uint64_t>(subsample_size),
                     t.data_ptr());
  return t;
}

Tensor full_range(std::int64_t size, Device device) {
  const TensorOptions opts = TensorOptions{}.with_dtype(kInt64).with_device(device);
  // On a GPU the range is one kernel on the caller's stream; a tensor shared between threads
  // could be read on another stream before that kernel has run.
  if (!device.is_cpu()) return arange(static_cast<double>(size), opts);
  // The calling thread's last few sizes (a model's plates ask for the same ones every step),
  // the oldest replaced first; per thread, so the SVI path takes no lock.
  constexpr std::size_t kKept = 8;
  thread_local std::vector<Tensor> recent;
  thread_local std::size_t next = 0;
  for (const Tensor& t : recent)
    if (t.size(0) == size) return t;
  Tensor range = arange(static_cast<double>(size), opts);
  if (recent.size() < kKept) {
    recent.push_back(range);
  } else {
    recent[next] = range;
    next = (next + 1) % kKept;
  }
  return range;
}

}  // namespace detail

Tensor rand(const Shape& shape, const TensorOptions& opts, Generator* gen) {
  return detail::draw(kernels::SampleOp::Uniform, shape, opts.dtype, opts.device, {},
                      gen != nullptr ? *gen : default_generator());
}

Tensor randn(const Shape& shape, const TensorOptions& opts, Generator* gen) {
  return detail::draw(kernels::SampleOp::Normal, shape, opts.dtype, opts.device, {},
                      gen != nullptr ? *gen : default_generator());
}

}  // namespace ember
