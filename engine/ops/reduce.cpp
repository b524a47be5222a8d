// Reductions over dims (sum, mean, max, min, logsumexp) and scans (cumsum, cumprod).
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "engine/internal.hpp"

namespace ember {
namespace {

using detail::arg;
using kernels::ReduceOp;

// Per dim of a tensor: whether a reduction removes it (inline: no heap block per reduction).
class DimMask {
 public:
  DimMask(int ndim, bool value) { std::fill_n(bits_.begin(), ndim, value); }
  bool operator[](int d) const { return bits_[d]; }
  bool& operator[](int d) { return bits_[d]; }

 private:
  std::array<bool, kMaxRank> bits_;
};

// Which dims a reduction removes; empty `dims` means all. Rejects repeats.
DimMask reduced_mask(const Tensor& x, const std::vector<int>& dims, const char* op) {
  DimMask mask(x.dim(), dims.empty());
  for (int d : dims) {
    const int w = wrap_dim(d, x.dim(), op);
    if (x.dim() == 0) continue;
    EMBER_CHECK_SHAPE(!mask[w], op, ": dim ", d, " appears more than once");
    mask[w] = true;
  }
  return mask;
}

Shape keepdim_shape(const Tensor& x, const DimMask& mask) {
  Shape s = x.shape();
  for (int d = 0; d < x.dim(); ++d)
    if (mask[d]) s[d] = 1;
  return s;
}

Shape dropped_shape(const Tensor& x, const DimMask& mask) {
  Shape s;
  for (int d = 0; d < x.dim(); ++d)
    if (!mask[d]) s.push_back(x.shape()[d]);
  return s;
}

// The reduction kernel on a keepdim-shaped output; no autograd.
Tensor reduce_raw(ReduceOp op, const Tensor& x, const DimMask& mask) {
  Tensor out = detail::make_tensor(keepdim_shape(x, mask), x.dtype(), x.device());
  if (x.numel() == 0 && out.numel() > 0) {
    EMBER_CHECK_SHAPE(op == ReduceOp::Sum || op == ReduceOp::Prod,
                      "max/min: cannot reduce over an empty dim (shape ", x.shape(), ")");
    detail::backend(x).fill(arg(out), op == ReduceOp::Sum ? 0.0 : 1.0);
    return out;
  }
  if (out.numel() > 0) detail::backend(x).reduce(op, arg(out), arg(x));
  return out;
}

Tensor finish(const Tensor& kept, const Tensor& x, const DimMask& mask, bool keepdim) {
  return keepdim ? kept : kept.reshape(dropped_shape(x, mask));
}

std::int64_t reduced_count(const Tensor& x, const DimMask& mask) {
  std::int64_t n = 1;
  for (int d = 0; d < x.dim(); ++d)
    if (mask[d]) n *= x.shape()[d];
  return n;
}

Tensor extreme(ReduceOp op, const Tensor& x, const std::vector<int>& dims, bool keepdim,
               const char* name) {
  const auto mask = reduced_mask(x, dims, name);
  Tensor kept = reduce_raw(op, x, mask);
  if (detail::needs_grad({&x})) {
    detail::record(name, {x}, kept, [x, mask, y = detail::saved(kept)](const Tensor& g) {
      // Ties share the gradient equally.
      const Tensor hit = eq(x.detach(), y).to(x.dtype());
      const Tensor count = sum(
          hit,
          [&] {
            std::vector<int> d;
            for (int i = 0; i < x.dim(); ++i)
              if (mask[i]) d.push_back(i);
            return d;
          }(),
          true);
      return detail::Grads{g * hit / count};
    });
  }
  return finish(kept, x, mask, keepdim);
}

// The sum over the dims `mask` marks. Bool sums count; integer sums stay int64.
Tensor masked_sum(const Tensor& x_in, const DimMask& mask, bool keepdim) {
  const Tensor x = x_in.dtype() == kBool ? x_in.to(kInt64) : x_in;
  Tensor kept = reduce_raw(ReduceOp::Sum, x, mask);
  if (detail::needs_grad({&x})) {
    detail::record("sum", {x}, kept,
                   [shape = x.shape()](const Tensor& g) { return detail::Grads{g.expand(shape)}; });
  }
  return finish(kept, x, mask, keepdim);
}
}  // namespace

Tensor sum(const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  return masked_sum(x, reduced_mask(x, dims, "sum"), keepdim);
}

Tensor mean(const Tensor& x_in, const std::vector<int>& dims, bool keepdim) {
  const Tensor x = is_floating(x_in.dtype()) ? x_in : x_in.to(kFloat32);
  const auto mask = reduced_mask(x, dims, "mean");
  const std::int64_t n = reduced_count(x, mask);
  return sum(x, dims, keepdim) / static_cast<double>(n);
}

Tensor max(const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  return extreme(ReduceOp::Max, x, dims, keepdim, "max");
}

Tensor min(const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  return extreme(ReduceOp::Min, x, dims, keepdim, "min");
}

Tensor logsumexp(const Tensor& x_in, const std::vector<int>& dims, bool keepdim) {
  const Tensor x = is_floating(x_in.dtype()) ? x_in : x_in.to(kFloat32);
  const auto mask = reduced_mask(x, dims, "logsumexp");
  if (reduced_count(x, mask) == 0) {
    // The log of an empty sum, as in PyTorch.
    const Shape shape = keepdim ? keepdim_shape(x, mask) : dropped_shape(x, mask);
    return full(shape, -INFINITY, TensorOptions{}.with_dtype(x.dtype()).with_device(x.device()));
  }
  // Shift by the (detached) max for stability, held inside the dtype's finite range: a slice
  // of -inf (or one holding +inf) shifts by the largest finite value, which leaves its -inf
  // (or +inf) result as it is, in one kernel where a finiteness test would take three.
  const Tensor m = reduce_raw(ReduceOp::Max, x.detach(), mask);
  const double largest = x.dtype() == kFloat64 ? std::numeric_limits<double>::max()
                                               : std::numeric_limits<float>::max();
  const Tensor shift = clamp(m, -largest, largest);
  std::vector<int> all_dims;
  for (int d = 0; d < x.dim(); ++d)
    if (mask[d]) all_dims.push_back(d);
  const Tensor kept = log(sum(exp(x - shift), all_dims, true)) + shift;
  return finish(kept, x, mask, keepdim);
}

namespace {

// x - max(x) along dim d and the log of its exponentials' sum, unrecorded: log_softmax is
// their difference. A row of -inf (or one holding +inf) gives NaN, as in torch.
struct ShiftedLogSum {
  Tensor shifted, log_sum;
};
ShiftedLogSum shifted_log_sum(const Tensor& x, int d) {
  NoGradGuard no_grad;
  DimMask mask(x.dim(), false);
  mask[d] = true;
  const Tensor z = x.detach() - reduce_raw(ReduceOp::Max, x.detach(), mask);
  return {z, log(sum(exp(z), {d}, true))};
}

// softmax and log_softmax: x as floating and at least 1-d, the dim wrapped.
Tensor softmax_family(const Tensor& x_in, int dim, bool take_log) {
  const char* name = take_log ? "log_softmax" : "softmax";
  const Tensor x0 = is_floating(x_in.dtype()) ? x_in : x_in.to(kFloat32);
  const Tensor x = x0.dim() == 0 ? x0.reshape({1}) : x0;
  const int d = wrap_dim(dim, x0.dim(), name);
  Tensor out;
  if (x.numel() == 0) {
    out = detail::make_tensor(x.shape(), x.dtype(), x.device());
  } else {
    const auto [z, log_sum] = shifted_log_sum(x, d);
    NoGradGuard no_grad;
    out = take_log ? z - log_sum : exp(z - log_sum);
  }
  if (detail::needs_grad({&x})) {
    detail::record(name, {x}, out, [d, take_log, y = detail::saved(out)](const Tensor& g) {
      // log_softmax: g - softmax * sum(g); softmax: y * (g - sum(g * y)).
      if (take_log) return detail::Grads{g - exp(y) * sum(g, {d}, true)};
      return detail::Grads{y * (g - sum(g * y, {d}, true))};
    });
  }
  return x0.dim() == 0 ? out.reshape({}) : out;
}

}  // namespace

Tensor softmax(const Tensor& x, int dim) { return softmax_family(x, dim, false); }
Tensor log_softmax(const Tensor& x, int dim) { return softmax_family(x, dim, true); }

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const int lead = x.dim() - shape.size();
  EMBER_CHECK_SHAPE(lead >= 0, "sum_to: cannot reduce shape ", x.shape(), " to ", shape);
  DimMask mask(x.dim(), false);
  bool any = false;
  for (int d = 0; d < x.dim(); ++d) {
    const std::int64_t want = d < lead ? 1 : shape[d - lead];
    EMBER_CHECK_SHAPE(d < lead || want == x.shape()[d] || want == 1, "sum_to: cannot reduce shape ",
                      x.shape(), " to ", shape);
    mask[d] = d < lead || (want == 1 && x.shape()[d] != 1);
    any = any || mask[d];
  }
  if (!any) return x.reshape(shape);
  return masked_sum(x, mask, true).reshape(shape);
}

