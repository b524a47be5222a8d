// Traces: the record of one run of a model or guide, site by site in the order they ran,
// with each sample site's log-density computed on first request and cached.
#pragma once

#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "ember/message.hpp"

namespace ember {

// A recorded site: the message as it left the handlers, plus cached log-densities.
struct Site : Message {
  Site() = default;
  explicit Site(const Message& msg) : Message(msg) {}

  // log p(value) with the site's scale and mask applied (shape: the batch shape). Sample
  // sites only; a ValueError names the site otherwise. A log-density evaluation that
  // fails is rethrown, as the same error type, with the site's name in front.
  const Tensor& log_prob() const;
  // The same without scale and mask.
  const Tensor& unscaled_log_prob() const;
  // sum(log_prob()), a 0-d tensor.
  const Tensor& log_prob_sum() const;
  bool has_log_prob() const { return log_prob_.defined(); }

  bool is_sample() const { return type == SiteType::Sample; }
  bool is_param() const { return type == SiteType::Param; }
  // A latent (unobserved) sample site.
  bool is_stochastic() const { return type == SiteType::Sample && !is_observed; }
  // Whether the value carries reparameterized gradients (drawn by rsample).
  bool is_reparameterized() const { return fn.defined() && fn.has_rsample() && !is_observed; }

 private:
  mutable Tensor unscaled_log_prob_, log_prob_, log_prob_sum_;
};

class Trace {
 public:
  Trace() = default;
  Trace(const Trace&) = default;
  Trace(Trace&&) noexcept = default;
  Trace& operator=(const Trace&) = default;
  Trace& operator=(Trace&&) noexcept = default;
  // Hands its emptied list of sites to the next trace the thread makes (a step makes two).
  ~Trace();

  // Appends a site. A second sample (or subsample) site of one name throws a ValueError
  // naming it; param sites may repeat (the first is kept).
  void add(Site site);
  bool contains(const std::string& name) const;
  // The site of that name; a ValueError names it when absent.
  const Site& at(const std::string& name) const;
  Site& at(const std::string& name);
  const Site* find(const std::string& name) const;

  const std::vector<Site>& sites() const { return sites_; }
  std::vector<Site>::const_iterator begin() const { return sites_.begin(); }
  std::vector<Site>::const_iterator end() const { return sites_.end(); }
  std::size_t size() const { return sites_.size(); }
  bool empty() const { return sites_.empty(); }

  // Latent sample sites, observed sample sites, param sites, in order.
  std::vector<const Site*> stochastic_nodes() const;
  std::vector<const Site*> observation_nodes() const;
  std::vector<const Site*> param_nodes() const;

  // Computes (and caches) every sample site's log_prob, or those `keep` selects.
  void compute_log_prob(const std::function<bool(const Site&)>& keep = nullptr) const;
  // The sum of every sample site's scaled log-density (0-d, on the first site's device);
  // `keep` selects a subset.
  Tensor log_prob_sum(const std::function<bool(const Site&)>& keep = nullptr) const;

  // A table of each site's shapes, as Pyro's Trace.format_shapes: param sites with their
  // value shape, sample sites with their distribution's batch | event shape, the value's,
  // and the log_prob's once computed; plates (and their sizes) first.
  std::string format_shapes() const;

 private:
  // The position of the site named `name`, or -1. A trace of a few sites is searched in order;
  // past kIndexedFrom sites a hash index is kept (built then, at no cost to small traces).
  std::ptrdiff_t position(const std::string& name) const;
  static constexpr std::size_t kIndexedFrom = 16;
  std::vector<Site> sites_;
  std::unordered_map<std::string, std::size_t> index_;
};

}  // namespace ember
