// From an op's enum value to its functor, once for both launchers. Each X-macro list of
// kernels/math (EMBER_UNARY_OPS, EMBER_LOG_PROB_FAMILIES, ...) becomes an OpList of functor
// templates in enum order, and visit_op<T>(list, op, f) calls f.template operator()<Op<T>>()
// with the functor of `op` instantiated for the element type T.
#pragma once

#include <cstdint>

#include "kernels/math/distributions/families.hpp"
#include "kernels/math/elementwise_ops.hpp"
#include "kernels/math/optim.hpp"

namespace ember::kernels {

template <template <typename> class... Ops>
struct OpList {
  static constexpr int size = sizeof...(Ops);
};

// The X-macros expand to ", NameOp" per entry; a leading placeholder absorbs the first comma.
template <typename T>
struct OpListHead {};
template <template <typename> class Head, template <typename> class... Ops>
struct DropOpListHead {
  using type = OpList<Ops...>;
};

#define EMBER_LIST_OP(name) , name##Op
#define EMBER_LIST_REDUCE(name) , name##Reduce
#define EMBER_LIST_LOG_PROB(name) , name##LogProb
#define EMBER_LIST_SAMPLER(name) , name##Sampler
#define EMBER_LIST_SAMPLE_GRAD(name) , name##SampleGrad
#define EMBER_LIST_UPDATE(name) , name##Update

using UnaryOps = DropOpListHead<OpListHead EMBER_UNARY_OPS(EMBER_LIST_OP)>::type;
using ArithOps = DropOpListHead<OpListHead EMBER_BINARY_ARITH_OPS(EMBER_LIST_OP)>::type;
using CompareOps = DropOpListHead<OpListHead EMBER_BINARY_COMPARE_OPS(EMBER_LIST_OP)>::type;
using ReduceOps = DropOpListHead<OpListHead EMBER_REDUCE_OPS(EMBER_LIST_REDUCE)>::type;
using ScanOps = OpList<SumReduce, ProdReduce>;  // ScanOp's order
using LogProbFamilies =
    DropOpListHead<OpListHead EMBER_LOG_PROB_FAMILIES(EMBER_LIST_LOG_PROB)>::type;
using Samplers = DropOpListHead<OpListHead EMBER_SAMPLERS(EMBER_LIST_SAMPLER)>::type;
using SampleGrads = DropOpListHead<OpListHead EMBER_SAMPLE_GRADS(EMBER_LIST_SAMPLE_GRAD)>::type;
using OptimizerUpdates = DropOpListHead<OpListHead EMBER_OPTIMIZERS(EMBER_LIST_UPDATE)>::type;

#undef EMBER_LIST_OP
#undef EMBER_LIST_REDUCE
#undef EMBER_LIST_LOG_PROB
#undef EMBER_LIST_SAMPLER
#undef EMBER_LIST_SAMPLE_GRAD
#undef EMBER_LIST_UPDATE

// Calls f.template operator()<Op<T>>() for the index-th Op of the list (the enum's order).
template <typename T, template <typename> class... Ops, typename F>
void visit_op(OpList<Ops...>, int index, F&& f) {
  int k = 0;
  ((k++ == index ? (f.template operator()<Ops<T>>(), true) : false) || ...);
}

// Comparisons follow the arithmetic ops in BinaryOp; this is their index in CompareOps.
constexpr int compare_index(BinaryOp op) {
  return static_cast<int>(op) - static_cast<int>(BinaryOp::Eq);
}

}  // namespace ember::kernels