namespace detail {

Tensor mul_sum_to(const Tensor& a, const Tensor& b, const Shape& shape) {
  check_same_device("mul_sum_to", a, b);
  const Shape full = broadcast_shapes(a.shape(), b.shape(), "mul_sum_to");
  if (full == shape || !is_floating(a.dtype()) || a.dtype() != b.dtype() || full.numel() == 0) {
    return sum_to(a * b, shape);
  }
  const int lead = full.size() - shape.size();
  EMBER_CHECK_SHAPE(lead >= 0, "mul_sum_to: cannot reduce shape ", full, " to ", shape);
  Shape kept;  // full's rank, 1 where reduced
  for (int d = 0; d < full.size(); ++d) {
    const std::int64_t want = d < lead ? 1 : shape[d - lead];
    EMBER_CHECK_SHAPE(want == full[d] || want == 1, "mul_sum_to: cannot reduce shape ", full,
                      " to ", shape);
    kept.push_back(want);
  }
  Tensor out = make_tensor(kept, a.dtype(), a.device());
  NoGradGuard no_grad;  // used inside backward closures: never recorded
  backend(out).reduce_product(arg(out), broadcast_arg(a, full), broadcast_arg(b, full));
  return out.reshape(shape);
}

bool all_finite(std::span<const Tensor> tensors) {
  // One backend call per device, over every floating tensor on it (integers are finite).
  std::vector<Tensor> kept;  // contiguous copies alive until their device's call returns
  std::vector<kernels::TensorArg> args;
  std::vector<bool> done(tensors.size(), false);
  for (std::size_t first = 0; first < tensors.size(); ++first) {
    if (done[first]) continue;
    const Device device = tensors[first].device();
    kept.clear();
    args.clear();
    for (std::size_t k = first; k < tensors.size(); ++k) {
      const Tensor& t = tensors[k];
      if (done[k] || !(t.device() == device)) continue;
      done[k] = true;
      if (!is_floating(t.dtype()) || t.numel() == 0) continue;
      kept.push_back(t.detach().contiguous());
      args.push_back(arg(kept.back()));
    }
    if (!args.empty() && !backend(device).all_finite(args)) return false;
  }
  return true;
}

}  // namespace detail

