// The CUDA backend against the CPU backend, its reference: every public op on seeded random
// inputs, in float64 and float32, contiguous and through non-contiguous views, values and
// gradients (backward from a random seed). The NoDevice cases check that a machine without
// a GPU falls back to the CPU cleanly.
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "cuda_harness.hpp"
#include "kernels/backend.hpp"

namespace ember::test {
namespace {

Tensor from_values(const std::vector<double>& v, const Shape& shape) {
  return from_vector(v, shape, f64());
}

// How a floating input is laid out in memory when the op sees it.
enum class Layout {
  Contiguous,
  Transposed,  // stored with the last two dims swapped, seen through a transpose
  Strided,     // every other element of a larger buffer
};

const char* layout_name(Layout l) {
  constexpr const char* kNames[] = {"contiguous", "transposed", "strided"};  // in Layout's order
  return kNames[static_cast<int>(l)];
}

// One input of a case: float64 values (converted to the dtype under test), or an integer
// or bool tensor used as is (indices, conditions).
struct Input {
  Tensor value;
  bool requires_grad = true;
};

Input constant(const Tensor& value) { return {value, false}; }

struct Leaf {
  Tensor leaf;  // what gradients accumulate into
  Tensor view;  // what the op sees: the leaf's values in the requested layout
};

Leaf make_leaf(const Input& in, DType dtype, Device device, Layout layout) {
  if (!is_floating(in.value.dtype())) {
    const Tensor t = in.value.to(device);
    return {t, t};
  }
  Tensor stored = in.value.to(dtype);
  const bool can_transpose = stored.dim() >= 2;
  if (layout == Layout::Transposed && can_transpose) {
    stored = stored.transpose(-2, -1).contiguous();
  } else if (layout != Layout::Contiguous) {
    stored = stack({stored, full_like(stored, 7.0)}, -1);
  }
  Tensor leaf = stored.to(device).detach();
  if (in.requires_grad) leaf.requires_grad_();
  Tensor view = leaf;
  if (layout == Layout::Transposed && can_transpose) {
    view = leaf.transpose(-2, -1);
  } else if (layout != Layout::Contiguous) {
    view = leaf.select(-1, 0);
  }
  return {leaf, view};
}

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

struct CompareOptions {
  std::vector<DType> dtypes = {kFloat64, kFloat32};
  std::vector<Layout> layouts = {Layout::Contiguous, Layout::Transposed, Layout::Strided};
  // Scales the default tolerances (long float32 sums and scans need more).
  double tol_scale = 1.0;
  bool check_grad = true;
};

// Runs f on the CPU and on the device for every dtype and layout; compares the values, then
// seeds backward with one random gradient on both and compares every input's gradient.
void expect_same_as_cpu(const std::string& what, const OpFn& f, const std::vector<Input>& inputs,
                        const CompareOptions& opt = {}) {
  for (DType dtype : opt.dtypes) {
    for (Layout layout : opt.layouts) {
      SCOPED_TRACE(what + " " + dtype_name(dtype) + " " + layout_name(layout));
      std::vector<Leaf> cpu, dev;
      std::vector<Tensor> cpu_views, dev_views;
      for (const Input& in : inputs) {
        cpu.push_back(make_leaf(in, dtype, Device::cpu(), layout));
        dev.push_back(make_leaf(in, dtype, target(), layout));
        cpu_views.push_back(cpu.back().view);
        dev_views.push_back(dev.back().view);
      }
      const Tensor y_cpu = f(cpu_views);
      const Tensor y_dev = f(dev_views);
      const Tolerance tol = op_tolerance(y_cpu.dtype()).scaled(opt.tol_scale);
      ASSERT_TRUE(agree(y_dev, y_cpu, tol)) << "forward";
      if (!opt.check_grad || !y_cpu.requires_grad()) continue;
      ASSERT_TRUE(y_dev.requires_grad());
      const Tensor seed = random_normal(y_cpu.shape()).to(y_cpu.dtype());
      y_cpu.backward(seed);
      y_dev.backward(seed.to(target()));
      for (std::size_t i = 0; i < inputs.size(); ++i) {
        if (!cpu[i].leaf.requires_grad()) continue;
        EXPECT_TRUE(agree(dev[i].leaf.grad(), cpu[i].leaf.grad(), tol))
            << "gradient of input " << i;
      }
    }
  }
}

// ------------------------------------------------------------------- devices ----
TEST(CudaDevice, WithoutAGpuTheCpuIsBestAndCudaThrows) {
  if (cuda_available())
    GTEST_SKIP() << "a CUDA device is present; the no-GPU fallback does not apply";
  EXPECT_EQ(cuda_device_count(), 0);
  EXPECT_TRUE(Device::best().is_cpu());
  EXPECT_THROW(Device::cuda(0), DeviceError);
  EXPECT_THROW(zeros({2}, TensorOptions{}.with_device(Device{DeviceType::CUDA, 0})), DeviceError);
}

#if !defined(EMBER_CUDA_TEST_ON_CPU)  // a real device's: the CPU cannot play it
TEST(CudaDevice, BestIsTheFirstGpuAndBadIndicesThrow) {
  EMBER_REQUIRE_CUDA();
  EXPECT_TRUE(cuda_built());
  EXPECT_GE(cuda_device_count(), 1);
  EXPECT_EQ(Device::best(), Device::cuda(0));
  EXPECT_THROW(Device::cuda(cuda_device_count()), DeviceError);
  EXPECT_THROW(Device::cuda(-1), DeviceError);
  synchronize(Device::cuda(0));
}
#endif

// ------------------------------------------------------- creation and copies ----
TEST(CudaCreation, FactoriesMatchTheCpu) {
  EMBER_REQUIRE_CUDA();
  const auto on = [](Device d, DType t) { return TensorOptions{}.with_dtype(t).with_device(d); };
  for (DType t : {kFloat64, kFloat32, kInt64, kBool}) {
    SCOPED_TRACE(dtype_name(t));
    EXPECT_TRUE(agree(zeros({3, 4}, on(target(), t)), zeros({3, 4}, on(Device::cpu(), t)), kExact));
    EXPECT_TRUE(agree(ones({5}, on(target(), t)), ones({5}, on(Device::cpu(), t)), kExact));
    EXPECT_TRUE(agree(full({2, 0, 3}, 3.0, on(target(), t)),
                      full({2, 0, 3}, 3.0, on(Device::cpu(), t)), kExact));
    EXPECT_TRUE(agree(scalar_tensor(-2.0, on(target(), t)),
                      scalar_tensor(-2.0, on(Device::cpu(), t)), kExact));
  }
  // A bool holds 0 or 1 whatever value fills it.
  EXPECT_EQ(sum(full({4}, 3.0, on(target(), kBool))).item(), 4.0);
  for (DType t : {kFloat64, kFloat32, kInt64}) {
    SCOPED_TRACE(dtype_name(t));
    const Tolerance tol = op_tolerance(t);
    EXPECT_TRUE(agree(arange(-3.0, 7.5, 0.5, on(target(), t)),
                      arange(-3.0, 7.5, 0.5, on(Device::cpu(), t)), tol));
    EXPECT_TRUE(agree(linspace(-1.0, 2.0, 7, on(target(), t)),
                      linspace(-1.0, 2.0, 7, on(Device::cpu(), t)), tol));
    EXPECT_TRUE(agree(arange(0.0, on(target(), t)), arange(0.0, on(Device::cpu(), t)), tol));
  }
  // Large enough for many blocks and the grid-stride loop.
  EXPECT_TRUE(agree(arange(0.0, double(1 << 21), 1.0, on(target(), kFloat64)),
                    arange(0.0, double(1 << 21), 1.0, on(Device::cpu(), kFloat64)), kExact));
}

TEST(CudaCopies, ToDtypeConvertsEveryPair) {
  EMBER_REQUIRE_CUDA();
  const Tensor values = from_values({-2.5, -1.0, 0.0, 0.25, 1.0, 3.75}, {2, 3});
  for (DType from : {kFloat64, kFloat32, kInt64, kBool}) {
    for (DType to : {kFloat64, kFloat32, kInt64, kBool}) {
      SCOPED_TRACE(std::string(dtype_name(from)) + " -> " + dtype_name(to));
      const Tensor src = values.to(from);
      EXPECT_TRUE(agree(src.to(target()).to(to), src.to(to), kExact));
      // Through a transposed view (a strided copy).
      EXPECT_TRUE(agree(src.to(target()).t().to(to), src.t().to(to), kExact));
    }
  }
}

TEST(CudaCopies, ToDeviceRoundTripsAndCarriesGradients) {
  EMBER_REQUIRE_CUDA();
  expect_same_as_cpu("to(device) and back",
                     [](const std::vector<Tensor>& x) {
                       return exp(x[0].to(target()).to(Device::cpu()).to(x[0].device()));
                     },
                     {{random_normal({3, 4})}});
  expect_same_as_cpu("to(dtype)",
                     [](const std::vector<Tensor>& x) {
                       return x[0].to(x[0].dtype() == kFloat64 ? kFloat32 : kFloat64) * 2.0;
                     },
                     {{random_normal({5, 2})}});
  // Zero-size transfers.
  const Tensor empty_cpu = zeros({0, 3});
  EXPECT_TRUE(agree(empty_cpu.to(target()), empty_cpu, kExact));
  EXPECT_EQ(empty_cpu.to(target()).to(Device::cpu()).numel(), 0);
}

TEST(CudaCopies, HostBufferCanBeReusedRightAfterUpload) {
  EMBER_REQUIRE_CUDA();
  std::vector<double> host(1 << 20);
  for (std::size_t i = 0; i < host.size(); ++i) host[i] = static_cast<double>(i);
  const Tensor on_device = from_vector(host, {static_cast<std::int64_t>(host.size())},
                                       TensorOptions{}.with_dtype(kFloat64).with_device(target()));
  std::fill(host.begin(), host.end(), -1.0);
  const auto back = on_device.to_vector<double>();
  for (std::size_t i = 0; i < back.size(); i += 4099) ASSERT_EQ(back[i], static_cast<double>(i));
}

// ------------------------------------------------------------------------ views ----
TEST(CudaViews, ViewsAndContiguousCopiesMatch) {
  EMBER_REQUIRE_CUDA();
  const std::vector<Input> x = {{random_normal({2, 3, 4})}};
  expect_same_as_cpu(
      "reshape",
      [](const auto& v) {
        return v[0].reshape({4, -1}) * 1.5;
      },
      x);
  expect_same_as_cpu(
      "permute",
      [](const auto& v) {
        return v[0].permute({2, 0, 1}).contiguous();
      },
      x);
  expect_same_as_cpu(
      "transpose", [](const auto& v) { return v[0].transpose(0, 2).clone(); }, x);
  expect_same_as_cpu(
      "slice", [](const auto& v) { return v[0].slice(2, 1, 4, 2).contiguous(); }, x);
  expect_same_as_cpu(
      "select", [](const auto& v) { return v[0].select(1, -1) * 2.0; }, x);
  expect_same_as_cpu(
      "narrow", [](const auto& v) { return v[0].narrow(0, 1, 1).clone(); }, x);
  expect_same_as_cpu(
      "squeeze/unsqueeze",
      [](const auto& v) { return v[0].unsqueeze(1).unsqueeze(0).squeeze().clone(); }, x);
  expect_same_as_cpu(
      "expand",
      [](const auto& v) {
        return v[0].select(2, 0).unsqueeze(0).expand({5, 2, 3}).contiguous();
      },
      x);
  expect_same_as_cpu(
      "flatten", [](const auto& v) { return v[0].flatten() * 3.0; }, x);
}

TEST(CudaViews, CatStackPad) {
  EMBER_REQUIRE_CUDA();
  expect_same_as_cpu("cat",
                     [](const auto& v) {
                       return cat({v[0], v[1], v[0]}, 1);
                     },
                     {{random_normal({3, 2})}, {random_normal({3, 5})}});
  expect_same_as_cpu("stack",
                     [](const auto& v) {
                       return stack({v[0], v[1]}, 1);
                     },
                     {{random_normal({3, 4})}, {random_normal({3, 4})}});
  expect_same_as_cpu("pad",
                     [](const auto& v) {
                       return pad(v[0], {1, 2, -1, 0}, 0.5);
                     },
                     {{random_normal({4, 3})}});
}

// ---------------------------------------------------------------- elementwise ----
struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  double lo, hi;
};

TEST(CudaElementwise, UnaryOpsAndGradients) {
  EMBER_REQUIRE_CUDA();
  const std::vector<UnaryCase> cases = {
      {"neg", [](const Tensor& x) { return neg(x); }, -3, 3},
      {"exp", [](const Tensor& x) { return exp(x); }, -3, 3},
      {"log", [](const Tensor& x) { return log(x); }, 0.1, 5},
      {"log1p", [](const Tensor& x) { return log1p(x); }, -0.9, 5},
      {"expm1", [](const Tensor& x) { return expm1(x); }, -3, 3},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, 0.1, 5},
      {"abs", [](const Tensor& x) { return abs(x); }, -3, 3},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, -8, 8},
      {"log_sigmoid", [](const Tensor& x) { return log_sigmoid(x); }, -30, 30},
      {"softplus", [](const Tensor& x) { return softplus(x); }, -30, 30},
      {"tanh", [](const Tensor& x) { return tanh(x); }, -3, 3},
      {"relu", [](const Tensor& x) { return relu(x); }, -3, 3},
      {"lgamma", [](const Tensor& x) { return lgamma(x); }, 0.1, 10},
      {"digamma", [](const Tensor& x) { return digamma(x); }, 0.1, 10},
      {"square", [](const Tensor& x) { return square(x); }, -3, 3},
      {"reciprocal", [](const Tensor& x) { return reciprocal(x); }, 0.5, 4},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 1.0); }, -2, 2},
      {"clamp_min", [](const Tensor& x) { return clamp_min(x, 0.3); }, -2, 2},
      {"clamp_max", [](const Tensor& x) { return clamp_max(x, 0.3); }, -2, 2},
  };
  for (const UnaryCase& c : cases) {
    expect_same_as_cpu(c.name, [&](const auto& v) { return c.op(v[0]); },
                       {{uniform({6, 7}, c.lo, c.hi)}});
  }
  // One large tensor (grid-stride loop) and one empty one.
  expect_same_as_cpu("tanh large", [](const auto& v) { return tanh(v[0]); },
                     {{uniform({1 << 20}, -3, 3)}}, {.layouts = {Layout::Contiguous}});
  expect_same_as_cpu("exp empty", [](const auto& v) { return exp(v[0]); }, {{zeros({0, 5})}});
}

