// The definitions of BinaryArea: binary arithmetic, comparisons and their gradients over
// the launcher's loop (kernels/common/launcher.hpp), included only by the
// launcher source file that instantiates it.
#pragma once

#include <cstdint>

#include "kernels/common/areas/run.hpp"
#include "kernels/common/dispatch.hpp"
#include "kernels/common/elementwise_bodies.hpp"
#include "kernels/common/launcher.hpp"
#include "kernels/common/op_lists.hpp"

namespace ember::kernels {

template <typename Impl>
void BinaryArea<Impl>::binary(BinaryOp op, const TensorArg& out, const TensorArg& a,
                              const TensorArg& b) {
  auto loop = static_cast<Impl*>(this)->loop();
  const TensorArg da = loop.densify(a, out), db = loop.densify(b, out);
  const TensorArg* args[3] = {&out, &da, &db};
  if (is_comparison(op)) {
    dispatch_all(a.dtype, [&]<typename T>() {
      visit_op<T>(CompareOps{}, compare_index(op), [&]<typename Op>() {
        run_over(loop, args,
                 BinaryBody<Op, T, std::uint8_t>{out.ptr<std::uint8_t>(), Operand<T>(da, loop),
                                                 Operand<T>(db, loop)});
      });
    });
    return;
  }
  dispatch_arith(out.dtype, binary_op_name(op), [&]<typename T>() {
    visit_op<T>(ArithOps{}, static_cast<int>(op), [&]<typename Op>() {
      run_over(loop, args,
               BinaryBody<Op, T, T>{out.ptr<T>(), Operand<T>(da, loop), Operand<T>(db, loop)});
    });
  });
}

template <typename Impl>
void BinaryArea<Impl>::binary_backward(BinaryOp op, const TensorArg* ga, const TensorArg* gb,
                                       const TensorArg& g, const TensorArg& a, const TensorArg& b,
                                       const TensorArg& y) {
  auto loop = static_cast<Impl*>(this)->loop();
  if (ga == nullptr && gb == nullptr) return;
  const TensorArg& shape = ga != nullptr ? *ga : *gb;
  const TensorArg da = loop.densify(a, shape), db = loop.densify(b, shape),
                  dy = loop.densify(y, shape);
  dispatch_floating(g.dtype, binary_op_name(op), [&]<typename T>() {
    visit_op<T>(ArithOps{}, static_cast<int>(op), [&]<typename Op>() {
      const TensorArg* args[6] = {ga ? ga : &g, gb ? gb : &g, &g, &da, &db, &dy};
      run_over(loop, args,
               BinaryBackwardBody<Op, T>{ga ? ga->ptr<T>() : nullptr, gb ? gb->ptr<T>() : nullptr,
                                         g.ptr<const T>(), Operand<T>(da, loop),
                                         Operand<T>(db, loop), Operand<T>(dy, loop)});
    });
  });
}

}  // namespace ember::kernels
