// Ember inside a multi-threaded C++ service (docs/examples/service_threads.md), on Pyro's coin
// (examples/coin.hpp: a Beta(10, 10) prior, Bernoulli flips, a Beta guide), whose exact
// posterior after h heads and t tails is Beta(10 + h, 10 + t):
//
//  1. Tenants in parallel: one fit per tenant, each in a thread of its own with a ParamStore
//     of its own, compiled; the fits run at once and each lands on its own exact posterior.
//  2. One model, many request threads: every request thread steps the same SVI on the same
//     store. Steps take turns (the SVI's lock and the store's training_mutex()), so the fit
//     is one fit of all their steps; a monitoring thread reads consistent snapshots of the
//     parameters under the store's training_mutex() while training goes on.
//  3. Serving: posterior predictive draws from several threads at once, each with its own
//     generator, from the fitted store.
//
//   service_threads [--tenants 4] [--steps 3000] [--requests 4]
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ember/ember.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "examples/coin.hpp"

using namespace ember;

namespace {

struct Posterior {
  double mean, sd;
};

Posterior beta_moments(double a, double b) {
  return {a / (a + b), std::sqrt(a * b / ((a + b) * (a + b) * (a + b + 1)))};
}

// The guide's Beta, read from a store.
Posterior fitted(const ParamStore& store) {
  return beta_moments(store.get("alpha_q").item(), store.get("beta_q").item());
}

// n flips of which `heads` come first.
Tensor flips_with(int heads, int n) {
  std::vector<float> v(static_cast<std::size_t>(n), 0.0f);
  for (int i = 0; i < heads; ++i) v[static_cast<std::size_t>(i)] = 1.0f;
  return from_vector(v, {n});
}

// Whether the fit is within `tol` of the exact posterior's mean, printed beside it.
bool report(const char* who, const Posterior& got, int heads, int tails, double tol) {
  const Posterior exact = beta_moments(10.0 + heads, 10.0 + tails);
  const bool close = std::abs(got.mean - exact.mean) < tol;
  std::printf("  %-10s fairness %.4f +- %.4f   exact Beta(%d, %d): %.4f +- %.4f%s\n", who, got.mean,
              got.sd, 10 + heads, 10 + tails, exact.mean, exact.sd,
              close ? "" : "   (not yet close)");
  return close;
}

int int_option(int argc, char** argv, const char* name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const int tenants = int_option(argc, argv, "--tenants", 4);
  const int steps = int_option(argc, argv, "--steps", 3000);
  const int requests = int_option(argc, argv, "--requests", 4);
  // A third of the posterior sd (0.09): SVI's last iterate wanders by about a tenth of it.
  const double tol = 0.03;
  bool all_close = true;

  // ---- 1. tenants in parallel: a store, an SVI and a thread each ----
  std::printf("1. %d tenants fitted in parallel, %d compiled steps each\n", tenants, steps);
  std::vector<std::unique_ptr<ParamStore>> stores;
  std::vector<int> heads;
  for (int t = 0; t < tenants; ++t) {
    stores.push_back(std::make_unique<ParamStore>());
    heads.push_back(2 + 2 * t % 9);  // of 10 flips
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < tenants; ++t) {
    threads.emplace_back([&, t] {
      set_rng_seed(100 + static_cast<std::uint64_t>(t));  // this thread's draws
      SVI svi(coin::model, coin::guide, optim::Adam({.lr = 5e-3}), Trace_ELBO(),
              {.param_store = stores[static_cast<std::size_t>(t)].get()});
      svi.compile();
      const Tensor flips = flips_with(heads[static_cast<std::size_t>(t)], 10);
      for (int i = 0; i < steps; ++i) svi.step(flips);
    });
  }
  for (std::thread& th : threads) th.join();
  threads.clear();
  for (int t = 0; t < tenants; ++t) {
    const std::string who = "tenant " + std::to_string(t);
    const int h = heads[static_cast<std::size_t>(t)];
    all_close &= report(who.c_str(), fitted(*stores[static_cast<std::size_t>(t)]), h, 10 - h, tol);
  }

  // ---- 2. one model stepped by request threads, watched by a monitor ----
  std::printf("2. one SVI stepped by %d request threads, %d steps in all, with a monitor\n",
              requests, steps);
  ParamStore shared_store;
  SVI shared(coin::model, coin::guide, optim::Adam({.lr = 5e-3}), Trace_ELBO(),
             {.param_store = &shared_store});
  shared.compile();
  const Tensor flips = flips_with(6, 10);
  shared.step(flips);  // makes the parameters before the monitor reads them
  std::atomic<bool> training{true};
  int snapshots = 0;
  bool snapshots_ok = true;
  std::thread monitor([&] {
    while (training.load()) {
      double a, b;
      {
        // The parameters as one step left them: no step runs while the lock is held.
        const std::lock_guard<std::recursive_mutex> turn(shared_store.training_mutex());
        a = shared_store.get("alpha_q").item();
        b = shared_store.get("beta_q").item();
      }
      snapshots_ok &= std::isfinite(a) && std::isfinite(b) && a > 0 && b > 0;
      ++snapshots;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  for (int r = 0; r < requests; ++r) {
    threads.emplace_back([&, r] {
      set_rng_seed(200 + static_cast<std::uint64_t>(r));
      for (int i = r; i < steps; i += requests) shared.step(flips);
    });
  }
  for (std::thread& th : threads) th.join();
  threads.clear();
  training = false;
  monitor.join();
  all_close &= report("shared", fitted(shared_store), 6, 4, tol);
  std::printf("  %lld steps taken; the monitor read %d snapshots%s\n",
              static_cast<long long>(shared.num_steps_taken()), snapshots,
              snapshots_ok ? ", every one valid" : ", SOME INVALID");
  all_close &= snapshots_ok;

  // ---- 3. serving: predictive draws from several threads at once ----
  std::printf("3. posterior predictive from %d threads at once, 4000 draws each\n", requests);
  std::vector<double> means(static_cast<std::size_t>(requests));
  for (int r = 0; r < requests; ++r) {
    threads.emplace_back([&, r] {
      set_rng_seed(300 + static_cast<std::uint64_t>(r));
      const ParamStoreScope scope(shared_store);  // the guide reads the fitted parameters
      const Predictive predictive(coin::model, coin::guide,
                                  {.num_samples = 4000, .return_sites = {"latent_fairness"}});
      const handlers::ValueMap draws = predictive(flips);
      means[static_cast<std::size_t>(r)] = mean(draws.at("latent_fairness")).item();
    });
  }
  for (std::thread& th : threads) th.join();
  const Posterior served = fitted(shared_store);
  for (int r = 0; r < requests; ++r) {
    // 4000 draws: the mean's standard error is about sd / 63.
    const double m = means[static_cast<std::size_t>(r)];
    const bool ok = std::abs(m - served.mean) < 5 * served.sd / std::sqrt(4000.0);
    std::printf("  thread %d: mean of its draws %.4f (the guide's mean %.4f)%s\n", r, m,
                served.mean, ok ? "" : "   (off)");
    all_close &= ok;
  }
  std::printf(all_close ? "every fit and every draw agrees with its posterior\n"
                        : "some fits or draws are off their posteriors\n");
  return all_close ? 0 : 1;
}
