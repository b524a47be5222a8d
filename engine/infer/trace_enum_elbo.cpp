// TraceEnum_ELBO and infer_discrete: the model's log-density contracted over its enumerated
// sites. Factors (sites' log-densities) that depend on no enumerated site are summed
// directly; the others go to tensor variable elimination (Obermeyer et al. 2019): the plate
// sets ("ordinals") are taken from the most plated down; at each, the enumerated variables
// local to it are eliminated (logsumexp, or max for a MAP), then the plates it has beyond its
// parent are summed out (a product of probabilities). Along a markov scope the factors of a
// step are added in step order and a variable is eliminated as soon as no later step reads it,
// so a chain costs O(T K^(h+1)) and its dims can be reused.
#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <sstream>

#include "ember/enumerate.hpp"
#include "ember/error.hpp"
#include "ember/infer.hpp"
#include "ember/linalg.hpp"
#include "ember/ops.hpp"
#include "engine/infer/elbo_util.hpp"
#include "engine/internal.hpp"

namespace ember {
namespace detail {
namespace {

using Ordinal = std::set<std::string>;

std::string describe(const Ordinal& o) {
  if (o.empty()) return "no plate";
  std::string s;
  for (const std::string& p : o) s += (s.empty() ? "" : ", ") + p;
  return "plates {" + s + "}";
}

// An enumerated site.
struct Var {
  const Site* site;
  int dim;
  std::int64_t size;
  Ordinal ordinal;
  std::int64_t step;  // markov step, -1 outside any
  int history;
};

// A short list of dims (at most a tensor's rank), inline: the contractions build several at every
// time step of an enumerated chain.
using DimList = InlineVector<int, kMaxRank>;
std::span<const int> dims_of(const DimList& l) { return {l.begin(), l.size()}; }

// A term's enumerated variables by dim (variable index at each enumerated dim it holds), in
// dim order: a short sorted list without a heap block, where a map's nodes were thousands of
// heap blocks a step in an enumerated chain. At most one variable per dim of a tensor.
class DimVars {
 public:
  using value_type = std::pair<int, std::size_t>;
  const value_type* begin() const { return v_.data(); }
  const value_type* end() const { return v_.data() + n_; }
  bool empty() const { return n_ == 0; }
  bool contains(int dim) const { return find(dim) != end(); }
  const value_type* find(int dim) const {
    for (const value_type& e : *this)
      if (e.first == dim) return &e;
    return end();
  }
  // As std::map::emplace: nothing changes where the dim is already held.
  std::pair<const value_type*, bool> emplace(int dim, std::size_t var) {
    int at = 0;
    while (at < n_ && v_[at].first < dim) ++at;
    if (at < n_ && v_[at].first == dim) return {&v_[at], false};
    EMBER_CHECK_SHAPE(n_ < kMaxRank, "enumeration: more than ", kMaxRank,
                      " enumerated dims in one term");
    for (int i = n_; i > at; --i) v_[i] = v_[i - 1];
    v_[at] = {dim, var};
    ++n_;
    return {&v_[at], true};
  }
  void erase(int dim) {
    int at = 0;
    while (at < n_ && v_[at].first != dim) ++at;
    if (at == n_) return;
    for (int i = at; i + 1 < n_; ++i) v_[i] = v_[i + 1];
    --n_;
  }

 private:
  std::array<value_type, kMaxRank> v_{};
  int n_ = 0;
};

// A log-density term: a tensor over batch dims, the variables it holds (dim -> var index),
// the plates it lies in, and its markov step.
struct Term {
  Tensor log;
  DimVars vars;
  Ordinal ordinal;
  std::int64_t step = -1;
};

Ordinal ordinal_of(const Site& s) {
  Ordinal o;
  for (const PlateFrame& f : s.cond_indep_stack) {
    if (f.vectorized()) o.insert(f.name);
  }
  return o;
}

bool has_dim(const Tensor& t, int dim) { return t.dim() >= -dim && t.size(dim) > 1; }

enum class Reduce { LogSumExp, Max };

class Eliminator {
 public:
  // `kept`: the guide's enumerated sites, whose dims the model's factors may hold and the
  // contraction keeps (their expectation under the guide is taken afterwards).
  // `scan`: how a chain is contracted in a sum-product without records.
  Eliminator(std::vector<Var> vars, std::map<std::string, PlateFrame> plates, Reduce reduce,
             bool record, std::vector<Var> kept = {}, ChainScan scan = ChainScan::Sequential)
      : vars_(std::move(vars)),
        kept_(std::move(kept)),
        plates_(std::move(plates)),
        reduce_(reduce),
        record_(record),
        scan_(scan) {
    for (std::size_t i = 0; i < vars_.size(); ++i) {
      const Var& v = vars_[i];
      if (v.step < 0) {
        outside_chains_[v.dim].push_back(i);
      } else {
        by_dim_and_step_.emplace(std::make_pair(v.dim, v.step), i);
        max_history_ = std::max(max_history_, v.history);
      }
    }
  }