// ------------------------------------------------------------------------- scans ----
namespace {

Tensor scan(kernels::ScanOp op, const Tensor& x, int dim, bool reverse) {
  Tensor out = detail::make_tensor(x.shape(), x.dtype(), x.device());
  if (x.numel() > 0) detail::backend(x).scan(op, arg(out), arg(x), dim, reverse);
  return out;
}

}  // namespace

Tensor cumsum(const Tensor& x_in, int dim) {
  const Tensor x = x_in.dtype() == kBool ? x_in.to(kInt64) : x_in;
  const int d = x.dim() == 0 ? 0 : wrap_dim(dim, x.dim(), "cumsum");
  if (x.dim() == 0) return x.clone();
  Tensor out = scan(kernels::ScanOp::Sum, x, d, false);
  if (detail::needs_grad({&x})) {
    detail::record("cumsum", {x}, out, [d](const Tensor& g) {
      return detail::Grads{scan(kernels::ScanOp::Sum, g, d, true)};
    });
  }
  return out;
}

Tensor log_normalize(const Tensor& p, int dim) {
  EMBER_CHECK_DTYPE(is_floating(p.dtype()), "log_normalize: p must be floating, got ", p.dtype());
  EMBER_CHECK_SHAPE(p.dim() > 0, "log_normalize: p needs a dim to normalize along, got shape ",
                    p.shape());
  const int d = wrap_dim(dim, p.dim(), "log_normalize");
  Tensor out = detail::make_tensor(p.shape(), p.dtype(), p.device());
  if (out.numel() > 0)
    detail::backend(p).line_map(kernels::LineMap::LogNormalize, arg(out), arg(p), d);
  if (detail::needs_grad({&p})) {
    detail::record("log_normalize", {p}, out, [d, p](const Tensor& g) {
      Tensor gp = detail::make_tensor(p.shape(), p.dtype(), p.device());
      if (gp.numel() > 0)
        detail::backend(p).line_backward(kernels::LineGrad::LogNormalize, arg(gp), arg(g), arg(p),
                                         d);
      return detail::Grads{gp};
    });
  }
  return out;
}

