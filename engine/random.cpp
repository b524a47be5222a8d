// Generators and the plain random tensors; the draws themselves are the Philox samplers of
// kernels/math/distributions/samplers.hpp, run by the device's launcher.
#include "ember/random.hpp"

#include "engine/internal.hpp"

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
      device_base_(other.device_base_.defined() ? other.device_base_.clone() : Tensor()) {}

Generator& Generator::operator=(const Generator& other) {
  if (this == &other) return *this;
  seed_ = other.seed_;
  set_offset(other.offset());
  device_base_ = other.device_base_.defined() ? other.device_base_.clone() : Tensor();
  return *this;
}

void Generator::use_device_offset(Device device) {
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
  const std::uint64_t used = offset_.exchange(0);
  if (used == 0) return;
  // In place: the base's memory address is what captured kernels read.
  const kernels::TensorArg base = detail::arg(device_base_);
  detail::backend(device_base_)
      .binary(kernels::BinaryOp::Add, base, base,
              kernels::scalar_arg(static_cast<double>(used), kInt64));
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

Tensor draw(kernels::SampleOp op, const Shape& shape, DType dtype, Device device,
            std::span<const Tensor> params, Generator* gen) {
  EMBER_CHECK_DTYPE(is_floating(dtype), kernels::sample_op_name(op),
                    " draws need a floating dtype, got ", dtype);
  Generator& g = gen ? *gen : default_generator();
  EMBER_CHECK_DEVICE(!g.has_device_offset() || g.device_offset().device() == device,
                     kernels::sample_op_name(op), ": the generator keeps its offset on ",
                     g.device_offset().device(), " but the draw is on ", device);
  const kernels::RngState rng{g.seed(), g.next_offset(), g.device_offset_ptr()};
  Tensor out = make_tensor(shape, dtype, device);
  EMBER_CHECK(static_cast<int>(params.size()) == kernels::sample_param_count(op),
              "internal: ", kernels::sample_op_name(op), " takes ", kernels::sample_param_count(op),
              " parameters, got ", params.size());
  std::vector<Tensor> converted;  // alive until the launch is queued
  kernels::TensorArg args[kernels::kMaxDistParams];
  for (std::size_t k = 0; k < params.size(); ++k) {
    check_same_device(kernels::sample_op_name(op), out, params[k]);
    converted.push_back(params[k].detach().to(dtype));
    args[k] = broadcast_arg(converted.back(), shape);
  }
  backend(device).sample(op, arg(out), args, rng);
  return out;
}

}  // namespace detail

Tensor rand(const Shape& shape, const TensorOptions& opts, Generator* gen) {
  return detail::draw(kernels::SampleOp::Uniform, shape, opts.dtype, opts.device, {}, gen);
}

Tensor randn(const Shape& shape, const TensorOptions& opts, Generator* gen) {
  return detail::draw(kernels::SampleOp::Normal, shape, opts.dtype, opts.device, {}, gen);
}

}  // namespace ember