  // What eliminating a variable saw: the scores over its dim (the others alive in `vars`).
  struct Record {
    std::size_t var;
    Tensor scores;
    DimVars vars;
  };
  const std::vector<Record>& records() const { return records_; }
  const std::vector<Var>& vars() const { return vars_; }

  // The variables a site's log-density holds, by dim: at each of its dims left of the
  // plates, the variable outside any chain that owns it, or the chain's variable of a step
  // the site may read (a dim reused along a chain holds, for a factor of step t, the
  // variable of a step in [t - h, t]).
  DimVars vars_of(const Site& s, const Tensor& log) const {
    DimVars out;
    const std::int64_t step = s.markov_step;
    const Ordinal ordinal = ordinal_of(s);
    auto take = [&](std::size_t i) {
      const Var& v = vars_[i];
      auto [it, fresh] = out.emplace(v.dim, i);
      EMBER_CHECK(fresh, "TraceEnum_ELBO: site '", s.name, "' reads dim ", v.dim,
                  ", which enumerated sites '", vars_[it->second].site->name, "' and '",
                  v.site->name, "' both hold at its step");
      EMBER_CHECK(std::includes(ordinal.begin(), ordinal.end(), v.ordinal.begin(), v.ordinal.end()),
                  "TraceEnum_ELBO: site '", s.name, "' (", describe(ordinal),
                  ") depends on enumerated site '", v.site->name, "' (", describe(v.ordinal),
                  "), which lies in a plate it does not");
    };
    for (int d = -1; d >= -log.dim(); --d) {
      if (log.size(d) <= 1) continue;
      if (auto it = outside_chains_.find(d); it != outside_chains_.end()) {
        for (std::size_t i : it->second) take(i);
      }
      if (step < 0) continue;
      for (std::int64_t past = step - max_history_; past <= step; ++past) {
        auto it = by_dim_and_step_.find({d, past});
        if (it != by_dim_and_step_.end() && step <= past + vars_[it->second].history) {
          take(it->second);
        }
      }
    }
    for (const Var& g : kept_) {
      if (!has_dim(log, g.dim)) continue;
      EMBER_CHECK(std::includes(ordinal.begin(), ordinal.end(), g.ordinal.begin(), g.ordinal.end()),
                  "TraceEnum_ELBO: site '", s.name, "' (", describe(ordinal),
                  ") depends on guide-enumerated site '", g.site->name, "' (", describe(g.ordinal),
                  "), which lies in a plate it does not");
    }
    for (int d = -1; d >= -log.dim(); --d) {
      if (log.size(d) <= 1 || out.contains(d) || kept_dim(d)) continue;
      bool plate_dim = false;
      for (const PlateFrame& f : s.cond_indep_stack) plate_dim = plate_dim || f.dim == d;
      EMBER_CHECK_SHAPE(plate_dim, "TraceEnum_ELBO: the log-density of site '", s.name,
                        "' has size ", log.size(d), " at dim ", d,
                        ", which no plate and no enumerated site it may read owns (shape ",
                        log.shape(), ")");
    }
    return out;
  }

  // Sums (or maximizes) the product of the terms over every variable: what is left is a list
  // of log-density terms that hold no variable, each at the plates (ordinal) where the last
  // variable it held was eliminated, scaled for the plates summed on the way. Their sum over
  // every element (see sum_plates) is the log of the sum; with guide-enumerated sites kept, a
  // term still varies along their dims.
  std::vector<Term> contract(std::vector<Term> terms) {
    std::vector<Term> done;
    while (true) {
      std::optional<Ordinal> leaf;
      for (const Term& t : terms) {
        if (!t.ordinal.empty() && (!leaf || t.ordinal.size() > leaf->size())) leaf = t.ordinal;
      }
      if (!leaf) break;
      std::vector<Term> here, rest;
      for (Term& t : terms) (t.ordinal == *leaf ? here : rest).push_back(std::move(t));
      terms = std::move(rest);
      const Ordinal parent = parent_of(*leaf, terms);
      for (Term& t : eliminate_local(*leaf, std::move(here))) {
        if (t.vars.empty()) {
          done.push_back(std::move(t));
          continue;
        }
        check_kept_stay(t, *leaf, parent);
        terms.push_back(sum_plates(std::move(t), *leaf, parent));
      }
    }
    for (Term& t : eliminate_local(Ordinal{}, std::move(terms))) {
      EMBER_CHECK(t.vars.empty(), "TraceEnum_ELBO: enumerated variables were left over");
      done.push_back(std::move(t));
    }
    return done;
  }

  // Sums the plates of `leaf` that `parent` lacks: each element's log-density adds (times
  // the plate's subsample scale); a term constant along a plate counts once per element.
  Term sum_plates(Term t, const Ordinal& leaf, const Ordinal& parent) const {
    for (const std::string& name : leaf) {
      if (parent.contains(name)) continue;
      const PlateFrame& f = plates_.at(name);
      const double scale = static_cast<double>(f.size) / static_cast<double>(f.subsample_size);
      if (has_dim(t.log, f.dim)) {
        t.log = mul(sum(t.log, {f.dim}, true), scale);
      } else {
        t.log = mul(t.log, scale * static_cast<double>(f.subsample_size));
      }
    }
    t.ordinal = parent;
    return t;
  }

