// A node of the dynamic tape: one recorded op, the way back to its inputs, and the
// function that maps the output gradient to the input gradients.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "engine/internal.hpp"

namespace ember::autograd {

// Where an input's gradient goes: the node that produced it, or the leaf to accumulate into.
struct Edge {
  std::shared_ptr<Node> fn;
  std::shared_ptr<detail::TensorImpl> leaf;
  bool active() const { return fn != nullptr || leaf != nullptr; }
};

// A node's edges, one per input of its op (inline up to four).
using Edges = detail::InlineVector<Edge, 4>;

class Node {
 public:
  // The node of an op on `inputs`: an edge per input, to the node that made it, to the leaf
  // it is, or none (an input that requires no gradient), each made in place.
  Node(const char* name, std::span<const Tensor> inputs, detail::BackwardFn fn);

  const char* name() const { return name_; }
  const Edges& edges() const { return edges_; }
  // Gradients of the inputs; throws if the saved tensors were already released.
  detail::Grads apply(const Tensor& grad);
  // Frees the tensors saved for backward (the tape's memory).
  void release() { fn_ = nullptr; }

 private:
  friend void run_backward(const Tensor& root, const Tensor& seed);
  const char* name_;
  Edges edges_;
  detail::BackwardFn fn_;
  // The reverse sweep's state, kept here rather than in maps: the recorded consumers whose
  // gradients have yet to arrive (-1: not reached by the sweep), and their sum so far.
  int pending_ = -1;
  Tensor grad_;
};

// Runs the reverse sweep from root with the given seed gradient.
void run_backward(const Tensor& root, const Tensor& seed);

}  // namespace ember::autograd
