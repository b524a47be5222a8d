// Helpers the ELBO estimators share.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ember/enumerate.hpp"
#include "ember/infer.hpp"
#include "ember/trace.hpp"

namespace ember::detail {

// The plate of vectorized particles: size num_particles, at dim -(max_plate_nesting + 1).
struct ParticlePlate {
  std::int64_t size;
  int dim;
};

// The two runs of one estimate: the guide under trace, then the model under trace and replay
// of the guide's trace (so its latent sites take the guide's values), both inside `particles`
// when given. Each run is timed as its phase of the step (ember/profile.hpp).
struct TracePair {
  Trace guide;
  Trace model;
};
// The plate dims the programs' vectorized plates use: the largest -dim over their sites'
// plates (0 with none), as Pyro's guess_max_plate_nesting reads a traced run.
int plate_nesting_of(const TracePair& traces);

// How the two runs enumerate discrete sites (TraceEnum_ELBO, infer_discrete).
struct EnumSetup {
  // Negative: the model's Enumerate::Parallel sites take dims from here leftwards; 0: no
  // enumeration.
  int first_dim = 0;
  // The guide's Enumerate::Parallel sites too (from first_dim; the model's then start left of
  // the guide's), and its Enumerate::Sequential sites from `schedule`.
  bool guide = false;
  handlers::SequentialEnumHandler::Schedule* schedule = nullptr;
};

TracePair trace_pair(const std::function<void()>& model, const std::function<void()>& guide,
                     const std::optional<ParticlePlate>& particles = std::nullopt,
                     const EnumSetup& enumerate = {});

// What validation checks in one estimate's traces (engine/infer/validation.cpp), as Pyro's
// check_model_guide_match and check_site_shape. Throws where a site's shapes make the loss
// wrong (a log-density broadcast over dims no plate owns, model and guide shapes that
// disagree); warns (ember::warn) where names do not match (a guide site the model lacks, a
// model latent the guide lacks, a guide site the model observes, a guide plate the model
// lacks). max_plate_nesting: the plate dims allowed, the particles' plate included; dims
// further left are not checked (-1: no limit).
void validate_traces(const TracePair& traces, int max_plate_nesting);

// The first non-finite element of t, as "value nan at index [2, 0]"; empty when every element
// is finite. Reads t on the host: for naming a culprit once a check has failed.
std::string first_nonfinite(const Tensor& t);

// The first sample site, guide sites first, whose log-density is not finite (its name empty
// when none is). Reads every site's log-density on the host.
NonFiniteSite first_nonfinite_site(const TracePair& traces);

// Σ model log p - Σ guide log q over sample sites, detached.
Tensor elbo_value(const Trace& model_trace, const Trace& guide_trace);

// The site's vectorized plates (Pyro's plate stack).
std::vector<PlateFrame> vectorized_frames(const Site& site);

// Cost terms, each with the plates it lies in (Pyro's MultiFrameTensor): sum_to(target)
// sums each term over the plate dims not in `target` and adds the results, so a site
// sees, per element of its own plates, only the costs of that element (and of the sites
// outside those plates).
class CostTerms {
 public:
  void add(const Tensor& value, std::vector<PlateFrame> frames);
  Tensor sum_to(const std::vector<PlateFrame>& target) const;
  bool empty() const { return terms_.empty(); }

 private:
  struct Term {
    Tensor value;
    std::vector<PlateFrame> frames;
  };
  std::vector<Term> terms_;
};

// sum(log q(site) * stopgrad(weight)): the score-function surrogate of one site.
Tensor score_term(const Site& site, const Tensor& weight);

}  // namespace ember::detail
