// Traces: recording, lookups, cached log-densities and the shape table.
#include "ember/trace.hpp"

#include <algorithm>
#include <sstream>
#include <vector>

#include "ember/error.hpp"
#include "ember/ops.hpp"
#include "engine/ppl/ppl_util.hpp"

namespace ember {

const Tensor& Site::unscaled_log_prob() const {
  EMBER_CHECK(type == SiteType::Sample, "site '", name, "' is a ", site_type_name(type),
              " site, which has no log-density");
  if (!unscaled_log_prob_.defined()) {
    try {
      unscaled_log_prob_ = fn.log_prob(value);
    } catch (const Error&) {
      rethrow_with_prefix("site '" + name + "' (" + fn.name() + "): ");
    }
  }
  return unscaled_log_prob_;
}

const Tensor& Site::log_prob() const {
  if (!log_prob_.defined()) {
    Tensor lp = unscaled_log_prob();
    if (mask.defined()) lp = where(mask, lp, 0.0);
    if (scale != 1.0) lp = lp * scale;
    log_prob_ = lp;
  }
  return log_prob_;
}

const Tensor& Site::log_prob_sum() const {
  if (!log_prob_sum_.defined()) {
    const Tensor& lp = log_prob();
    log_prob_sum_ = lp.dim() == 0 ? lp : sum(lp);  // a scalar site needs no reduction
  }
  return log_prob_sum_;
}

std::ptrdiff_t Trace::position(const std::string& name) const {
  if (sites_.size() < kIndexedFrom) {
    for (std::size_t i = 0; i < sites_.size(); ++i)
      if (sites_[i].name == name) return static_cast<std::ptrdiff_t>(i);
    return -1;
  }
  auto it = index_.find(name);
  return it == index_.end() ? -1 : static_cast<std::ptrdiff_t>(it->second);
}

namespace {
// Lists of sites of traces that are gone, emptied, for the calling thread's next traces: a step
// traces guide and model anew, and a list taken up again costs no heap block. Lists that grew
// past kKeptSites are let go.
constexpr std::size_t kKeptLists = 4, kKeptSites = 64;
thread_local bool t_site_lists_gone = false;  // trivially destructible: readable at thread exit
struct SiteLists {
  std::vector<std::vector<Site>> lists;
  ~SiteLists() { t_site_lists_gone = true; }
};
thread_local SiteLists t_site_lists;

void take_site_list(std::vector<Site>& sites) {
  if (!t_site_lists_gone && !t_site_lists.lists.empty()) {
    sites = std::move(t_site_lists.lists.back());
    t_site_lists.lists.pop_back();
  }
  if (sites.capacity() < 8) sites.reserve(8);
}
}  // namespace

Trace::~Trace() {
  if (t_site_lists_gone || sites_.capacity() == 0 || sites_.capacity() > kKeptSites) return;
  try {
    std::vector<std::vector<Site>>& lists = t_site_lists.lists;
    if (lists.size() >= kKeptLists) return;
    sites_.clear();
    lists.push_back(std::move(sites_));
  } catch (...) {  // no room to keep the list: it is freed as any other
  }
}

void Trace::add(Site site) {
  if (const std::ptrdiff_t at = position(site.name); at >= 0) {
    const Site& prior = sites_[static_cast<std::size_t>(at)];
    // A plate entered twice records its (shared) indices once.
    if (site.type == SiteType::Subsample && prior.type == SiteType::Subsample &&
        site.plate_size == prior.plate_size && site.value.data_ptr() == prior.value.data_ptr()) {
      return;
    }
    EMBER_CHECK(site.type == SiteType::Param && prior.type == SiteType::Param, "the trace has two ",
                "sites named '", site.name, "' (", site_type_name(prior.type), " and ",
                site_type_name(site.type), "); site names must be unique within a run");
    return;  // a param read twice: the first record stands
  }
  if (sites_.capacity() == 0) take_site_list(sites_);
  sites_.push_back(std::move(site));
  if (sites_.size() == kIndexedFrom) {
    for (std::size_t i = 0; i < sites_.size(); ++i) index_.emplace(sites_[i].name, i);
  } else if (sites_.size() > kIndexedFrom) {
    index_.emplace(sites_.back().name, sites_.size() - 1);
  }
}

bool Trace::contains(const std::string& name) const { return position(name) >= 0; }

const Site* Trace::find(const std::string& name) const {
  const std::ptrdiff_t at = position(name);
  return at < 0 ? nullptr : &sites_[static_cast<std::size_t>(at)];
}

const Site& Trace::at(const std::string& name) const {
  const Site* s = find(name);
  EMBER_CHECK(s != nullptr, "the trace has no site named '", name, "'");
  return *s;
}

Site& Trace::at(const std::string& name) {
  return const_cast<Site&>(static_cast<const Trace*>(this)->at(name));
}

namespace {
std::vector<const Site*> select(const std::vector<Site>& sites, bool (Site::*pred)() const) {
  std::vector<const Site*> out;
  for (const Site& s : sites) {
    if ((s.*pred)()) out.push_back(&s);
  }
  return out;
}
}  // namespace

std::vector<const Site*> Trace::stochastic_nodes() const {
  return select(sites_, &Site::is_stochastic);
}
std::vector<const Site*> Trace::observation_nodes() const {
  std::vector<const Site*> out;
  for (const Site& s : sites_) {
    if (s.is_sample() && s.is_observed) out.push_back(&s);
  }
  return out;
}
std::vector<const Site*> Trace::param_nodes() const { return select(sites_, &Site::is_param); }

void Trace::compute_log_prob(const std::function<bool(const Site&)>& keep) const {
  for (const Site& s : sites_) {
    if (s.is_sample() && (!keep || keep(s))) s.log_prob();
  }
}

Tensor Trace::log_prob_sum(const std::function<bool(const Site&)>& keep) const {
  Tensor total;
  for (const Site& s : sites_) {
    if (!s.is_sample() || (keep && !keep(s))) continue;
    total = total.defined() ? total + s.log_prob_sum() : s.log_prob_sum();
  }
  return total.defined() ? total : scalar_tensor(0.0);
}

namespace {

std::string dims_str(const Shape& s, int from, int to) {
  std::ostringstream os;
  for (int i = from; i < to; ++i) os << (i > from ? " " : "") << s[i];
  return os.str();
}

}  // namespace

std::string Trace::format_shapes() const {
  // Rows of (name, label, batch dims, event dims); columns padded to their widest entry.
  struct Row {
    std::string name, label, batch, event;
    bool split;
  };
  std::vector<Row> params, samples;
  std::vector<std::pair<std::string, std::string>> plates;
  for (const Site& s : sites_) {
    if (s.type == SiteType::Subsample) {
      std::ostringstream os;
      os << "size " << s.plate_size;
      if (s.subsample_size < s.plate_size) os << ", subsample " << s.subsample_size;
      plates.emplace_back(s.name, os.str());
    } else if (s.type == SiteType::Param) {
      params.push_back({s.name, "", dims_str(s.value.shape(), 0, s.value.dim()), "", false});
    } else {
      const Shape& b = s.fn.batch_shape();
      const Shape& e = s.fn.event_shape();
      samples.push_back({s.name, "dist", dims_str(b, 0, b.size()), dims_str(e, 0, e.size()), true});
      if (s.value.defined()) {
        const Shape& v = s.value.shape();
        const int split = std::max(0, v.size() - e.size());
        samples.push_back({"", "value", dims_str(v, 0, split), dims_str(v, split, v.size()), true});
      }
      if (s.has_log_prob()) {
        const Shape& l = s.log_prob().shape();
        samples.push_back({"", "log_prob", dims_str(l, 0, l.size()), "", true});
      }
    }
  }
  std::size_t wname = 11, wlabel = 0, wbatch = 0;
  for (const auto* rows : {&params, &samples}) {
    for (const Row& r : *rows) {
      wname = std::max(wname, r.name.size());
      wlabel = std::max(wlabel, r.label.size());
      wbatch = std::max(wbatch, r.batch.size());
    }
  }
  for (const auto& p : plates) wname = std::max(wname, p.first.size());
  std::ostringstream os;
  auto pad_left = [](const std::string& s, std::size_t w) {
    return std::string(w > s.size() ? w - s.size() : 0, ' ') + s;
  };
  auto emit = [&](const Row& r) {
    os << pad_left(r.name, wname) << ' ' << pad_left(r.label, wlabel) << ' '
       << pad_left(r.batch, wbatch);
    if (r.split) os << " | " << r.event;
    std::string line = os.str();
    os.str("");
    while (!line.empty() && line.back() == ' ') line.pop_back();
    return line + "\n";
  };
  std::string out = pad_left("Trace Shapes:", wname + 2) + "\n";
  if (!plates.empty()) {
    out += pad_left("Plates:", wname) + "\n";
    for (const auto& [name, what] : plates) out += pad_left(name, wname) + " " + what + "\n";
  }
  out += pad_left("Param Sites:", wname) + "\n";
  for (const Row& r : params) out += emit(r);
  out += pad_left("Sample Sites:", wname) + "\n";
  for (const Row& r : samples) out += emit(r);
  return out;
}

}  // namespace ember