namespace detail {

Tensor stick_breaking(const Tensor& z) {
  EMBER_CHECK_DTYPE(is_floating(z.dtype()), "StickBreakingTransform: needs a floating tensor, got ",
                    z.dtype());
  EMBER_CHECK_SHAPE(z.dim() >= 1, "StickBreakingTransform: needs at least one dim, got shape ",
                    z.shape());
  Shape shape = z.shape();
  shape[shape.size() - 1] += 1;
  const int d = z.dim() - 1;
  Tensor out = make_tensor(shape, z.dtype(), z.device());
  if (out.numel() > 0) backend(z).line_map(kernels::LineMap::StickBreaking, arg(out), arg(z), d);
  if (needs_grad({&z})) {
    record("stick_breaking", {z}, out, [d, z](const Tensor& g) {
      Tensor gz = make_tensor(z.shape(), z.dtype(), z.device());
      if (gz.numel() > 0)
        backend(z).line_backward(kernels::LineGrad::StickBreaking, arg(gz), arg(g), arg(z), d);
      return Grads{gz};
    });
  }
  return out;
}

}  // namespace detail

Tensor cumprod(const Tensor& x_in, int dim) {
  const Tensor x = x_in.dtype() == kBool ? x_in.to(kInt64) : x_in;
  if (x.dim() == 0) return x.clone();
  const int d = wrap_dim(dim, x.dim(), "cumprod");
  Tensor out = scan(kernels::ScanOp::Prod, x, d, false);
  if (detail::needs_grad({&x})) {
    detail::record("cumprod", {x}, out, [d, x](const Tensor& g) {
      Tensor gx = detail::make_tensor(x.shape(), x.dtype(), x.device());
      if (gx.numel() > 0)
        detail::backend(x).line_backward(kernels::LineGrad::Cumprod, arg(gx), arg(g), arg(x), d);
      return detail::Grads{gx};
    });
  }
  return out;
}

}  // namespace ember