struct BinaryCase {
  const char* name;
  std::function<Tensor(const Tensor&, const Tensor&)> op;
};

TEST(CudaElementwise, BinaryOpsBroadcastAndGradients) {
  EMBER_REQUIRE_CUDA();
  const std::vector<BinaryCase> cases = {
      {"add", [](const Tensor& a, const Tensor& b) { return a + b; }},
      {"sub", [](const Tensor& a, const Tensor& b) { return a - b; }},
      {"mul", [](const Tensor& a, const Tensor& b) { return a * b; }},
      {"div", [](const Tensor& a, const Tensor& b) { return a / b; }},
      {"pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); }},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); }},
      {"minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); }},
  };
  // Positive operands keep pow real; the shapes cover equal, row, column and scalar-like
  // broadcasting.
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{4, 5}, {4, 5}}, {{4, 5}, {5}}, {{4, 1}, {1, 5}}, {{3, 4, 5}, {4, 1}}, {{4, 5}, {}}};
  for (const BinaryCase& c : cases) {
    for (const auto& [sa, sb] : shapes) {
      expect_same_as_cpu(std::string(c.name) + " " + sa.str() + " " + sb.str(),
                         [&](const auto& v) { return c.op(v[0], v[1]); },
                         {{uniform(sa, 0.5, 2.0)}, {uniform(sb, 0.5, 2.0)}});
    }
  }
  // Ties share the gradient of maximum/minimum.
  const Tensor tied = from_values({1.0, 2.0, 3.0}, {3});
  expect_same_as_cpu("maximum ties", [](const auto& v) { return maximum(v[0], v[1]); },
                     {{tied}, {tied}});
  expect_same_as_cpu("add empty", [](const auto& v) { return v[0] + v[1]; },
                     {{zeros({0, 3})}, {random_normal({3})}});
  expect_same_as_cpu("mul large", [](const auto& v) { return v[0] * v[1]; },
                     {{random_normal({1 << 10, 1 << 10})}, {random_normal({1 << 10})}},
                     {.layouts = {Layout::Contiguous, Layout::Transposed}});
}

