// The definitions of ScanArea, which forwards to the launcher's launch_scan,
// launch_line_map, launch_line_backward, launch_categorical_log_prob(_backward) and
// launch_categorical_sample (kernels/common/launcher.hpp), included only by the launcher
// source file that instantiates it.
#pragma once

#include "kernels/common/launcher.hpp"

namespace ember::kernels {

template <typename Impl>
void ScanArea<Impl>::scan(ScanOp op, const TensorArg& out, const TensorArg& in, int dim,
                          bool reverse) {
  launch_scan(static_cast<Impl&>(*this), op, out, in, dim, reverse);
}

template <typename Impl>
void ScanArea<Impl>::line_map(LineMap op, const TensorArg& out, const TensorArg& in, int dim) {
  launch_line_map(static_cast<Impl&>(*this), op, out, in, dim);
}

template <typename Impl>
void ScanArea<Impl>::categorical_log_prob(const TensorArg& out, const TensorArg& table,
                                          const TensorArg& value, bool logits) {
  launch_categorical_log_prob(static_cast<Impl&>(*this), out, table, value, logits);
}

template <typename Impl>
void ScanArea<Impl>::categorical_log_prob_backward(const TensorArg& gtable, const TensorArg& g,
                                                   const TensorArg& table, const TensorArg& value,
                                                   bool logits) {
  launch_categorical_log_prob_backward(static_cast<Impl&>(*this), gtable, g, table, value, logits);
}

template <typename Impl>
void ScanArea<Impl>::categorical_sample(const TensorArg& out, const TensorArg& table,
                                        const TensorArg& u, bool logits) {
  launch_categorical_sample(static_cast<Impl&>(*this), out, table, u, logits);
}

template <typename Impl>
void ScanArea<Impl>::line_backward(LineGrad op, const TensorArg& gx, const TensorArg& g,
                                   const TensorArg& x, int dim) {
  launch_line_backward(static_cast<Impl&>(*this), op, gx, g, x, dim);
}

}  // namespace ember::kernels