 private:
  // The largest ordinal strictly inside `leaf` that a remaining term or a variable has.
  Ordinal parent_of(const Ordinal& leaf, const std::vector<Term>& terms) const {
    Ordinal best;
    auto consider = [&](const Ordinal& o) {
      if (o.size() < leaf.size() && o.size() > best.size() &&
          std::includes(leaf.begin(), leaf.end(), o.begin(), o.end())) {
        best = o;
      }
    };
    for (const Term& t : terms) consider(t.ordinal);
    for (const Var& v : vars_) consider(v.ordinal);
    return best;
  }

  static Term add_terms(Term a, const Term& b) {
    if (!a.log.defined()) return b;
    a.log = add(a.log, b.log);
    for (const auto& [d, v] : b.vars) a.vars.emplace(d, v);
    return a;
  }

  void eliminate(Term& t, std::size_t var) {
    const int dim = vars_[var].dim;
    if (record_) records_.push_back({var, t.log, t.vars});
    t.log = reduce_ == Reduce::Max ? max(t.log, {dim}, true) : logsumexp(t.log, {dim}, true);
    t.vars.erase(dim);
  }

  // Eliminates the variables whose ordinal is `ordinal` from its terms.
  std::vector<Term> eliminate_local(const Ordinal& ordinal, std::vector<Term> terms) {
    std::set<std::size_t> local;
    bool chain = false;
    for (const Term& t : terms) {
      for (const auto& [d, v] : t.vars) {
        if (vars_[v].ordinal != ordinal) continue;
        local.insert(v);
        chain = chain || vars_[v].step >= 0;
      }
    }
    if (local.empty()) return terms;
    std::map<std::int64_t, std::vector<Term>> by_step;
    for (Term& t : terms) by_step[t.step].push_back(std::move(t));
    // The terms are kept apart (their sum is meant) until a variable they hold is eliminated.
    std::vector<Term> pieces;
    if (!chain) {
      EMBER_CHECK(by_step.size() == 1, "TraceEnum_ELBO: enumerated site '",
                  vars_[*local.begin()].site->name,
                  "' is read by factors of several markov steps in ", describe(ordinal),
                  "; enumerate it inside the markov scope");
      pieces = std::move(by_step.begin()->second);
    } else if (std::optional<std::vector<Term>> scanned = parallel_scan(ordinal, local, by_step)) {
      return std::move(*scanned);
    } else {
      // Along the chain: a variable of step s is eliminated once step s + h is in.
      std::map<std::int64_t, std::vector<std::size_t>> due;
      for (std::size_t v : local) {
        if (vars_[v].step >= 0) due[vars_[v].step + vars_[v].history].push_back(v);
      }
      for (auto& [step, group] : by_step) {
        for (Term& t : group) pieces.push_back(std::move(t));
        auto it = due.find(step);
        if (step < 0 || it == due.end()) continue;
        for (std::size_t v : it->second) eliminate_from(pieces, v);
      }
    }
    // What is left, latest first (a chain's end before its start).
    std::set<std::size_t, std::greater<>> left;
    for (const Term& p : pieces) {
      for (const auto& [d, v] : p.vars) {
        if (local.contains(v)) left.insert(v);
      }
    }
    for (std::size_t v : left) eliminate_from(pieces, v);
    for (Term& p : pieces) {
      p.ordinal = ordinal;
      p.step = -1;
    }
    return pieces;
  }

  // Eliminates variable v from pieces whose sum is meant: the pieces that hold it are summed
  // and reduced over its dim, the others pass. In a sum-product without records the last two
  // meet in one log-space matrix product (log_matmul_exp), so their sum is never formed.
  void eliminate_from(std::vector<Term>& pieces, std::size_t v) {
    const int dim = vars_[v].dim;
    std::vector<Term> with, rest;
    for (Term& p : pieces) {
      auto it = p.vars.find(dim);
      (it != p.vars.end() && it->second == v ? with : rest).push_back(std::move(p));
    }
    if (!with.empty()) {
      Term t;
      if (reduce_ == Reduce::LogSumExp && !record_ && with.size() >= 2) {
        for (std::size_t i = 0; i + 1 < with.size(); ++i) t = add_terms(std::move(t), with[i]);
        t = contract_pair(t, with.back(), v);
      } else {
        for (const Term& p : with) t = add_terms(std::move(t), p);
        eliminate(t, v);
      }
      rest.push_back(std::move(t));
    }
    pieces = std::move(rest);
  }