TEST(CudaElementwise, ScalarOperandsAndIntegers) {
  EMBER_REQUIRE_CUDA();
  const std::vector<Input> x = {{uniform({3, 4}, 0.5, 2.0)}};
  expect_same_as_cpu(
      "x + 2", [](const auto& v) { return v[0] + 2.0; }, x);
  expect_same_as_cpu(
      "2 - x", [](const auto& v) { return 2.0 - v[0]; }, x);
  expect_same_as_cpu(
      "x * 3", [](const auto& v) { return v[0] * 3.0; }, x);
  expect_same_as_cpu(
      "1.5 / x", [](const auto& v) { return 1.5 / v[0]; }, x);
  expect_same_as_cpu(
      "x / 4", [](const auto& v) { return v[0] / 4.0; }, x);
  expect_same_as_cpu(
      "pow(x, 2.5)", [](const auto& v) { return pow(v[0], 2.5); }, x);
  expect_same_as_cpu(
      "pow(2, x)", [](const auto& v) { return pow(2.0, v[0]); }, x);
  expect_same_as_cpu(
      "-x", [](const auto& v) { return -v[0]; }, x);
  // Integer arithmetic stays exact, including integer powers and negation.
  const Tensor a = randint({4, 5}, -6, 6), b = randint({5}, 0, 3);
  const Tensor da = a.to(target()), db = b.to(target());
  EXPECT_TRUE(agree(da + db, a + b, kExact));
  EXPECT_TRUE(agree(da * db - da, a * b - a, kExact));
  EXPECT_TRUE(
      agree(pow(da.to(kFloat64), db.to(kFloat64)), pow(a.to(kFloat64), b.to(kFloat64)), kExact));
  EXPECT_TRUE(agree(maximum(da, db), maximum(a, b), kExact));
  EXPECT_TRUE(agree(-da, -a, kExact));
  EXPECT_TRUE(agree(da * 3.0, a * 3.0, kExact));
  EXPECT_TRUE(agree(da / clamp_min(db.to(kFloat64), 1.0), a / clamp_min(b.to(kFloat64), 1.0),
                    op_tolerance(kFloat64)));
  EXPECT_TRUE(agree(sum(da), sum(a), kExact));
}

