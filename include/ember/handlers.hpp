// Effect handlers (Pyro's poutine), each in two forms:
//  - a scope (RAII): `handlers::ConditionHandler c(data); model();` handles every site
//    the calling thread reaches while `c` is alive;
//  - a wrapper: `auto conditioned = handlers::condition(model, data);` returns a callable
//    that runs model under the handler, so handlers compose: trace(replay(model, tr)).
// Every handler is a Messenger on the calling thread's stack (ember/message.hpp); models
// running in different threads never see each other's handlers.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "ember/message.hpp"
#include "ember/random.hpp"
#include "ember/trace.hpp"

namespace ember::handlers {

using ValueMap = std::unordered_map<std::string, Tensor>;

// ---- the scopes ----

// Records every site into a Trace. A plate of a name already in the trace (with the same
// sizes) reuses the indices recorded for it.
class TraceHandler : public Messenger {
 public:
  const Trace& trace() const { return trace_; }
  Trace take() { return std::move(trace_); }
  void process_message(Message& msg) override;
  void postprocess_message(Message& msg) override;

 private:
  Trace trace_;
};

// Latent sample sites (and plate subsamples) named in `trace` take the recorded values;
// replaying an observed or param site of the trace onto a latent one throws.
class ReplayHandler : public Messenger {
 public:
  explicit ReplayHandler(const Trace& trace) : trace_(&trace) {}
  void process_message(Message& msg) override;

 private:
  const Trace* trace_;
};

// Sample sites named in `data` become observed at the given values.
class ConditionHandler : public Messenger {
 public:
  explicit ConditionHandler(ValueMap data) : data_(std::move(data)) {}
  void process_message(Message& msg) override;

 private:
  ValueMap data_;
};

// An intervention (Pyro's do): a sample site named in `data` is still sampled and recorded
// under its own name, but the program continues with the given value, so what follows no
// longer depends on the site.
class DoHandler : public Messenger {
 public:
  explicit DoHandler(ValueMap data) : data_(std::move(data)) {}
  void process_message(Message& msg) override;

 private:
  ValueMap data_;
};

// Which sites a BlockHandler hides from the handlers outside it. Give at most one kind of
// selection: a function, names/types to hide, or names/types to expose (all others hidden).
// With none, every site is hidden.
struct BlockOptions {
  std::function<bool(const Message&)> hide_fn;
  std::function<bool(const Message&)> expose_fn;
  std::vector<std::string> hide;
  std::vector<std::string> expose;
  std::vector<SiteType> hide_types;
  std::vector<SiteType> expose_types;
};
class BlockHandler : public Messenger {
 public:
  explicit BlockHandler(BlockOptions opts = {});
  void process_message(Message& msg) override;
  bool hides(const Message& msg) const;

 private:
  BlockOptions opts_;
  std::unordered_set<std::string> names_;
  enum class Mode { Fn, ExposeFn, Hide, Expose, All } mode_;
};

// Multiplies sample sites' log-densities by `factor` (> 0).
class ScaleHandler : public Messenger {
 public:
  explicit ScaleHandler(double factor);
  void process_message(Message& msg) override;

 private:
  double factor_;
};

// Zeroes sample sites' log-densities where `mask` (bool, broadcast to the batch shape) is
// false; nested masks combine with logical and.
class MaskHandler : public Messenger {
 public:
  explicit MaskHandler(Tensor mask);
  explicit MaskHandler(bool keep);
  void process_message(Message& msg) override;

 private:
  Tensor mask_;
};

// Every draw in the scope (sample sites and plain rand/randn) comes from a generator seeded
// with `seed`, so a run is reproducible whatever the thread's own stream is doing.
class SeedHandler {
 public:
  explicit SeedHandler(std::uint64_t seed) : gen_(seed), scope_(gen_) {}
  Generator& generator() { return gen_; }

 private:
  Generator gen_;
  GeneratorScope scope_;
};

// Sample and param sites named in `data` take the given values (not observed).
class SubstituteHandler : public Messenger {
 public:
  explicit SubstituteHandler(ValueMap data) : data_(std::move(data)) {}
  void process_message(Message& msg) override;

