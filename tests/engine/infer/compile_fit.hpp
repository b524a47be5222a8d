// What the compiled-step tests share: a fit of a few SVI steps, eager or compiled, from one
// seed, and the check that two fits agree bit for bit.
#pragma once

#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "test_util.hpp"

namespace ember::test {

struct Fit {
  std::vector<double> losses;
  std::map<std::string, std::vector<double>> params;
  CompileStats stats;
};

// `steps` steps of SVI(model, guide, opt, loss) from seed 99 in a fresh store, compiled (with
// `compile_options`) or not; `args(i)` gives step i's arguments as a tuple.
template <typename Model, typename Guide, typename Opt, typename Loss, typename ArgsAt>
Fit fit(Model model, Guide guide, Opt opt, Loss loss, bool compiled, int steps, ArgsAt args,
        SVIOptions options = {}, const CompileOptions& compile_options = {}) {
  ParamStore store;
  options.param_store = &store;
  set_rng_seed(99);
  SVI svi(model, guide, std::move(opt), std::move(loss), options);
  if (compiled) svi.compile(compile_options);
  Fit f;
  for (int i = 0; i < steps; ++i) {
    f.losses.push_back(
        std::apply([&](const auto&... a) { return svi.step(a...).value(); }, args(i)));
  }
  for (const std::string& name : store.names())
    f.params[name] = store.get(name).to(kFloat64).flatten().template to_vector<double>();
  f.stats = svi.compile_stats();
  return f;
}

inline void expect_identical(const Fit& eager, const Fit& compiled) {
  ASSERT_EQ(eager.losses.size(), compiled.losses.size());
  for (std::size_t i = 0; i < eager.losses.size(); ++i) {
    EXPECT_EQ(std::memcmp(&eager.losses[i], &compiled.losses[i], sizeof(double)), 0)
        << "step " << i << ": eager loss " << eager.losses[i] << ", compiled "
        << compiled.losses[i];
  }
  ASSERT_EQ(eager.params.size(), compiled.params.size());
  for (const auto& [name, values] : eager.params) {
    ASSERT_TRUE(compiled.params.count(name)) << name;
    const std::vector<double>& other = compiled.params.at(name);
    ASSERT_EQ(values.size(), other.size()) << name;
    for (std::size_t k = 0; k < values.size(); ++k)
      EXPECT_EQ(values[k], other[k]) << "param " << name << "[" << k << "]";
  }
  // The compiled run did replay: it is not the eager path under another name.
  EXPECT_GE(compiled.stats.recordings, 1);
  EXPECT_GE(compiled.stats.replays, static_cast<std::int64_t>(eager.losses.size()) - 3);
}

inline auto no_args = [](int) { return std::tuple<>(); };

}  // namespace ember::test