  // log sum over v's dim of exp(p + q), as a batched log-space matrix product: the dims both
  // vary along are the batch, those only p varies along the rows, only q's the columns.
  Term contract_pair(const Term& p_term, const Term& q_term, std::size_t v) const {
    Tensor p = p_term.log, q = q_term.log;
    const int rank = std::max(p.dim(), q.dim());
    while (p.dim() < rank) p = p.unsqueeze(0);
    while (q.dim() < rank) q = q.unsqueeze(0);
    const int d = rank + vars_[v].dim;
    DimList batch, rows, cols, ones;
    Shape out_shape;
    for (int i = 0; i < rank; ++i) {
      const std::int64_t sp = p.size(i), sq = q.size(i);
      out_shape.push_back(i == d ? 1 : std::max(sp, sq));
      if (i == d) continue;
      if (sp > 1 && sq > 1) {
        batch.push_back(i);
      } else if (sp > 1) {
        rows.push_back(i);
      } else if (sq > 1) {
        cols.push_back(i);
      } else {
        ones.push_back(i);
      }
    }
    auto numel_of = [](const Tensor& t, const DimList& dims) {
      std::int64_t n = 1;
      for (int i : dims) n *= t.size(i);
      return n;
    };
    auto joined = [](std::initializer_list<const DimList*> parts) {
      DimList out;
      for (const DimList* part : parts)
        for (int i : *part) out.push_back(i);
      return out;
    };
    const DimList at_d{d};
    const std::int64_t nb = numel_of(p, batch), m = numel_of(p, rows), n = numel_of(q, cols);
    const std::int64_t k = p.size(d);
    const Tensor p3 =
        permute_dims(p, dims_of(joined({&batch, &rows, &at_d, &cols, &ones}))).reshape({nb, m, k});
    const Tensor q3 =
        permute_dims(q, dims_of(joined({&batch, &at_d, &cols, &rows, &ones}))).reshape({nb, k, n});
    // (nb, m, n) holds the dims batch, rows, cols in that order: back to ascending dims, each
    // dim of the result taking the place of its rank among them.
    const DimList order = joined({&batch, &rows, &cols});
    Shape ordered;
    for (int i : order) ordered.push_back(out_shape[i]);
    DimList back = order;
    for (std::size_t a = 0; a < order.size(); ++a) {
      std::size_t below = 0;  // the order's dims below order[a]: where it goes among them
      for (int o : order) below += o < order[a] ? 1 : 0;
      back[below] = static_cast<int>(a);
    }
    Term out;
    out.log =
        permute_dims(log_matmul_exp(p3, q3).reshape(ordered), dims_of(back)).reshape(out_shape);
    out.vars = p_term.vars;
    for (const auto& [dv, var] : q_term.vars) out.vars.emplace(dv, var);
    out.vars.erase(vars_[v].dim);
    out.ordinal = p_term.ordinal;
    out.step = p_term.step;
    return out;
  }