 private:
  ValueMap data_;
};

// Observed sample sites are sampled instead (their observation kept in infer.obs).
class UnconditionHandler : public Messenger {
 public:
  void process_message(Message& msg) override;
};

// Param sites become latent sample sites drawn from a prior: one distribution for every
// param, or one per name (params without an entry stay params).
class LiftHandler : public Messenger {
 public:
  explicit LiftHandler(dist::Distribution prior) : all_(std::move(prior)) {}
  explicit LiftHandler(std::unordered_map<std::string, dist::Distribution> priors)
      : priors_(std::move(priors)) {}
  void process_message(Message& msg) override;

 private:
  dist::Distribution all_;
  std::unordered_map<std::string, dist::Distribution> priors_;
};

}  // namespace ember::handlers

// ---- the wrappers ----
namespace ember::detail {

// A callable that runs fn under a fresh Handler(handler_args...) each call.
template <typename Handler, typename F, typename... HArgs>
auto wrap(F fn, HArgs... handler_args) {
  return [fn = std::move(fn),
          ... handler_args = std::move(handler_args)](auto&&... args) mutable -> decltype(auto) {
    Handler handler(handler_args...);
    return fn(std::forward<decltype(args)>(args)...);
  };
}

}  // namespace ember::detail

namespace ember::handlers {

// trace(fn).get_trace(args...) runs fn(args...) and returns its trace.
template <typename F>
class Traced {
 public:
  explicit Traced(F fn) : fn_(std::move(fn)) {}
  template <typename... Args>
  Trace get_trace(Args&&... args) {
    TraceHandler tracer;
    fn_(std::forward<Args>(args)...);
    return tracer.take();
  }
  // Runs fn and returns its result; the trace is kept in last_trace().
  template <typename... Args>
  decltype(auto) operator()(Args&&... args) {
    struct Keep {
      TraceHandler tracer;
      Trace* out;
      ~Keep() { *out = tracer.take(); }
    } keep{{}, &last_};
    return fn_(std::forward<Args>(args)...);
  }
  const Trace& last_trace() const { return last_; }

 private:
  F fn_;
  Trace last_;
};

template <typename F>
Traced<F> trace(F fn) {
  return Traced<F>(std::move(fn));
}

template <typename F>
auto replay(F fn, Trace guide_trace) {
  auto shared = std::make_shared<const Trace>(std::move(guide_trace));
  return [fn = std::move(fn), shared](auto&&... args) mutable -> decltype(auto) {
    ReplayHandler handler(*shared);
    return fn(std::forward<decltype(args)>(args)...);
  };
}

template <typename F>
auto condition(F fn, ValueMap data) {
  return detail::wrap<ConditionHandler>(std::move(fn), std::move(data));
}

// Pyro's do (a C++ keyword, hence the underscore).
template <typename F>
auto do_(F fn, ValueMap data) {
  return detail::wrap<DoHandler>(std::move(fn), std::move(data));
}

template <typename F>
auto block(F fn, BlockOptions opts = {}) {
  return detail::wrap<BlockHandler>(std::move(fn), std::move(opts));
}

template <typename F>
auto scale(F fn, double factor) {
  return detail::wrap<ScaleHandler>(std::move(fn), factor);
}

template <typename F>
auto mask(F fn, Tensor mask) {
  return detail::wrap<MaskHandler>(std::move(fn), std::move(mask));
}

template <typename F>
auto seed(F fn, std::uint64_t seed) {
  return detail::wrap<SeedHandler>(std::move(fn), seed);
}

template <typename F>
auto substitute(F fn, ValueMap data) {
  return detail::wrap<SubstituteHandler>(std::move(fn), std::move(data));
}

template <typename F>
auto uncondition(F fn) {
  return detail::wrap<UnconditionHandler>(std::move(fn));
}

template <typename F>
auto lift(F fn, dist::Distribution prior) {
  return detail::wrap<LiftHandler>(std::move(fn), std::move(prior));
}

template <typename F>
auto lift(F fn, std::unordered_map<std::string, dist::Distribution> priors) {
  return detail::wrap<LiftHandler>(std::move(fn), std::move(priors));
}

}  // namespace ember::handlers
