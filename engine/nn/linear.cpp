// Linear and Embedding.
#include <cmath>

#include "ember/error.hpp"
#include "ember/nn/init.hpp"
#include "ember/nn/layers.hpp"

namespace ember::nn {

Linear::Linear(std::int64_t in_features, std::int64_t out_features, bool bias,
               const TensorOptions& opts, Generator* gen) {
  EMBER_CHECK(in_features > 0 && out_features > 0,
              "Linear: in_features and out_features must be positive, got ", in_features, " and ",
              out_features);
  weight_ = &register_parameter(
      "weight", init::kaiming_uniform({out_features, in_features}, std::sqrt(5.0), opts, gen));
  if (bias) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
    bias_ = &register_parameter("bias", init::uniform({out_features}, -bound, bound, opts, gen));
  }
}

Tensor Linear::forward(const Tensor& input) {
  EMBER_CHECK_SHAPE(input.dim() >= 1 && input.size(-1) == weight_->size(1),
                    "Linear: input of shape ", input.shape(),
                    " does not end in in_features = ", weight_->size(1));
  return linear(input, *weight_, bias_ != nullptr ? *bias_ : Tensor());
}

Embedding::Embedding(std::int64_t num_embeddings, std::int64_t embedding_dim,
                     std::optional<std::int64_t> padding_idx, const TensorOptions& opts,
                     Generator* gen) {
  EMBER_CHECK(num_embeddings > 0 && embedding_dim > 0,
              "Embedding: num_embeddings and embedding_dim must be positive, got ", num_embeddings,
              " and ", embedding_dim);
  if (padding_idx && *padding_idx < 0) *padding_idx += num_embeddings;
  EMBER_CHECK(!padding_idx || (*padding_idx >= 0 && *padding_idx < num_embeddings),
              "Embedding: padding_idx must lie in [-", num_embeddings, ", ", num_embeddings, ")");
  padding_idx_ = padding_idx;
  Tensor w = init::normal({num_embeddings, embedding_dim}, 0.0, 1.0, opts, gen);
  if (padding_idx_) {
    const Tensor row = arange(static_cast<double>(num_embeddings),
                              TensorOptions{}.with_dtype(kInt64).with_device(w.device()));
    w = where(eq(row, static_cast<double>(*padding_idx_)).unsqueeze(1), 0.0, w);
  }
  weight_ = &register_parameter("weight", w);
}

Tensor Embedding::forward(const Tensor& indices) {
  EMBER_CHECK_DTYPE(indices.dtype() == kInt64, "Embedding: indices must be int64, got ",
                    indices.dtype());
  const Tensor out = index_rows(*weight_, indices);
  if (!padding_idx_) return out;
  // The padding row's lookups keep their value but pass no gradient.
  const Tensor pad = eq(indices, static_cast<double>(*padding_idx_)).unsqueeze(-1);
  return where(pad, out.detach(), out);
}

}  // namespace ember::nn