  // A chain of one variable per step (history 1, all of one size K) contracted by a parallel
  // scan: each step's terms summed into its transition matrix (batch..., K, K), rows the
  // previous step's variable, columns its own; the T - 1 matrices multiplied pairwise in
  // log2(T) rounds of batched log_matmul_exp; the first step's vector times the product,
  // summed over the last variable. Nothing when the scan does not apply (scan_ or the chain's
  // shape), and the caller contracts step by step.
  std::optional<std::vector<Term>> parallel_scan(
      const Ordinal& ordinal, const std::set<std::size_t>& local,
      const std::map<std::int64_t, std::vector<Term>>& by_step) const {
    if (reduce_ != Reduce::LogSumExp || record_ || scan_ == ChainScan::Sequential) {
      return std::nullopt;
    }
    std::map<std::int64_t, std::size_t> var_at;  // step -> its variable
    for (std::size_t v : local) {
      const Var& var = vars_[v];
      if (var.step < 0 || var.history != 1 || var.size != vars_[*local.begin()].size ||
          !var_at.emplace(var.step, v).second) {
        return std::nullopt;
      }
    }
    const std::int64_t first = var_at.begin()->first;
    const auto steps = static_cast<std::int64_t>(var_at.size());
    if (steps < 2 || var_at.rbegin()->first - first + 1 != steps) return std::nullopt;
    const Tensor& any_log = by_step.begin()->second.front().log;
    if (scan_ == ChainScan::Auto && (any_log.device().type() != DeviceType::CUDA || steps < 64)) {
      return std::nullopt;
    }
    // Each step's terms may read its own and the previous step's variable, and any variable
    // of an outer plate set (a batch dim, held on by the result).
    std::vector<Tensor> step_logs(static_cast<std::size_t>(steps));
    std::vector<Term> out(1);
    for (const auto& [step, group] : by_step) {
      for (const Term& t : group) {
        bool reads_local = false;
        for (const auto& [d, v] : t.vars) {
          if (!local.contains(v)) {
            out[0].vars.emplace(d, v);
            continue;
          }
          reads_local = true;
          if (step < first ||
              (v != var_at.at(step) && (step == first || v != var_at.at(step - 1)))) {
            return std::nullopt;
          }
        }
        if (!reads_local) {
          out.push_back(t);
          out.back().ordinal = ordinal;
          out.back().step = -1;
          continue;
        }
        Tensor& acc = step_logs[static_cast<std::size_t>(step - first)];
        acc = acc.defined() ? add(acc, t.log) : t.log;
      }
    }
    const std::int64_t k = vars_[var_at.at(first)].size;
    const int dim_a = vars_[var_at.at(first)].dim, dim_b = vars_[var_at.at(first + 1)].dim;
    int rank = std::max(-dim_a, -dim_b);
    for (const Tensor& l : step_logs) {
      if (l.defined()) rank = std::max(rank, l.dim());
    }
    // The batch: every dim but the chain's two, broadcast over the steps.
    std::vector<int> batch_dims;
    for (int i = 0; i < rank; ++i) {
      if (i != rank + dim_a && i != rank + dim_b) batch_dims.push_back(i);
    }
    Shape batch;
    for (int i : batch_dims) {
      std::int64_t n = 1;
      for (const Tensor& l : step_logs) {
        if (l.defined() && l.dim() >= rank - i) n = std::max(n, l.size(i - rank));
      }
      batch.push_back(n);
    }
    const std::int64_t nb = batch.numel();
    // Step s as (nb, rows, K): rows the previous variable's values (1 for the first step).
    auto as_matrix = [&](std::int64_t s) {
      const int cur = rank + vars_[var_at.at(first + s)].dim;
      const int prev = cur == rank + dim_a ? rank + dim_b : rank + dim_a;
      Tensor l = step_logs[static_cast<std::size_t>(s)];
      if (!l.defined()) l = zeros({}, TensorOptions{any_log.dtype(), any_log.device()});
      while (l.dim() < rank) l = l.unsqueeze(0);
      Shape full(l.shape());
      for (std::size_t j = 0; j < batch_dims.size(); ++j) full[batch_dims[j]] = batch[j];
      full[cur] = k;
      full[prev] = s == 0 ? 1 : k;
      std::vector<int> order = batch_dims;
      order.push_back(prev);
      order.push_back(cur);
      return l.expand(full).permute(order).reshape({nb, s == 0 ? 1 : k, k});
    };
    std::vector<Tensor> mats;
    for (std::int64_t s = 1; s < steps; ++s) mats.push_back(as_matrix(s).unsqueeze(0));
    Tensor m = cat(mats, 0);  // (T - 1, nb, K, K)
    while (m.size(0) > 1) {
      const std::int64_t n = m.size(0), half = n / 2;
      const Tensor even = m.slice(0, 0, 2 * half, 2).reshape({half * nb, k, k});
      const Tensor odd = m.slice(0, 1, 2 * half, 2).reshape({half * nb, k, k});
      Tensor paired = log_matmul_exp(even, odd).reshape({half, nb, k, k});
      if (n % 2 == 1) paired = cat({paired, m.slice(0, n - 1, n)}, 0);
      m = paired;
    }
    const Tensor alpha = log_matmul_exp(as_matrix(0), m.reshape({nb, k, k}));  // (nb, 1, K)
    Shape out_shape = Shape::filled(rank, 1);
    for (std::size_t j = 0; j < batch_dims.size(); ++j) out_shape[batch_dims[j]] = batch[j];
    out[0].log = logsumexp(alpha, {1, 2}).reshape(out_shape);
    out[0].ordinal = ordinal;
    out[0].step = -1;
    return out;
  }

  bool kept_dim(int d) const {
    return std::any_of(kept_.begin(), kept_.end(), [d](const Var& g) { return g.dim == d; });
  }

  // A term still holding a variable is summed over the plates of `leaf` beyond `parent` before
  // that variable is eliminated: a guide-enumerated site local to those plates would need
  // every combination of its values across them.
  void check_kept_stay(const Term& t, const Ordinal& leaf, const Ordinal& parent) const {
    for (const Var& g : kept_) {
      if (!has_dim(t.log, g.dim)) continue;
      for (const std::string& plate : g.ordinal) {
        EMBER_CHECK(!leaf.contains(plate) || parent.contains(plate),
                    "TraceEnum_ELBO: guide-enumerated site '", g.site->name, "' in plate '", plate,
                    "' meets model-enumerated site '", vars_[t.vars.begin()->second].site->name,
                    "', which lies outside that plate: the sum over the plate would need every "
                    "combination of the guide site's values; enumerate both in the model, or "
                    "both in the guide");
      }
    }
  }