TEST(CudaElementwise, ComparisonsLogicAndWhere) {
  EMBER_REQUIRE_CUDA();
  for (DType t : {kFloat64, kFloat32, kInt64}) {
    SCOPED_TRACE(dtype_name(t));
    const Tensor a = randint({4, 5}, -2, 2).to(t), b = randint({5}, -2, 2).to(t);
    const Tensor da = a.to(target()), db = b.to(target());
    EXPECT_TRUE(agree(eq(da, db), eq(a, b), kExact));
    EXPECT_TRUE(agree(ne(da, db), ne(a, b), kExact));
    EXPECT_TRUE(agree(da < db, a < b, kExact));
    EXPECT_TRUE(agree(da <= db, a <= b, kExact));
    EXPECT_TRUE(agree(da > db, a > b, kExact));
    EXPECT_TRUE(agree(da >= db, a >= b, kExact));
    EXPECT_TRUE(agree(da > 0.0, a > 0.0, kExact));
    EXPECT_TRUE(agree(eq(da, 1.0), eq(a, 1.0), kExact));
    EXPECT_TRUE(agree(logical_and(da, db), logical_and(a, b), kExact));
    EXPECT_TRUE(agree(logical_or(da, db), logical_or(a, b), kExact));
    EXPECT_TRUE(agree(logical_not(da), logical_not(a), kExact));
    EXPECT_EQ(all(da > -3.0), all(a > -3.0));
    EXPECT_EQ(any(da > 1.0), any(a > 1.0));
    EXPECT_EQ(all(da > 0.0), all(a > 0.0));
  }
  const Tensor special = from_values({0.0, NAN, INFINITY, -INFINITY, 1.0}, {5});
  EXPECT_TRUE(agree(isnan(special.to(target())), isnan(special), kExact));
  EXPECT_TRUE(agree(isfinite(special.to(target())), isfinite(special), kExact));
  EXPECT_TRUE(agree(max(special.to(target())), max(special), kExact));  // NaN propagates

  const Tensor cond = randint({4, 1}, 0, 1).to(kBool);
  expect_same_as_cpu("where", [](const auto& v) { return where(v[0], v[1], v[2]); },
                     {constant(cond), {random_normal({4, 5})}, {random_normal({5})}});
  expect_same_as_cpu("where scalar b", [](const auto& v) { return where(v[0], v[1], -1.0); },
                     {constant(cond), {random_normal({4, 5})}});
  expect_same_as_cpu("where scalar a", [](const auto& v) { return where(v[0], 2.0, v[1]); },
                     {constant(cond), {random_normal({4, 5})}});
}

