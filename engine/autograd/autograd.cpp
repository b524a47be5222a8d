// The reverse sweep over the dynamic tape, grad mode, and recording of nodes.
#include <mutex>
#include <vector>

#include "engine/autograd/node.hpp"
#include "engine/compile/plan.hpp"
#include "engine/internal.hpp"

namespace ember {
namespace {
thread_local bool t_grad_enabled = true;
}

bool grad_enabled() { return t_grad_enabled; }
NoGradGuard::NoGradGuard() : prev_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = prev_; }

namespace detail {

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

void record_many(const char* name, std::span<const Tensor> inputs, Tensor& out, BackwardFn fn) {
  auto& impl = out.impl();
  impl.requires_grad = true;
  impl.grad_fn = pooled<autograd::Node>(name, inputs, std::move(fn));
}

}  // namespace detail

namespace autograd {

Node::Node(const char* name, std::span<const Tensor> inputs, detail::BackwardFn fn)
    : name_(name), fn_(std::move(fn)) {
  for (const Tensor& in : inputs) {
    Edge& e = edges_.emplace_back();
    if (in.defined() && in.requires_grad()) {
      if (in.grad_fn())
        e.fn = in.grad_fn();
      else
        e.leaf = in.impl_ptr();
    }
  }
}

detail::Grads Node::apply(const Tensor& grad) {
  EMBER_CHECK(static_cast<bool>(fn_), "backward through '", name_,
              "' a second time: its saved tensors were released after the first backward");
  return fn_(grad);
}

namespace {

Tensor accumulate(const Tensor& acc, const Tensor& g) { return acc.defined() ? acc + g : g; }

void accumulate_leaf(detail::TensorImpl& leaf, Tensor g, const char* from) {
  EMBER_CHECK_SHAPE(g.shape() == leaf.shape, "internal: gradient from '", from, "' has shape ",
                    g.shape(), " but the leaf has shape ", leaf.shape);
  if (g.dtype() != leaf.dtype) g = g.to(leaf.dtype);
  // Expanded or strided gradients become plain tensors before a user sees them.
  if (!g.is_contiguous()) g = g.contiguous();
  // A step input that requires grad, in a step being recorded: the plan adds it at each
  // replay (Recorder::keep_input_grad).
  if (detail::Recorder* rec = detail::recorder(); rec != nullptr && rec->keep_input_grad(leaf, g))
    return;
  // Backward passes of several threads may reach one leaf (a module both use): each adds its
  // gradient in turn, none lost (once per leaf and pass, so one lock serves all leaves).
  static std::mutex leaves;
  const std::lock_guard<std::mutex> lock(leaves);
  if (leaf.grad && leaf.grad->defined())
    *leaf.grad = *leaf.grad + g;
  else
    leaf.grad = detail::pooled<Tensor>(g);
}

}  // namespace

namespace {

// A thread's scratch for the sweep, reused so that a step's backward allocates no containers;
// a sweep started inside another one (from a backward function) gets its own.
struct Sweep {
  std::vector<std::shared_ptr<Node>> reached;  // alive until the sweep ends
  std::vector<Node*> stack;
  bool busy = false;
};
thread_local Sweep t_sweep;

}  // namespace

void run_backward(const Tensor& root, const Tensor& seed) {
  NoGradGuard no_grad;  // gradients themselves are not recorded (first order only)
  const auto& root_fn = root.grad_fn();
  if (!root_fn) {
    accumulate_leaf(root.impl(), seed, "seed");
    return;
  }
  Sweep nested;
  Sweep& sweep = t_sweep.busy ? nested : t_sweep;
  sweep.busy = true;
  std::vector<std::shared_ptr<Node>>& reached = sweep.reached;
  std::vector<Node*>& stack = sweep.stack;
  // Leaves every reached node as the sweep found it, however the sweep ends.
  struct Reset {
    Sweep& sweep;
    ~Reset() {
      for (const auto& n : sweep.reached) {
        n->pending_ = -1;
        n->grad_ = Tensor();
      }
      sweep.reached.clear();
      sweep.stack.clear();
      sweep.busy = false;
    }
  } reset{sweep};
  // Count, for each node, how many recorded consumers will send it a gradient.
  root_fn->pending_ = 0;
  reached.push_back(root_fn);
  stack.push_back(root_fn.get());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->edges()) {
      if (!e.fn) continue;
      if (e.fn->pending_ < 0) {
        e.fn->pending_ = 0;
        reached.push_back(e.fn);
        stack.push_back(e.fn.get());
      }
      ++e.fn->pending_;
    }
  }
  // Nodes whose gradients have all arrived, run one at a time (the stack, reused).
  root_fn->grad_ = seed;
  stack.push_back(root_fn.get());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    // A node no gradient reached still passes through, so its inputs' counts drop. The
    // gradients are made in place (no empty list made first and then assigned).
    const detail::Grads input_grads = [n] {
      if (!n->grad_.defined()) return detail::Grads{};
      const Tensor g = std::move(n->grad_);
      n->grad_ = Tensor();
      return n->apply(g);
    }();
    n->release();
    const auto& edges = n->edges();
    for (std::size_t i = 0; i < edges.size(); ++i) {
      const Edge& e = edges[i];
      const bool has_grad = i < input_grads.size() && input_grads[i].defined();
      if (e.fn) {
        Node* next = e.fn.get();
        if (has_grad) next->grad_ = accumulate(next->grad_, input_grads[i]);
        if (--next->pending_ == 0) stack.push_back(next);
      } else if (e.leaf && has_grad) {
        accumulate_leaf(*e.leaf, input_grads[i], n->name());
      }
    }
  }
}

}  // namespace autograd
}  // namespace ember