  std::vector<Var> vars_;
  std::vector<Var> kept_;
  std::map<int, std::vector<std::size_t>> outside_chains_;               // dim -> variables
  std::map<std::pair<int, std::int64_t>, std::size_t> by_dim_and_step_;  // chain variables
  int max_history_ = 0;
  std::map<std::string, PlateFrame> plates_;
  Reduce reduce_;
  bool record_;
  ChainScan scan_;
  std::vector<Record> records_;
};

// The model's enumerated sites (those the guide does not give) and the plates the sites of
// both programs lie in.
struct Split {
  std::vector<Var> vars;
  std::map<std::string, PlateFrame> plates;
};

Split split_model(const Trace& model_trace, const Trace& guide_trace) {
  Split out;
  for (const Trace* tr : {&model_trace, &guide_trace}) {
    for (const Site& s : *tr) {
      if (!s.is_sample()) continue;
      for (const PlateFrame& f : s.cond_indep_stack) {
        if (f.vectorized()) out.plates.emplace(f.name, f);
      }
    }
  }
  for (const Site& s : model_trace) {
    if (!s.is_sample() || s.infer.enum_dim == 0 || guide_trace.contains(s.name)) continue;
    out.vars.push_back(
        {&s, s.infer.enum_dim, s.value.size(0), ordinal_of(s), s.markov_step, s.markov_history});
  }
  return out;
}

// The subsample scale a site's plates give it; an enumerated factor must carry exactly that.
double plate_scale(const Site& s) {
  double scale = 1.0;
  for (const PlateFrame& f : s.cond_indep_stack) {
    if (f.vectorized() && f.subsample_size != f.size) {
      scale *= static_cast<double>(f.size) / static_cast<double>(f.subsample_size);
    }
  }
  return scale;
}

// An enumerated site's own log-density: every value of its support scored at once (the
// family's log_prob_of_support, (K,) + batch), the values' axis moved to the site's
// enumeration dim, where the batch (which may hold other sites' dims, left of or beside its
// own) has size 1.
Tensor enumerated_log_prob(const Site& s) {
  const Tensor lp = s.fn.log_prob_of_support();
  const int r = lp.dim() - 1, d = s.infer.enum_dim;
  const int rank = std::max(r, -d);
  Shape padded{lp.size(0)};
  for (int i = r; i < rank; ++i) padded.push_back(1);
  for (int i = 1; i <= r; ++i) padded.push_back(lp.size(i));
  const int at = rank + d;  // the enumeration dim's index among the batch's
  if (padded[at + 1] != 1) return s.unscaled_log_prob();
  std::vector<int> order;
  for (int i = 0; i < rank; ++i) order.push_back(i == at ? 0 : i + 1);
  order.push_back(at + 1);
  Shape out;
  for (int i = 0; i < rank; ++i) out.push_back(i == at ? lp.size(0) : padded[i + 1]);
  return lp.reshape(padded).permute(order).reshape(out);
}

// Splits the model's factors: those reading the model's enumerated sites become terms, the
// others are costs of their own (`direct`).
std::vector<Term> model_terms(const Trace& model_trace, const Eliminator& elim,
                              std::vector<const Site*>& direct, const char* who) {
  std::vector<Term> terms;
  for (const Site& s : model_trace) {
    if (!s.is_sample()) continue;
    Tensor log = s.infer.enum_dim != 0 ? enumerated_log_prob(s) : s.unscaled_log_prob();
    if (s.mask.defined()) log = where(s.mask, log, 0.0);
    DimVars vars = elim.vars_of(s, log);
    if (vars.empty()) {
      direct.push_back(&s);
      continue;
    }
    const double expected = plate_scale(s);
    EMBER_CHECK(std::abs(s.scale - expected) <= 1e-12 * expected, who, ": site '", s.name,
                "' reads an enumerated site and has scale ", s.scale,
                " beyond its plates' subsampling (", expected,
                "); a scale handler cannot act inside an enumerated sum");
    terms.push_back({log, std::move(vars), ordinal_of(s), s.markov_step});
  }
  return terms;
}

// The expectation under the guide of the estimate's log-density terms (Pyro's Dice): each
// term, at its plates, weighted by the product of the factors of the guide sites whose
// plates are among its own: the probabilities of enumerated sites' values (the term summed
// over them) and, for sites drawn without rsample, exp(log q - stopgrad(log q)), which is 1
// but whose gradient is the score function. A sequentially enumerated site weights the terms
// in its plates by its value's probability; the others, counted once per value, are divided
// by its number of values.
class Expectation {
 public:
  explicit Expectation(const Trace& guide_trace, bool want_surrogate) {
    for (const Site& g : guide_trace) {
      if (!g.is_stochastic()) continue;
      if (g.infer.enum_dim != 0) {
        EMBER_CHECK(g.markov_step < 0, "TraceEnum_ELBO: guide site '", g.name,
                    "' is enumerated inside a markov scope; enumerate a chain's sites in the "
                    "model, where the chain is contracted step by step");
        enumerated_.push_back({&g, g.infer.enum_dim, g.value.size(0), ordinal_of(g), -1, 0});
        factors_.push_back({masked_log_q(g), ordinal_of(g)});
        weighted_ = true;
      } else if (g.infer.enum_total > 0) {
        factors_.push_back({masked_log_q(g), ordinal_of(g)});
        sequential_.push_back({ordinal_of(g), g.infer.enum_total});
        weighted_ = true;
      } else if (want_surrogate && !g.fn.has_rsample()) {
        const Tensor lq = masked_log_q(g);
        factors_.push_back({sub(lq, lq.detach()), ordinal_of(g)});
      }
    }
  }
  // The guide's enumerated sites, whose dims the model's factors may hold.
  const std::vector<Var>& enumerated() const { return enumerated_; }