// ---------------------------------------------------------------- reductions ----
TEST(CudaReduce, SumMeanMaxMinLogsumexpOverDims) {
  EMBER_REQUIRE_CUDA();
  const std::vector<std::vector<int>> dim_sets = {{}, {0}, {1}, {-1}, {0, 2}, {1, 2}};
  for (const auto& dims : dim_sets) {
    for (bool keepdim : {false, true}) {
      std::ostringstream name;
      name << "dims {";
      for (int d : dims) name << d << ' ';
      name << "} keepdim " << keepdim;
      const std::vector<Input> x = {{random_normal({3, 4, 5})}};
      expect_same_as_cpu(
          "sum " + name.str(), [&](const auto& v) { return sum(v[0], dims, keepdim); }, x);
      expect_same_as_cpu(
          "mean " + name.str(), [&](const auto& v) { return mean(v[0], dims, keepdim); }, x);
      expect_same_as_cpu(
          "max " + name.str(), [&](const auto& v) { return max(v[0], dims, keepdim); }, x);
      expect_same_as_cpu(
          "min " + name.str(), [&](const auto& v) { return min(v[0], dims, keepdim); }, x);
      expect_same_as_cpu(
          "logsumexp " + name.str(), [&](const auto& v) { return logsumexp(v[0], dims, keepdim); },
          x);
    }
  }
  // Ties share the gradient.
  expect_same_as_cpu("max ties", [](const auto& v) { return max(v[0], {1}); },
                     {{from_values({1, 3, 3, 2, 2, 0}, {2, 3})}});
  expect_same_as_cpu("sum_to",
                     [](const auto& v) {
                       return sum_to(v[0], {4, 1});
                     },
                     {{random_normal({3, 4, 5})}});
}

TEST(CudaReduce, LargeInputsTakeEveryPath) {
  EMBER_REQUIRE_CUDA();
  // Positive values so that float32 sums do not cancel; float32 accumulates in float on
  // the device and in double on the CPU.
  const CompareOptions contiguous{.layouts = {Layout::Contiguous}, .tol_scale = 5.0};
  const CompareOptions all_layouts{.tol_scale = 5.0};
  const Tensor big = uniform({1 << 20}, 0.0, 1.0);
  for (const char* op : {"sum", "max", "min", "mean", "logsumexp"}) {
    const std::string name = op;
    const auto f = [name](const Tensor& x, const std::vector<int>& dims) {
      if (name == "sum") return sum(x, dims);
      if (name == "max") return max(x, dims);
      if (name == "min") return min(x, dims);
      if (name == "mean") return mean(x, dims);
      return logsumexp(x, dims);
    };
    // Full reduction of a contiguous input (cub::DeviceReduce).
    expect_same_as_cpu(
        name + " 2^20", [&](const auto& v) { return f(v[0], {}); }, {{big}}, contiguous);
    // Long reduced extents (a block per output) and short ones (a thread per output), in
    // every layout, and a full reduction of a strided input.
    const std::vector<Input> m = {{uniform({1024, 1030}, 0.0, 1.0)}};
    expect_same_as_cpu(
        name + " rows", [&](const auto& v) { return f(v[0], {1}); }, m, all_layouts);
    expect_same_as_cpu(
        name + " cols", [&](const auto& v) { return f(v[0], {0}); }, m, all_layouts);
    expect_same_as_cpu(
        name + " all", [&](const auto& v) { return f(v[0], {}); }, m, all_layouts);
    expect_same_as_cpu(
        name + " short", [&](const auto& v) { return f(v[0], {0}); },
        {{uniform({7, 5000}, 0.0, 1.0)}}, all_layouts);
  }
  // Products of values near 1 (no overflow), integer sums exactly.
  expect_same_as_cpu(
      "prod via cumprod end", [](const auto& v) { return cumprod(v[0], 1).select(1, -1); },
      {{uniform({3, 3000}, 0.999, 1.001)}}, all_layouts);
  const Tensor ints = randint({1 << 20}, -1000, 1000);
  EXPECT_TRUE(agree(sum(ints.to(target())), sum(ints), kExact));
  EXPECT_TRUE(agree(max(ints.to(target()).reshape({1024, 1024}), {0}),
                    max(ints.reshape({1024, 1024}), {0}), kExact));
}

TEST(CudaReduce, EmptyInputs) {
  EMBER_REQUIRE_CUDA();
  expect_same_as_cpu("sum over empty dim", [](const auto& v) { return sum(v[0], {0}); },
                     {{zeros({0, 3})}});
  expect_same_as_cpu("sum of empty", [](const auto& v) { return sum(v[0]); }, {{zeros({0})}});
  expect_same_as_cpu("sum keeping empty dim", [](const auto& v) { return sum(v[0], {1}); },
                     {{zeros({0, 3})}});
  EXPECT_THROW(max(zeros({0, 3}).to(target()), {0}), ShapeError);
}

// ---------------------------------------------------------------------- scans ----
TEST(CudaScan, CumsumCumprodAlongEveryDim) {
  EMBER_REQUIRE_CUDA();
  for (int dim : {0, 1, 2, -1}) {
    const std::string d = std::to_string(dim);
    expect_same_as_cpu("cumsum " + d, [dim](const auto& v) { return cumsum(v[0], dim); },
                       {{random_normal({3, 4, 5})}});
    expect_same_as_cpu("cumprod " + d, [dim](const auto& v) { return cumprod(v[0], dim); },
                       {{uniform({3, 4, 5}, 0.5, 1.5)}});
  }
  // Zeros in the input: the gradient is kExact, with no division.
  expect_same_as_cpu("cumprod with zeros", [](const auto& v) { return cumprod(v[0], 0); },
                     {{from_values({2.0, 0.0, 3.0, 0.0, 0.5}, {5})}});
  const Tensor ints = randint({4, 6}, -3, 3);
  EXPECT_TRUE(agree(cumsum(ints.to(target()), 1), cumsum(ints, 1), kExact));
  EXPECT_TRUE(agree(cumprod(ints.to(target()), 0), cumprod(ints, 0), kExact));
  expect_same_as_cpu("cumsum empty", [](const auto& v) { return cumsum(v[0], 1); },
                     {{zeros({0, 4})}});
}

