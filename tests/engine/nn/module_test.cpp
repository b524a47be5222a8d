// The Module base: registries and names, buffers, modes, dtype moves, zero_grad and
// parameter counts; state dicts in memory and as safetensors files (round trips, a file
// written by NumPy's safetensors in torch's layout, strict checks that name file and key,
// all-or-nothing loading); torch's initializations and their reproducibility by seed.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "nn_test_util.hpp"

namespace ember {
namespace {

using test::f64;
using test::RefNet;
namespace fs = std::filesystem;

// State dict tests write files in a directory of their own, removed when the test ends.
class StateDict : public ::testing::Test {
 protected:
  fs::path temp_file(const std::string& name) {
    fs::create_directories(dir_);
    return dir_ / name;
  }
  void TearDown() override { fs::remove_all(dir_); }

 private:
  fs::path dir_ =
      fs::temp_directory_path() / ("ember_nn_" + std::to_string(::getpid()) + "_" +
                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
};

std::vector<std::string> keys(const nn::StateDict& d) {
  std::vector<std::string> out;
  for (const auto& [k, v] : d) out.push_back(k);
  return out;
}

// ------------------------------------------------------------------- registries ----

class Registering : public nn::Module {
 public:
  Registering() {
    register_parameter("w", zeros({2}));
    register_buffer("count", zeros({}));
  }
  void add_parameter(const std::string& name) { register_parameter(name, zeros({1})); }
  void add_buffer(const std::string& name) { register_buffer(name, zeros({1})); }
};

TEST(Module, NamesAreUniqueAndDotless) {
  Registering m;
  EMBER_EXPECT_THROW_WITH(m.add_parameter("w"), ValueError, "'w' is registered already");
  EMBER_EXPECT_THROW_WITH(m.add_buffer("w"), ValueError, "'w' is registered already");
  EMBER_EXPECT_THROW_WITH(m.add_parameter("count"), ValueError, "'count'");
  EMBER_EXPECT_THROW_WITH(m.add_parameter("a.b"), ValueError, "'a.b'", "without '.'");
  // Buffers are kept apart from parameters and are not leaves that require grad.
  EXPECT_EQ(m.named_parameters().size(), 1u);
  EXPECT_EQ(m.named_buffers().size(), 1u);
  EXPECT_TRUE(m.named_parameters()[0].second->requires_grad());
  EXPECT_FALSE(m.named_buffers()[0].second->requires_grad());
}

TEST(Module, PathsBuffersModesAndCounts) {
  RefNet net(f64());
  std::vector<std::string> params, buffers;
  for (auto& [name, ptr] : net.named_parameters()) params.push_back(name);
  for (auto& [name, ptr] : net.named_buffers()) buffers.push_back(name);
  EXPECT_EQ(params, (std::vector<std::string>{"fc1.weight", "fc1.bias", "bn.weight", "bn.bias",
                                              "fc2.weight", "fc2.bias"}));
  EXPECT_EQ(buffers, (std::vector<std::string>{"bn.running_mean", "bn.running_var",
                                               "bn.num_batches_tracked"}));
  EXPECT_EQ(net.num_parameters(), 12 + 4 + 4 + 4 + 8 + 2);
  EXPECT_EQ(net.parameters().size(), 6u);
  EXPECT_EQ(net.parameters()[0].data_ptr(), net.named_parameters()[0].second->data_ptr());
  ASSERT_EQ(net.named_children().size(), 3u);
  EXPECT_EQ(net.named_children()[1].first, "bn");
  EXPECT_EQ(keys(net.state_dict()),
            (std::vector<std::string>{"bn.bias", "bn.num_batches_tracked", "bn.running_mean",
                                      "bn.running_var", "bn.weight", "fc1.bias", "fc1.weight",
                                      "fc2.bias", "fc2.weight"}));
  // train/eval reach every sub-module.
  EXPECT_TRUE(net.is_training() && net.bn().is_training());
  net.eval();
  EXPECT_FALSE(net.is_training() || net.bn().is_training());
  net.train();
  EXPECT_TRUE(net.bn().is_training());
}

TEST(Module, ToDTypeAndZeroGrad) {
  RefNet net;
  EXPECT_EQ(net.parameters()[0].dtype(), kFloat32);
  net.to(kFloat64);
  for (auto& [name, ptr] : net.named_parameters()) {
    EXPECT_EQ(ptr->dtype(), kFloat64) << name;
    EXPECT_TRUE(ptr->is_leaf() && ptr->requires_grad()) << name;
  }
  EXPECT_EQ(net.bn().running_var().dtype(), kFloat64);
  EXPECT_EQ(net.named_buffers()[2].second->dtype(), kInt64);  // num_batches_tracked stays
  net.to(Device::cpu());
  sum(net(test::random_normal({3, 3}))).backward();
  EXPECT_TRUE(net.parameters()[0].grad().defined());
  net.zero_grad();
  for (const Tensor& p : net.parameters()) EXPECT_FALSE(p.grad().defined());
  EMBER_EXPECT_THROW_WITH(net.to(kInt64), DTypeError, "floating");
}

TEST(Module, ModulesMoveButDoNotCopy) {
  nn::Linear a(2, 3, true, f64());
  const Tensor w = a.weight();
  nn::Linear b(std::move(a));
  EXPECT_EQ(b.weight().data_ptr(), w.data_ptr());
  EXPECT_EQ(b.named_parameters()[0].second, &b.weight());
  static_assert(!std::is_copy_constructible_v<nn::Linear>);
}

// ------------------------------------------------------------------ state dicts ----

TEST_F(StateDict, RoundTripThroughAFile) {
  Generator g1(1), g2(2);
  RefNet a(f64(), &g1), b(f64(), &g2);
  a.train();
  a(test::random_normal({6, 3}));  // running statistics move away from their start
  const fs::path file = temp_file("net.safetensors");
  a.save(file.string());
  b.load(file.string());
  const nn::StateDict sa = a.state_dict(), sb = b.state_dict();
  ASSERT_EQ(keys(sa), keys(sb));
  for (const auto& [k, v] : sa) {
    SCOPED_TRACE(k);
    EXPECT_EQ(sb.at(k).dtype(), v.dtype());
    test::expect_close(sb.at(k), v, 0, 0);
  }
  EXPECT_EQ(b.bn().num_batches_tracked(), 1);
  a.eval();
  b.eval();
  const Tensor x = test::random_normal({4, 3});
  test::expect_close(b(x), a(x), 0, 0);
  // Loading writes in place: the parameters stay the same leaves.
  const Tensor* slot = b.named_parameters()[0].second;
  const void* data = slot->data_ptr();
  b.load(file.string());
  EXPECT_EQ(slot->data_ptr(), data);
  // The file is plain safetensors with torch's names.
  const nn::StateDict raw = nn::load_safetensors(file.string());
  EXPECT_EQ(keys(raw), keys(sa));
  EXPECT_EQ(raw.at("bn.num_batches_tracked").dim(), 0);
}

TEST_F(StateDict, LoadsTheNumPyWrittenTorchLayoutFile) {
  RefNet net;  // float32, as the file
  net.load(test::reference_file("nn_state.safetensors"));
  EXPECT_EQ(net.bn().num_batches_tracked(), 7);
  const nn::StateDict io = nn::load_safetensors(test::reference_file("nn_io.safetensors"));
  const Tensor x = io.at("x").to(kFloat32);
  net.eval();
  test::expect_close(net(x), io.at("y_eval"), 1e-5, 1e-6);
  net.train();
  test::expect_close(net(x), io.at("y_train"), 1e-5, 1e-6);
  test::expect_close(net.bn().running_mean(), io.at("running_mean_after"), 1e-5, 1e-6);
  test::expect_close(net.bn().running_var(), io.at("running_var_after"), 1e-5, 1e-6);
  EXPECT_EQ(net.bn().num_batches_tracked(), 8);
}

TEST_F(StateDict, StrictChecksNameTheFileAndTheKey) {
  RefNet net;
  const nn::StateDict good = net.state_dict();
  const fs::path file = temp_file("bad.safetensors");
  const std::string path = file.string();
  auto write_without = [&](const std::string& key, const nn::StateDict& extra) {
    nn::StateDict d = good;
    d.erase(key);
    for (const auto& [k, v] : extra) d[k] = v;
    nn::save_safetensors(path, d);
  };
  write_without("fc2.bias", {});
  EMBER_EXPECT_THROW_WITH(net.load(path), IoError, path, "no tensor for key 'fc2.bias'");
  write_without("", {{"fc3.weight", zeros({1})}});
  EMBER_EXPECT_THROW_WITH(net.load(path), IoError, path, "unexpected key 'fc3.weight'");
  write_without("", {{"fc1.weight", zeros({3, 4})}});
  EMBER_EXPECT_THROW_WITH(net.load(path), ShapeError, path, "'fc1.weight'", "(3, 4)", "(4, 3)");
  write_without("", {{"bn.weight", zeros({4}, f64())}});
  EMBER_EXPECT_THROW_WITH(net.load(path), IoError, path, "'bn.weight'", "float64", "float32");
  EMBER_EXPECT_THROW_WITH(net.load(path + ".missing"), IoError, ".missing");
  // Non-strict loading skips missing and unexpected keys but not shapes.
  write_without("fc2.bias", {{"extra", zeros({1})}, {"fc1.bias", ones({4})}});
  net.load(path, false);
  test::expect_values(*net.named_parameters()[1].second, {1, 1, 1, 1});
  write_without("", {{"fc1.bias", zeros({5})}});
  EMBER_EXPECT_THROW_WITH(net.load(path, false), ShapeError, "'fc1.bias'");
  // In memory the same checks raise ValueError and DTypeError.
  nn::StateDict d = good;
  d.erase("bn.bias");
  EMBER_EXPECT_THROW_WITH(net.load_state_dict(d), ValueError, "load_state_dict", "'bn.bias'");
  d = good;
  d["bn.bias"] = zeros({4}, f64());
  EMBER_EXPECT_THROW_WITH(net.load_state_dict(d), DTypeError, "'bn.bias'");
}

TEST_F(StateDict, LoadingIsAllOrNothing) {
  RefNet net;
  const nn::StateDict before = net.state_dict();
  std::vector<std::vector<double>> values;
  for (const auto& [k, v] : before) values.push_back(v.to_vector<double>());
  nn::StateDict d;
  for (const auto& [k, v] : before) d[k] = full_like(v, 3.0);
  d["fc2.weight"] = zeros({2, 5});  // the last key checked is wrong
  const fs::path file = temp_file("partial.safetensors");
  nn::save_safetensors(file.string(), d);
  EXPECT_THROW(net.load(file.string()), ShapeError);
  EXPECT_THROW(net.load_state_dict(d), ShapeError);
  std::size_t i = 0;
  for (const auto& [k, v] : net.state_dict()) EXPECT_EQ(v.to_vector<double>(), values[i++]) << k;
}

TEST_F(StateDict, LoadingUpdatesParamsRegisteredWithModule) {
  clear_param_store();
  RefNet net;
  module("net", net);
  const nn::StateDict d = [&] {
    nn::StateDict out;
    for (const auto& [k, v] : net.state_dict()) out[k] = full_like(v, 0.5);
    return out;
  }();
  net.load_state_dict(d);
  test::expect_values(get_param_store().get("net$$$fc2.bias"), {0.5, 0.5});
  // Buffers are not params.
  EXPECT_FALSE(get_param_store().contains("net$$$bn.running_mean"));
  EXPECT_EQ(get_param_store().size(), 6u);
  clear_param_store();
}

// ----------------------------------------------------------------- initialization ----

struct Summary {
  double min = 1e300, max = -1e300, mean = 0, var = 0;
};
Summary summarize(const Tensor& t) {
  const auto v = t.to_vector<double>();
  Summary s;
  for (double x : v) {
    s.min = std::min(s.min, x);
    s.max = std::max(s.max, x);
    s.mean += x / v.size();
  }
  for (double x : v) s.var += (x - s.mean) * (x - s.mean) / v.size();
  return s;
}

// Uniform in (-bound, bound): inside it, reaching near both ends, mean 0, variance bound^2/3.
void expect_uniform(const Tensor& t, double bound) {
  const Summary s = summarize(t);
  const double n = static_cast<double>(t.numel());
  EXPECT_GT(s.min, -bound);
  EXPECT_LT(s.max, bound);
  EXPECT_LT(s.min, -bound * (1 - 20 / n));
  EXPECT_GT(s.max, bound * (1 - 20 / n));
  EXPECT_NEAR(s.mean, 0.0, 5 * bound / std::sqrt(3 * n));
  EXPECT_NEAR(s.var, bound * bound / 3, 5 * bound * bound / std::sqrt(5 * n));
}

TEST(Init, TorchDefaultBounds) {
  Generator gen(5);
  nn::Linear fc(200, 100, true, {}, &gen);
  expect_uniform(fc.weight(), 1 / std::sqrt(200.0));
  // The bias bound is the same 1/sqrt(fan_in); 100 values are enough for the range test.
  const Summary b = summarize(*fc.bias());
  EXPECT_LT(std::max(-b.min, b.max), 1 / std::sqrt(200.0));
  nn::Conv2d conv(8, 64, {3, 3}, {.groups = 2}, true, {}, &gen);  // fan_in 4 * 9
  expect_uniform(conv.weight(), 1 / 6.0);
  EXPECT_LT(summarize(*conv.bias()).max, 1 / 6.0);
  nn::GRUCell cell(30, 64, true, {}, &gen);
  expect_uniform(*cell.named_parameters()[1].second, 1 / 8.0);
  // Embedding: N(0, 1).
  nn::Embedding emb(1000, 20, std::nullopt, {}, &gen);
  const Summary e = summarize(emb.weight());
  EXPECT_NEAR(e.mean, 0.0, 5 / std::sqrt(20000.0));
  EXPECT_NEAR(e.var, 1.0, 5 * std::sqrt(2 / 20000.0));
  // Kaiming uniform for a ReLU (a = 0): bound sqrt(6 / fan_in).
  expect_uniform(nn::init::kaiming_uniform({50, 10, 2, 2}, 0.0, {}, &gen), std::sqrt(6.0 / 40));
  EXPECT_EQ(nn::init::fan_in({50, 10, 2, 2}), 40);
  EXPECT_EQ(nn::init::fan_in({7}), 7);
  const Summary nrm = summarize(nn::init::normal({20000}, 2.0, 0.5, {}, &gen));
  EXPECT_NEAR(nrm.mean, 2.0, 5 * 0.5 / std::sqrt(20000.0));
  EXPECT_NEAR(std::sqrt(nrm.var), 0.5, 0.02);
}

TEST(Init, ReproducibleBySeed) {
  Generator a(42), b(42), c(43);
  nn::MLP na({4, 8, 2}, {.gen = &a}), nb({4, 8, 2}, {.gen = &b}), nc({4, 8, 2}, {.gen = &c});
  const auto pa = na.parameters(), pb = nb.parameters(), pc = nc.parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(pa[i].to_vector<double>(), pb[i].to_vector<double>());
    EXPECT_NE(pa[i].to_vector<double>(), pc[i].to_vector<double>());
  }
  // Without a generator, the thread's default one: reproducible under set_rng_seed.
  set_rng_seed(9);
  const nn::Linear x(3, 3);
  set_rng_seed(9);
  const nn::Linear y(3, 3);
  EXPECT_EQ(x.weight().to_vector<double>(), y.weight().to_vector<double>());
}

}  // namespace
}  // namespace ember