  // Adds the expectation of a term at `ordinal` (scaled by `scale`, over every element of its
  // plates). `site`: the site the term is the log-density of, for its cached sum.
  void add_term(const Tensor& log, const Ordinal& ordinal, double scale,
                const std::map<std::string, PlateFrame>& plates, const Site* site = nullptr) {
    Tensor w = weight(ordinal);
    Tensor e;
    if (!w.defined()) {
      e = site != nullptr ? site->log_prob_sum() : sum(log);
      e = count_constant_plates(e, log, ordinal, plates);
    } else {
      for (const Var& g : enumerated_) {
        if (has_dim(w, g.dim) && !has_dim(log, g.dim)) w = sum(w, {g.dim}, true);
      }
      // A value the guide never takes weighs nothing, however unlikely the model finds it.
      const Tensor c = weighted_ ? where(gt(w, 0.0), log, 0.0) : log;
      const Tensor prod = mul(w, c);
      e = count_constant_plates(sum(prod), prod, ordinal, plates);
    }
    if (scale != 1.0) e = mul(e, scale);
    double repeats = 1.0;
    for (const auto& [o, total] : sequential_) {
      if (!std::includes(ordinal.begin(), ordinal.end(), o.begin(), o.end())) {
        repeats *= static_cast<double>(total);
      }
    }
    if (repeats != 1.0) e = mul(e, 1.0 / repeats);
    total_ = total_.defined() ? add(total_, e) : e;
  }

  Tensor total() const { return total_.defined() ? total_ : scalar_tensor(0.0); }

 private:
  struct Factor {
    Tensor log;
    Ordinal ordinal;
  };

  static Tensor masked_log_q(const Site& g) {
    const Tensor& lq = g.unscaled_log_prob();
    return g.mask.defined() ? where(g.mask, lq, 0.0) : lq;
  }

  // exp(the sum of the factors within `ordinal`), undefined when there are none.
  Tensor weight(const Ordinal& ordinal) {
    auto it = weights_.find(ordinal);
    if (it != weights_.end()) return it->second;
    Tensor log_w;
    for (const Factor& f : factors_) {
      if (!std::includes(ordinal.begin(), ordinal.end(), f.ordinal.begin(), f.ordinal.end())) {
        continue;
      }
      log_w = log_w.defined() ? add(log_w, f.log) : f.log;
    }
    const Tensor w = log_w.defined() ? exp(log_w) : Tensor();
    weights_.emplace(ordinal, w);
    return w;
  }

  // sum(t) counts a term constant along one of its plates once; each element counts.
  static Tensor count_constant_plates(Tensor total, const Tensor& t, const Ordinal& ordinal,
                                      const std::map<std::string, PlateFrame>& plates) {
    double count = 1.0;
    for (const std::string& name : ordinal) {
      const PlateFrame& f = plates.at(name);
      if (!has_dim(t, f.dim)) count *= static_cast<double>(f.subsample_size);
    }
    return count == 1.0 ? total : mul(total, count);
  }

