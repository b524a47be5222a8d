// Views (reshape, expand, transpose, permute, slice, ...) that share memory with their
// base, and the copying shape ops built on them (cat, stack, pad).
#include <algorithm>
#include <array>
#include <functional>
#include <numeric>
#include <optional>
#include <span>

#include "engine/internal.hpp"

namespace ember {
namespace {

using detail::arg;

// Fills in a single -1 and checks the element count.
Shape infer_shape(const Shape& requested, std::int64_t numel, const Shape& from, const char* op) {
  Shape s = requested;
  int infer = -1;
  std::int64_t known = 1;
  for (int i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      EMBER_CHECK_SHAPE(infer < 0, op, ": only one dim can be -1, got ", requested);
      infer = i;
    } else {
      EMBER_CHECK_SHAPE(s[i] >= 0, op, ": invalid size ", s[i], " in ", requested);
      known *= s[i];
    }
  }
  if (infer >= 0) {
    EMBER_CHECK_SHAPE(known != 0 && numel % known == 0, op, ": cannot view shape ", from, " as ",
                      requested);
    s[infer] = numel / known;
  }
  EMBER_CHECK_SHAPE(s.numel() == numel, op, ": shape ", requested, " is invalid for a tensor of ",
                    numel, " elements (shape ", from, ")");
  return s;
}

// Strides that view `t` as `shape` without a copy, if there are any (NumPy's rule:
// each run of dims that is contiguous in memory may be split or merged freely).
std::optional<Shape> view_strides(const Tensor& t, const Shape& shape) {
  if (t.numel() == 0 || t.is_contiguous()) return contiguous_strides(shape);
  const Shape& old_shape = t.shape();
  const Shape& old_strides = t.strides();
  Shape new_strides = Shape::filled(shape.size(), 0);
  int view_d = shape.size() - 1;
  std::int64_t chunk_base_stride = old_strides.size() ? old_strides.back() : 1;
  std::int64_t tensor_numel = 1, view_numel = 1;
  for (int tensor_d = old_shape.size() - 1; tensor_d >= 0; --tensor_d) {
    tensor_numel *= old_shape[tensor_d];
    const bool chunk_end =
        tensor_d == 0 || (old_shape[tensor_d - 1] != 1 &&
                          old_strides[tensor_d - 1] != tensor_numel * chunk_base_stride);
    if (chunk_end) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        new_strides[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (tensor_d > 0) {
        chunk_base_stride = old_strides[tensor_d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return new_strides;
}

// A view of base, recorded with the backward `fn` (a closure, made into a BackwardFn only
// when the view needs a gradient).
template <typename Fn>
Tensor view_of(const Tensor& base, const Shape& shape, const Shape& strides, std::int64_t offset,
               const char* name, Fn&& fn) {
  Tensor out = detail::make_view(base, shape, strides, offset);
  if (detail::needs_grad({&base})) detail::record(name, {base}, out, std::forward<Fn>(fn));
  return out;
}

Tensor reshape_impl(const Tensor& x, const Shape& requested, bool allow_copy, const char* op) {
  const Shape shape = infer_shape(requested, x.numel(), x.shape(), op);
  auto strides = view_strides(x, shape);
  if (!strides) {
    EMBER_CHECK_SHAPE(allow_copy, op, ": a tensor of shape ", x.shape(), " and strides ",
                      x.strides(), " cannot be viewed as ", shape, "; use reshape() to copy");
    return reshape_impl(x.contiguous(), shape, false, op);
  }
  if (shape == x.shape()) return x;
  return view_of(x, shape, *strides, x.impl().offset, op,
                 [from = x.shape()](const Tensor& g) { return detail::Grads{g.reshape(from)}; });
}

}  // namespace

Tensor Tensor::reshape(const Shape& shape) const {
  return reshape_impl(*this, shape, true, "reshape");
}
Tensor Tensor::view(const Shape& shape) const { return reshape_impl(*this, shape, false, "view"); }

Tensor Tensor::unsqueeze(int dim) const {
  const int d = wrap_dim(dim, this->dim() + 1, "unsqueeze");
  Shape s = shape(), st = strides();
  s.insert(d, 1);
  st.insert(d, d < this->dim() ? strides()[d] * shape()[d] : 1);
  return view_of(*this, s, st, impl().offset, "unsqueeze",
                 [d](const Tensor& g) { return detail::Grads{g.squeeze(d)}; });
}

Tensor Tensor::squeeze(int dim) const {
  if (this->dim() == 0) return *this;
  const int d = wrap_dim(dim, this->dim(), "squeeze");
  if (shape()[d] != 1) return *this;
  Shape s = shape(), st = strides();
  s.erase(d);
  st.erase(d);
  return view_of(*this, s, st, impl().offset, "squeeze",
                 [d](const Tensor& g) { return detail::Grads{g.unsqueeze(d)}; });
}

Tensor Tensor::squeeze() const {
  Shape s, st;
  for (int d = 0; d < dim(); ++d) {
    if (shape()[d] == 1) continue;
    s.push_back(shape()[d]);
    st.push_back(strides()[d]);
  }
  if (s.size() == dim()) return *this;
  return view_of(*this, s, st, impl().offset, "squeeze",
                 [from = shape()](const Tensor& g) { return detail::Grads{g.reshape(from)}; });
}

Tensor Tensor::expand(const Shape& target) const {
  const int lead = target.size() - dim();
  EMBER_CHECK_SHAPE(lead >= 0, "expand: cannot expand shape ", shape(), " to ", target,
                    " (fewer dims)");
  Shape s = target, st = Shape::filled(target.size(), 0);
  for (int i = 0; i < target.size(); ++i) {
    const int j = i - lead;
    if (j < 0) {
      EMBER_CHECK_SHAPE(target[i] >= 0, "expand: new leading dim ", i, " cannot be -1 (target ",
                        target, ")");
      continue;
    }
    const std::int64_t have = shape()[j];
    if (target[i] == -1 || target[i] == have) {
      s[i] = have;
      st[i] = strides()[j];
    } else {
      EMBER_CHECK_SHAPE(have == 1 && target[i] >= 0, "expand: cannot expand shape ", shape(),
                        " to ", target, " (dim ", j, " has size ", have, ", target ", target[i],
                        ")");
    }
  }
  if (s == shape()) return *this;
  return view_of(*this, s, st, impl().offset, "expand",
                 [from = shape()](const Tensor& g) { return detail::Grads{sum_to(g, from)}; });
}

Tensor Tensor::transpose(int dim0, int dim1) const {
  if (dim() < 2 && dim0 == -2 && dim1 == -1) return *this;
  const int a = wrap_dim(dim0, dim(), "transpose"), b = wrap_dim(dim1, dim(), "transpose");
  if (a == b || dim() == 0) return *this;
  Shape s = shape(), st = strides();
  std::swap(s[a], s[b]);
  std::swap(st[a], st[b]);
  return view_of(*this, s, st, impl().offset, "transpose",
                 [a, b](const Tensor& g) { return detail::Grads{g.transpose(a, b)}; });
}

Tensor detail::permute_dims(const Tensor& t, std::span<const int> dims) {
  const int n = t.dim();
  EMBER_CHECK_SHAPE(static_cast<int>(dims.size()) == n, "permute: ", dims.size(),
                    " dims given for a tensor of ", n, " dims");
  // Fixed arrays, no heap: an enumerated chain permutes a few tensors at every time step.
  std::array<int, kMaxRank> inverse{};
  std::array<bool, kMaxRank> seen{};
  Shape s = t.shape(), st = t.strides();
  for (int i = 0; i < n; ++i) {
    const int d = wrap_dim(dims[i], n, "permute");
    EMBER_CHECK_SHAPE(!seen[d], "permute: dim ", dims[i], " repeats");
    seen[d] = true;
    inverse[d] = i;
    s[i] = t.shape()[d];
    st[i] = t.strides()[d];
  }
  // The identity order views the tensor as it is: no view, no gradient node (an enumerated
  // chain's contractions ask for it at every time step).
  bool identity = true;
  for (int i = 0; i < n; ++i) identity = identity && inverse[i] == i;
  if (identity) return t;
  return view_of(t, s, st, t.impl().offset, "permute", [inverse, n](const Tensor& g) {
    return detail::Grads{permute_dims(g, std::span<const int>(inverse.data(), n))};
  });
}

Tensor Tensor::permute(const std::vector<int>& dims) const {
  return detail::permute_dims(*this, dims);
}

namespace {

// Gradient of a view that picks part of `from`: zeros with g copied into the same part.
Tensor scatter_into_zeros(const Tensor& g, const Shape& from,
                          const std::function<Tensor(const Tensor&)>& pick) {
  Tensor z = zeros(from, TensorOptions{}.with_dtype(g.dtype()).with_device(g.device()));
  const Tensor part = pick(z);
  detail::backend(g).copy(arg(part), arg(g));
  return z;
}

}  // namespace

Tensor Tensor::slice(int dim, std::int64_t start, std::int64_t end, std::int64_t step) const {
  const int d = wrap_dim(dim, this->dim(), "slice");
  EMBER_CHECK(step > 0, "slice: step must be positive, got ", step);
  const std::int64_t n = shape()[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<std::int64_t>(start, 0, n);
  end = std::clamp<std::int64_t>(end, start, n);
  Shape s = shape(), st = strides();
  s[d] = (end - start + step - 1) / step;
  st[d] = strides()[d] * step;
  return view_of(*this, s, st, impl().offset + start * strides()[d], "slice",
                 [d, start, end, step, from = shape()](const Tensor& g) {
                   return detail::Grads{scatter_into_zeros(
                       g, from, [&](const Tensor& z) { return z.slice(d, start, end, step); })};
                 });
}

Tensor Tensor::select(int dim, std::int64_t index) const {
  const int d = wrap_dim(dim, this->dim(), "select");
  const std::int64_t n = shape()[d];
  EMBER_CHECK_SHAPE(index >= -n && index < n, "select: index ", index, " is out of range for dim ",
                    dim, " of size ", n);
  if (index < 0) index += n;
  return slice(d, index, index + 1).squeeze(d);
}

// ------------------------------------------------------------------ cat, stack, pad ----
Tensor cat(const std::vector<Tensor>& tensors, int dim) {
  EMBER_CHECK(!tensors.empty(), "cat: needs at least one tensor");
  const Tensor& first = tensors.front();
  const int d = wrap_dim(dim, first.dim(), "cat");
  EMBER_CHECK_SHAPE(first.dim() > 0, "cat: zero-dim tensors cannot be concatenated; stack them");
  DType t = first.dtype();
  Shape shape = first.shape();
  shape[d] = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& x = tensors[i];
    detail::check_same_device("cat", first, x);
    t = promote(t, x.dtype());
    EMBER_CHECK_SHAPE(x.dim() == first.dim(), "cat: tensor ", i, " has shape ", x.shape(),
                      ", tensor 0 has shape ", first.shape(), " (ranks differ)");
    for (int k = 0; k < x.dim(); ++k)
      EMBER_CHECK_SHAPE(k == d || x.shape()[k] == first.shape()[k], "cat: tensor ", i,
                        " has shape ", x.shape(), ", tensor 0 has shape ", first.shape(),
                        " (they differ outside dim ", d, ")");
    shape[d] += x.shape()[d];
  }
  Tensor out = detail::make_tensor(shape, t, first.device());
  // Record the converted inputs, so each gradient reaches its producer in its own dtype.
  std::vector<Tensor> inputs;
  inputs.reserve(tensors.size());
  for (const Tensor& x : tensors) inputs.push_back(x.to(t));
  std::vector<std::int64_t> sizes;
  std::int64_t offset = 0;
  bool grad = false;
  for (const Tensor& x : inputs) {
    const std::int64_t len = x.shape()[d];
    if (len > 0) detail::backend(out).copy(arg(out.narrow(d, offset, len)), arg(x));
    offset += len;
    sizes.push_back(len);
    grad = grad || detail::needs_grad({&x});
  }
  if (grad) {
    // Every input is an edge; the node hands each its slice of g.
    detail::BackwardFn fn = [d, sizes](const Tensor& g) {
      detail::Grads grads;
      std::int64_t off = 0;
      for (std::int64_t len : sizes) {
        grads.push_back(g.narrow(d, off, len));
        off += len;
      }
      return grads;
    };
    detail::record_many("cat", inputs, out, std::move(fn));
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int dim) {
  EMBER_CHECK(!tensors.empty(), "stack: needs at least one tensor");
  const int d = wrap_dim(dim, tensors.front().dim() + 1, "stack");
  std::vector<Tensor> parts;
  parts.reserve(tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    EMBER_CHECK_SHAPE(tensors[i].shape() == tensors.front().shape(), "stack: tensor ", i,
                      " has shape ", tensors[i].shape(), ", tensor 0 has shape ",
                      tensors.front().shape());
    parts.push_back(tensors[i].unsqueeze(d));
  }
  return cat(parts, d);
}

Tensor pad(const Tensor& x, const std::vector<std::int64_t>& pads, double value) {
  EMBER_CHECK_SHAPE(pads.size() % 2 == 0 && static_cast<int>(pads.size()) / 2 <= x.dim(),
                    "pad: ", pads.size(), " pad values for a tensor of ", x.dim(),
                    " dims (need an even count, at most two per dim)");
  Shape shape = x.shape();
  Tensor src = x;  // the part of x that survives negative pads
  std::vector<std::pair<std::int64_t, std::int64_t>> place;  // (dim, start in out)
  for (std::size_t k = 0; k < pads.size() / 2; ++k) {
    const int d = x.dim() - 1 - static_cast<int>(k);
    const std::int64_t left = pads[2 * k], right = pads[2 * k + 1];
    shape[d] = x.shape()[d] + left + right;
    EMBER_CHECK_SHAPE(shape[d] >= 0, "pad: padding (", left, ", ", right, ") of dim ", d,
                      " of shape ", x.shape(), " leaves a negative size");
    const std::int64_t crop_l = std::max<std::int64_t>(0, -left);
    const std::int64_t crop_r = std::max<std::int64_t>(0, -right);
    src = src.detach().slice(d, crop_l, std::max(crop_l, x.shape()[d] - crop_r));
    place.emplace_back(d, std::max<std::int64_t>(0, left));
  }
  Tensor out = full(shape, value, TensorOptions{}.with_dtype(x.dtype()).with_device(x.device()));
  Tensor dst = out;
  for (auto [d, start] : place) dst = dst.slice(d, start, start + src.shape()[d]);
  if (src.numel() > 0) detail::backend(x).copy(arg(dst), arg(src));
  if (detail::needs_grad({&x})) {
    std::vector<std::int64_t> neg(pads.size());
    std::transform(pads.begin(), pads.end(), neg.begin(), [](std::int64_t p) { return -p; });
    detail::record("pad", {x}, out,
                   [neg](const Tensor& g) { return detail::Grads{pad(g, neg, 0.0)}; });
  }
  return out;
}

}  // namespace ember
