// Indexing ops: index_select, gather, scatter_add, index_add. Index tensors are int64 and
// are bounds-checked while validation is on (a device sync on the GPU).
#include "engine/compile/plan.hpp"
#include "engine/internal.hpp"

namespace ember {
namespace {

using detail::arg;

void check_index(const char* op, const Tensor& x, const Tensor& index, int dim,
                 std::int64_t bound) {
  detail::check_same_device(op, x, index);
  EMBER_CHECK_DTYPE(index.dtype() == kInt64, op, ": index must be int64, got ", index.dtype());
  if (!validation_enabled() || index.numel() == 0) return;
  auto fail = [op, dim, bound, shape = x.shape()](std::int64_t bad) {
    throw ValueError(detail::concat(op, ": index ", bad, " is out of range for dim ", dim,
                                    " of size ", bound, " (tensor shape ", shape, ")"));
  };
  {
    const detail::PauseRecording checks_are_not_replayed;
    std::int64_t bad = 0;
    if (detail::backend(index).find_index_out_of_range(arg(index), bound, &bad)) fail(bad);
  }
  // While recording on the CPU, the check is kept for the replays too (one pass over the
  // indices; hoisted where the index is a constant of the plan): a replay runs the kernels
  // alone, and an index passed to the program, or computed from what was, would otherwise be
  // read and written through wherever it points.
  if (detail::Recorder* rec = detail::recorder(); rec != nullptr && index.device().is_cpu())
    rec->add_index_check(arg(index), bound, std::move(fail));
}

// A 0-d index acts as a 1-element 1-d index.
Tensor as_vector_index(const Tensor& index, const char* op) {
  EMBER_CHECK_SHAPE(index.dim() <= 1, op, ": index must be 1-d, got shape ", index.shape());
  return index.dim() == 0 ? index.reshape({1}) : index;
}

// gather/scatter_add: index has x's rank and no larger size outside `dim`.
void check_gather_shapes(const char* op, const Tensor& x, const Tensor& index, int d) {
  EMBER_CHECK_SHAPE(index.dim() == x.dim(), op, ": index of shape ", index.shape(),
                    " needs the same number of dims as the tensor of shape ", x.shape());
  for (int k = 0; k < x.dim(); ++k)
    EMBER_CHECK_SHAPE(k == d || index.shape()[k] <= x.shape()[k], op, ": index of shape ",
                      index.shape(), " is larger than the tensor of shape ", x.shape(), " in dim ",
                      k);
}

}  // namespace

Tensor index_rows(const Tensor& x, const Tensor& index) {
  EMBER_CHECK_SHAPE(x.dim() >= 1, "index_rows: x must have a dim to index, got shape ", x.shape());
  EMBER_CHECK_DTYPE(index.dtype() == kInt64, "index_rows: the index must be int64, got ",
                    index.dtype());
  Shape shape = index.shape();
  for (int d = 1; d < x.dim(); ++d) shape.push_back(x.size(d));
  // An enumerated support (0, 1, ..., K - 1 in order) over all of x's rows picks x itself.
  const detail::TensorImpl& idx = index.impl();
  if (idx.storage != nullptr && idx.storage->holds_iota() && idx.offset == 0 &&
      index.is_contiguous() && index.numel() == x.size(0)) {
    return x.reshape(shape);
  }
  return index_select(x, 0, index.reshape({-1})).reshape(shape);
}

Tensor index_select(const Tensor& x, int dim, const Tensor& index_in) {
  const int d = wrap_dim(dim, x.dim(), "index_select");
  const Tensor index = as_vector_index(index_in, "index_select");
  const Tensor base = x.dim() == 0 ? x.reshape({1}) : x;
  check_index("index_select", base, index, d, base.shape()[d]);
  Shape shape = base.shape();
  shape[d] = index.numel();
  Tensor out = detail::make_tensor(shape, x.dtype(), x.device());
  if (out.numel() > 0) detail::backend(x).index_select(arg(out), arg(base), d, arg(index));
  if (detail::needs_grad({&base})) {
    detail::record("index_select", {base}, out, [d, index, from = base.shape()](const Tensor& g) {
      Tensor gx = zeros(from, TensorOptions{}.with_dtype(g.dtype()).with_device(g.device()));
      if (g.numel() > 0) detail::backend(g).index_add(arg(gx), d, arg(index), arg(g));
      return detail::Grads{gx};
    });
  }
  return x.dim() == 0 ? out.reshape(index_in.shape()) : out;
}

Tensor index_add(const Tensor& x, int dim, const Tensor& index_in, const Tensor& src) {
  const int d = wrap_dim(dim, x.dim(), "index_add");
  const Tensor index = as_vector_index(index_in, "index_add");
  detail::check_same_device("index_add", x, src);
  Shape expect = x.shape();
  expect[d] = index.numel();
  EMBER_CHECK_SHAPE(src.shape() == expect, "index_add: source of shape ", src.shape(),
                    " does not match ", expect, " (tensor ", x.shape(), " with ", index.numel(),
                    " indices along dim ", d, ")");
  check_index("index_add", x, index, d, x.shape()[d]);
  // Record the converted operands, so each gradient reaches its producer in its own dtype.
  const DType t = promote(x.dtype(), src.dtype());
  const Tensor xt = x.to(t), s = src.to(t);
  Tensor out = xt.detach().clone();
  if (s.numel() > 0) detail::backend(x).index_add(arg(out), d, arg(index), arg(s));
  if (detail::needs_grad({&xt, &s})) {
    detail::record("index_add", {xt, s}, out, [d, index](const Tensor& g) {
      return detail::Grads{g, index_select(g, d, index)};
    });
  }
  return out;
}

Tensor gather(const Tensor& x, int dim, const Tensor& index) {
  const int d = wrap_dim(dim, x.dim(), "gather");
  check_gather_shapes("gather", x, index, d);
  check_index("gather", x, index, d, x.dim() ? x.shape()[d] : 1);
  Tensor out = detail::make_tensor(index.shape(), x.dtype(), x.device());
  if (out.numel() > 0) detail::backend(x).gather(arg(out), arg(x), d, arg(index));
  if (detail::needs_grad({&x})) {
    detail::record("gather", {x}, out, [d, index, from = x.shape()](const Tensor& g) {
      Tensor gx = zeros(from, TensorOptions{}.with_dtype(g.dtype()).with_device(g.device()));
      if (g.numel() > 0) detail::backend(g).scatter_add(arg(gx), d, arg(index), arg(g));
      return detail::Grads{gx};
    });
  }
  return out;
}

Tensor scatter_add(const Tensor& x, int dim, const Tensor& index, const Tensor& src) {
  const int d = wrap_dim(dim, x.dim(), "scatter_add");
  detail::check_same_device("scatter_add", x, src);
  check_gather_shapes("scatter_add", x, index, d);
  EMBER_CHECK_SHAPE(src.dim() == index.dim(), "scatter_add: source of shape ", src.shape(),
                    " and index of shape ", index.shape(), " differ in rank");
  for (int k = 0; k < src.dim(); ++k)
    EMBER_CHECK_SHAPE(index.shape()[k] <= src.shape()[k], "scatter_add: index of shape ",
                      index.shape(), " is larger than the source of shape ", src.shape());
  check_index("scatter_add", x, index, d, x.dim() ? x.shape()[d] : 1);
  const DType t = promote(x.dtype(), src.dtype());
  const Tensor xt = x.to(t), s = src.to(t);
  Tensor out = xt.detach().clone();
  if (index.numel() > 0) detail::backend(x).scatter_add(arg(out), d, arg(index), arg(s));
  if (detail::needs_grad({&xt, &s})) {
    detail::record("scatter_add", {xt, s}, out, [d, index, src_shape = s.shape()](const Tensor& g) {
      Tensor gs = gather(g, d, index);
      if (!(gs.shape() == src_shape)) {
        // Source elements beyond the index's extent were never added: zero gradient.
        std::vector<std::int64_t> pads;
        for (int k = src_shape.size() - 1; k >= 0; --k) {
          pads.push_back(0);
          pads.push_back(src_shape[k] - gs.shape()[k]);
        }
        gs = pad(gs, pads);
      }
      return detail::Grads{g, gs};
    });
  }
  return out;
}

}  // namespace ember