  std::vector<Var> enumerated_;
  std::vector<Factor> factors_;
  std::vector<std::pair<Ordinal, std::int64_t>> sequential_;
  bool weighted_ = false;  // some factor is a probability, not a score function
  std::map<Ordinal, Tensor> weights_;
  Tensor total_;
};

}  // namespace
}  // namespace detail

ELBO::Particle TraceEnum_ELBO::particle(const Trace& model_trace, const Trace& guide_trace,
                                        bool want_surrogate) {
  for (const Site& s : model_trace) {
    EMBER_CHECK(!s.is_stochastic() || s.infer.enumerate != Enumerate::Sequential ||
                    guide_trace.contains(s.name),
                "TraceEnum_ELBO: model site '", s.name,
                "' is marked Enumerate::Sequential; sequential enumeration is for guide sites: "
                "enumerate it in the model with Enumerate::Parallel");
  }
  detail::Expectation expectation(guide_trace, want_surrogate);
  detail::Split split = detail::split_model(model_trace, guide_trace);
  detail::Eliminator elim(split.vars, split.plates, detail::Reduce::LogSumExp, false,
                          expectation.enumerated(), scan_);
  std::vector<const Site*> direct;
  std::vector<detail::Term> terms = detail::model_terms(model_trace, elim, direct, name());
  for (const Site* s : direct) {
    expectation.add_term(s->log_prob(), detail::ordinal_of(*s), 1.0, split.plates, s);
  }
  if (!terms.empty()) {
    for (const detail::Term& t : elim.contract(std::move(terms))) {
      // The scale of the plates not summed yet (those summed were scaled on the way).
      double scale = 1.0;
      for (const std::string& plate : t.ordinal) {
        const PlateFrame& f = split.plates.at(plate);
        scale *= static_cast<double>(f.size) / static_cast<double>(f.subsample_size);
      }
      expectation.add_term(t.log, t.ordinal, scale, split.plates);
    }
  }
  // The guide's -log q, pathwise where reparameterized.
  for (const Site& g : guide_trace) {
    if (!g.is_sample()) continue;
    expectation.add_term(neg(g.log_prob()), detail::ordinal_of(g), 1.0, split.plates);
  }
  const Tensor elbo = expectation.total();
  return {elbo.detach(), want_surrogate ? elbo : Tensor()};
}

namespace detail {

handlers::ValueMap infer_discrete_values(const std::function<void()>& model,
                                         const std::function<void()>& guide,
                                         const InferDiscreteOptions& options) {
  EMBER_CHECK(options.temperature == 0 || options.temperature == 1,
              "infer_discrete: temperature must be 0 (MAP) or 1 (a posterior draw), got ",
              options.temperature);
  const NoGradGuard no_grad;
  const std::function<void()> no_guide = [] {};
  const std::function<void()>& g = guide ? guide : no_guide;
  int nesting = options.max_plate_nesting;
  if (nesting < 0) {
    const handlers::BlockHandler hide_from_outer_handlers;
    nesting = plate_nesting_of(trace_pair(model, g));
  }
  const TracePair traces =
      trace_pair(model, g, std::nullopt, EnumSetup{.first_dim = -(nesting + 1)});
  Split split = split_model(traces.model, traces.guide);
  EMBER_CHECK(!split.vars.empty(), "infer_discrete: the model has no enumerated site (mark its ",
              "discrete sites with infer.enumerate or wrap it in config_enumerate)");
  Eliminator elim(split.vars, split.plates,
                  options.temperature == 0 ? Reduce::Max : Reduce::LogSumExp, true);
  std::vector<const Site*> direct;
  std::vector<Term> terms = model_terms(traces.model, elim, direct, "infer_discrete");
  elim.contract(std::move(terms));

  // Backwards through the eliminations: each variable takes its best (or a drawn) value
  // given the values of those eliminated after it.
  const std::vector<Var>& vars = elim.vars();
  std::map<std::size_t, Tensor> index;  // var -> int64 index, size 1 at every enum dim
  const auto& records = elim.records();
  for (auto r = records.rbegin(); r != records.rend(); ++r) {
    Tensor scores = r->scores;
    for (const auto& [d, u] : r->vars) {
      if (u == r->var) continue;
      Tensor idx = index.at(u);
      while (idx.dim() > scores.dim()) idx = idx.squeeze(0);
      while (idx.dim() < scores.dim()) idx = idx.unsqueeze(0);
      Shape target = broadcast_shapes(scores.shape(), idx.shape(), "infer_discrete");
      scores = scores.expand(target).contiguous();
      target[target.size() + d] = 1;
      scores = gather(scores, d, idx.expand(target).contiguous());
    }
    const Var& v = vars[r->var];
    if (options.temperature == 1) {
      // Gumbel-max: argmax(scores + Gumbel noise) is a draw from softmax(scores).
      const Tensor u = clamp(rand(scores.shape(), TensorOptions{scores.dtype(), scores.device()}),
                             1e-12, 1 - 1e-7);
      scores = sub(scores, log(neg(log(u))));
    }
    const Tensor best = max(scores, {v.dim}, true);
    Shape at_dim = Shape::filled(-v.dim, 1);
    at_dim[0] = v.size;
    const Tensor positions =
        arange(0.0, static_cast<double>(v.size), 1.0, TensorOptions{kInt64, scores.device()})
            .reshape(at_dim);
    const Tensor candidate =
        where(ge(scores, best), positions.to(kFloat64), static_cast<double>(v.size));
    index[r->var] = min(candidate, {v.dim}, true).to(kInt64);
  }

  handlers::ValueMap out;
  for (std::size_t i = 0; i < vars.size(); ++i) {
    const Var& v = vars[i];
    // The site's own batch dims: its distribution's, less the enumeration dims of the sites
    // it reads (left of the plates).
    const Shape fn_batch = v.site->fn.batch_shape();
    Shape batch;
    for (int k = std::max(0, fn_batch.size() - nesting); k < fn_batch.size(); ++k) {
      batch.push_back(fn_batch[k]);
    }
    Tensor idx = index.at(i);
    Shape full = Shape::filled(idx.dim(), 1);
    for (int k = 0; k < batch.size(); ++k) full[full.size() - batch.size() + k] = batch[k];
    idx = idx.expand(full).contiguous().reshape(batch);
    // The support's values at those positions (the enumerated value tensor holds them).
    const Tensor support = v.site->value.reshape({v.size, -1});
    const Tensor values = index_rows(support, idx.reshape({-1}));
    Shape shape = batch;
    for (auto e : v.site->fn.event_shape()) shape.push_back(e);
    out.emplace(v.site->name, values.reshape(shape));
  }
  return out;
}

}  // namespace detail
}  // namespace ember