TEST(CudaScan, LogNormalizeAlongEveryDim) {
  EMBER_REQUIRE_CUDA();
  for (int dim : {0, 1, 2, -1}) {
    expect_same_as_cpu("log_normalize " + std::to_string(dim),
                       [dim](const auto& v) { return log_normalize(v[0], dim); },
                       {{uniform({3, 4, 5}, 0.1, 2.0)}});
  }
  // Expanded (stride 0) and transposed inputs.
  expect_same_as_cpu("log_normalize strided",
                     [](const auto& v) {
                       return log_normalize(v[0].expand({6, 4}).t(), 0);
                     },
                     {{uniform({1, 4}, 0.1, 2.0)}});
}

// StickBreakingTransform's line kernel (its pieces from the fractions) and its backward, on
// lines of 1 and 6 and through a transpose.
TEST(CudaScan, StickBreakingMatchesTheCpu) {
  EMBER_REQUIRE_CUDA();
  const transforms::StickBreakingTransform t;
  for (std::int64_t n : {1, 6}) {
    expect_same_as_cpu("stick breaking " + std::to_string(n),
                       [t](const auto& v) { return t(v[0]); }, {{random_normal({4, n})}});
  }
  expect_same_as_cpu("stick breaking transposed", [t](const auto& v) { return t(v[0].t()); },
                     {{random_normal({5, 3})}});
}

TEST(CudaScan, LongLinesTakeEveryPath) {
  EMBER_REQUIRE_CUDA();
  // One line of 2^20 (cub::DeviceScan, forward for the value and reverse for the cumsum
  // gradient), a few long lines (a block each) and many short ones (a thread each).
  // float32 cumsums are sequential on the CPU: allow for their rounding.
  // The gradient (a reverse cumsum of a random seed) crosses zero, where float32's absolute
  // rounding of a 2^20-long sum is far above any useful tolerance: it is checked in float64.
  const CompareOptions all_layouts{.tol_scale = 50.0};
  const Tensor line = uniform({1 << 20}, 0.0, 1.0);
  for (Layout layout : {Layout::Contiguous, Layout::Strided}) {
    expect_same_as_cpu("cumsum 2^20", [](const auto& v) { return cumsum(v[0], 0); }, {{line}},
                       {.dtypes = {kFloat64}, .layouts = {layout}, .tol_scale = 100.0});
    expect_same_as_cpu(
        "cumsum 2^20", [](const auto& v) { return cumsum(v[0], 0); }, {{line}},
        {.dtypes = {kFloat32}, .layouts = {layout}, .tol_scale = 20.0, .check_grad = false});
  }
  expect_same_as_cpu("cumprod 2^20", [](const auto& v) { return cumprod(v[0], 0); },
                     {{uniform({1 << 20}, 0.9999, 1.0001)}},
                     {.dtypes = {kFloat64}, .layouts = {Layout::Contiguous}});
  expect_same_as_cpu(
      "cumsum long rows", [](const auto& v) { return cumsum(v[0], 1); },
      {{uniform({6, 3000}, 0.0, 1.0)}}, all_layouts);
  expect_same_as_cpu(
      "cumsum long cols", [](const auto& v) { return cumsum(v[0], 0); },
      {{uniform({3000, 6}, 0.0, 1.0)}}, all_layouts);
  expect_same_as_cpu(
      "cumprod many short", [](const auto& v) { return cumprod(v[0], 1); },
      {{uniform({5000, 7}, 0.5, 1.5)}}, all_layouts);
}

// No public op reduces by product; the launchers are compared directly.
TEST(CudaReduce, SumOfProductsMatchesTheCpuLauncher) {
  EMBER_REQUIRE_CUDA();
  const auto arg_of = [](const Tensor& t, const Shape& full) {
    kernels::TensorArg a;
    a.data = t.data_ptr();
    a.dtype = t.dtype();
    a.ndim = full.size();
    const Tensor e = t.expand(full);
    for (int d = 0; d < full.size(); ++d) {
      a.sizes[d] = full[d];
      a.strides[d] = e.strides()[d];
    }
    return a;
  };
  const auto reduce_product = [&](const Tensor& x, const Tensor& y, const Shape& full,
                                  const Shape& out_shape) {
    const Tensor out =
        empty(out_shape, TensorOptions{}.with_dtype(x.dtype()).with_device(x.device()));
    kernels::backend_for(x.device())
        .reduce_product(arg_of(out, out_shape), arg_of(x, full), arg_of(y, full));
    return out;
  };
  for (DType t : {kFloat64, kFloat32}) {
    SCOPED_TRACE(dtype_name(t));
    const Tolerance tol = op_tolerance(t).scaled(10);
    const Tensor a = random_normal({64, 3000}).to(t), b = random_normal({64, 3000}).to(t);
    const Tensor row = random_normal({1, 3000}).to(t);
    const Tensor da = a.to(target()), db = b.to(target()), drow = row.to(target());
    const Shape full{64, 3000};
    // A block per output, a thread per output, the whole device, and a broadcast operand.
    EXPECT_TRUE(
        agree(reduce_product(da, db, full, {64, 1}), reduce_product(a, b, full, {64, 1}), tol));
    EXPECT_TRUE(
        agree(reduce_product(da, db, full, {1, 3000}), reduce_product(a, b, full, {1, 3000}), tol));
    EXPECT_TRUE(
        agree(reduce_product(da, db, full, {1, 1}), reduce_product(a, b, full, {1, 1}), tol));
    EXPECT_TRUE(
        agree(reduce_product(da, drow, full, {64, 1}), reduce_product(a, row, full, {64, 1}), tol));
    EXPECT_TRUE(agree(reduce_product(da.t(), db.t(), {3000, 64}, {1, 64}),
                      reduce_product(a.t(), b.t(), {3000, 64}, {1, 64}), tol));
  }
}

TEST(CudaReduce, ProductReductionMatchesTheCpuLauncher) {
  EMBER_REQUIRE_CUDA();
  const auto arg_of = [](const Tensor& t) {
    kernels::TensorArg a;
    a.data = t.data_ptr();
    a.dtype = t.dtype();
    a.ndim = t.dim();
    for (int d = 0; d < t.dim(); ++d) {
      a.sizes[d] = t.shape()[d];
      a.strides[d] = t.strides()[d];
    }
    return a;
  };
  const auto prod = [&](const Tensor& x, const Shape& out_shape) {
    const Tensor out =
        empty(out_shape, TensorOptions{}.with_dtype(x.dtype()).with_device(x.device()));
    kernels::backend_for(x.device()).reduce(kernels::ReduceOp::Prod, arg_of(out), arg_of(x));
    return out;
  };
  for (DType t : {kFloat64, kFloat32}) {
    SCOPED_TRACE(dtype_name(t));
    const Tolerance tol{op_tolerance(t).rtol * 10, op_tolerance(t).atol};
    const Tensor m = uniform({64, 3000}, 0.999, 1.001).to(t);
    const Tensor dm = m.to(target());
    EXPECT_TRUE(agree(prod(dm, {64, 1}), prod(m, {64, 1}), tol));        // a block each
    EXPECT_TRUE(agree(prod(dm, {1, 3000}), prod(m, {1, 3000}), tol));    // a thread each
    EXPECT_TRUE(agree(prod(dm, {1, 1}), prod(m, {1, 1}), tol));          // whole device
    EXPECT_TRUE(agree(prod(dm.t(), {1, 1}), prod(m.t(), {1, 1}), tol));  // strided
  }
  const Tensor ints = randint({5, 7}, -3, 3);
  EXPECT_TRUE(agree(prod(ints.to(target()), {5, 1}), prod(ints, {5, 1}), kExact));
}

// ------------------------------------------------------------------- indexing ----
TEST(CudaIndex, SelectGatherScatterAndAdd) {
  EMBER_REQUIRE_CUDA();
  const Tensor index = from_vector(std::vector<std::int64_t>{2, 0, 2, 1, 2}, {5},
                                   TensorOptions{}.with_dtype(kInt64));
  for (int dim : {0, 1}) {
    const std::string d = std::to_string(dim);
    expect_same_as_cpu("index_select " + d,
                       [dim](const auto& v) { return index_select(v[0], dim, v[1]); },
                       {{random_normal({3, 3})}, constant(index)});
    Shape src_shape = {3, 3};
    src_shape[dim] = 5;
    expect_same_as_cpu("index_add " + d,
                       [dim](const auto& v) { return index_add(v[0], dim, v[1], v[2]); },
                       {{random_normal({3, 3})}, constant(index), {random_normal(src_shape)}});
    Shape idx_shape = {4, 3};
    if (dim == 1) idx_shape = {3, 4};
    const Tensor gidx = randint(idx_shape, 0, 2);
    expect_same_as_cpu("gather " + d, [dim](const auto& v) { return gather(v[0], dim, v[1]); },
                       {{random_normal({3, 3})}, constant(gidx)});
    // A source larger than the index: the extra elements get no gradient.
    Shape src2 = idx_shape;
    src2[1 - dim] += 1;
    expect_same_as_cpu("scatter_add " + d,
                       [dim](const auto& v) { return scatter_add(v[0], dim, v[1], v[2]); },
                       {{random_normal({3, 3})}, constant(gidx), {random_normal(src2)}});
  }
  // Many repeated indices: the atomics must all land.
  const Tensor hot = randint({100000}, 0, 3);
  expect_same_as_cpu("index_add hot", [](const auto& v) { return index_add(v[0], 0, v[1], v[2]); },
                     {{random_normal({4, 2})}, constant(hot), {random_normal({100000, 2})}},
                     {.layouts = {Layout::Contiguous}, .tol_scale = 50.0});
  const Tensor ints = randint({4, 3}, -5, 5);
  const Tensor iidx = randint({6}, 0, 3);
  EXPECT_TRUE(
      agree(index_add(ints.to(target()), 0, iidx.to(target()),
                      ones({6, 3}, TensorOptions{}.with_dtype(kInt64).with_device(target()))),
            index_add(ints, 0, iidx, ones({6, 3}, TensorOptions{}.with_dtype(kInt64))), kExact));
  EXPECT_TRUE(agree(index_select(ints.to(target()).to(kBool), 0, iidx.to(target())),
                    index_select(ints.to(kBool), 0, iidx), kExact));
  expect_same_as_cpu(
      "index_select empty", [](const auto& v) { return index_select(v[0], 0, v[1]); },
      {{random_normal({3, 2})}, constant(zeros({0}, TensorOptions{}.with_dtype(kInt64)))});
}

TEST(CudaIndex, OutOfRangeIndexNamesTheFirstBadValue) {
  EMBER_REQUIRE_CUDA();
  const Tensor x = random_normal({4, 3}).to(target());
  const Tensor bad = from_vector(std::vector<std::int64_t>{1, 7, 2, -1}, {4},
                                 TensorOptions{}.with_dtype(kInt64).with_device(target()));
  EMBER_EXPECT_THROW_WITH((void)index_select(x, 0, bad), ValueError, "index 7 is out of range");
  const Tensor bad2 = from_vector(std::vector<std::int64_t>{0, 1, 2, 3, 3, 2, 1, 0, 0, -4}, {10},
                                  TensorOptions{}.with_dtype(kInt64).with_device(target()));
  EMBER_EXPECT_THROW_WITH((void)index_select(x, 1, bad2), ValueError, "index 3 is out of range");
  // Still usable afterwards.
  EXPECT_TRUE(agree(sum(x), sum(x.to(Device::cpu())), op_tolerance(kFloat64)));
}

// ---------------------------------------------------------------------- matmul ----
TEST(CudaMatmul, ShapesLayoutsAndBatchBroadcast) {
  EMBER_REQUIRE_CUDA();
  const auto mm = [](const auto& v) { return matmul(v[0], v[1]); };
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3, 4}, {4, 5}},
      {{4}, {4, 5}},
      {{3, 4}, {4}},
      {{4}, {4}},
      {{2, 3, 4}, {4, 5}},
      {{3, 4}, {2, 4, 5}},
      {{2, 1, 3, 4}, {5, 4, 6}},
      {{1, 3, 4}, {7, 4, 5}},
      {{3, 1}, {1, 5}},
      {{1, 4}, {4, 1}},
      {{65, 130}, {130, 33}},
  };
  for (const auto& [sa, sb] : shapes) {
    // Transposed and strided layouts give column-major and general-stride operands.
    expect_same_as_cpu("matmul " + sa.str() + " @ " + sb.str(), mm,
                       {{random_normal(sa)}, {random_normal(sb)}});
  }
  expect_same_as_cpu("matmul a^T b^T", [](const auto& v) { return matmul(v[0].t(), v[1].t()); },
                     {{random_normal({4, 3})}, {random_normal({5, 4})}},
                     {.layouts = {Layout::Contiguous}});
  expect_same_as_cpu("matmul expanded batch",
                     [](const auto& v) {
                       return matmul(v[0].expand({6, 3, 4}), v[1]);
                     },
                     {{random_normal({3, 4})}, {random_normal({6, 4, 2})}});
  expect_same_as_cpu("matmul empty", mm, {{random_normal({0, 4})}, {random_normal({4, 3})}});
  expect_same_as_cpu("matmul k = 0", mm, {{random_normal({3, 0})}, {random_normal({0, 2})}});
}

TEST(CudaMatmul, LogSpaceAndMaxPlusProductsMatchTheCpu) {
  EMBER_REQUIRE_CUDA();
  const auto lme = [](const auto& v) { return log_matmul_exp(v[0], v[1]); };
  for (const auto& [sa, sb] : std::vector<std::pair<Shape, Shape>>{
           {{3, 4}, {4, 5}}, {{2, 3, 4}, {4, 5}}, {{2, 1, 3, 16}, {5, 16, 16}}}) {
    expect_same_as_cpu("log_matmul_exp " + sa.str() + " @ " + sb.str(), lme,
                       {{random_normal(sa)}, {random_normal(sb)}});
  }
  expect_same_as_cpu("max_plus_matmul", [](const auto& v) { return max_plus_matmul(v[0], v[1]); },
                     {{random_normal({2, 3, 4})}, {random_normal({2, 4, 5})}});
}

TEST(CudaMatmul, ConcurrentThreadsShareTheDevice) {
  EMBER_REQUIRE_CUDA();
  const Tensor a = random_normal({64, 32}), b = random_normal({32, 48});
  const Tensor expected = matmul(a, b);
  std::vector<std::thread> threads;
  std::vector<int> ok(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      Tensor acc = zeros({64, 48}, TensorOptions{}.with_dtype(kFloat64).with_device(target()));
      const Tensor da = a.to(target()), db = b.to(target());
      for (int i = 0; i < 20; ++i) acc = acc + matmul(da, db);
      ok[t] = agree(acc / 20.0, expected, op_tolerance(kFloat64)) ? 1 : 0;
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(ok[t], 1) << "thread " << t;
}

// ----------------------------------------------------------- a small model step ----
TEST(CudaModel, MlpLossAndGradientsMatch) {
  EMBER_REQUIRE_CUDA();
  expect_same_as_cpu("two-layer mlp",
                     [](const auto& v) {
                       const Tensor h = tanh(matmul(v[0], v[1]) + v[2]);
                       const Tensor logits = matmul(h, v[3]);
                       return mean(softplus(logits) - logits * v[4]);
                     },
                     {{random_normal({32, 8})},
                      {random_normal({8, 16})},
                      {random_normal({16})},
                      {random_normal({16, 1})},
                      constant(randint({32, 1}, 0, 1).to(kFloat64))},
                     {.layouts = {Layout::Contiguous, Layout::Transposed}});
}

}  // namespace
}  // namespace ember::test
