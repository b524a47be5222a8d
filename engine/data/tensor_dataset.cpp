// TensorDataset: examples stored as the rows of tensors.
#include <cstring>

#include "ember/data/loader.hpp"
#include "ember/ops.hpp"
#include "engine/internal.hpp"

namespace ember::data {

TensorDataset::TensorDataset(std::vector<Tensor> tensors) {
  EMBER_CHECK(!tensors.empty(), "TensorDataset: needs at least one tensor");
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    EMBER_CHECK_SHAPE(t.defined() && t.dim() >= 1, "TensorDataset: tensor ", i,
                      " needs a dim 0 that counts the examples, its shape is ",
                      t.defined() ? t.shape().str() : "undefined");
    EMBER_CHECK_SHAPE(t.size(0) == tensors[0].size(0), "TensorDataset: tensor ", i, " has ",
                      t.size(0), " entries along dim 0, tensor 0 has ", tensors[0].size(0));
    // Contiguous, so that an example is one block of bytes a batch copies at once.
    tensors_.push_back(t.detach().contiguous());
  }
  size_ = tensors_[0].size(0);
}

std::vector<Tensor> TensorDataset::get_batch(std::span<const std::int64_t> indices,
                                             Device device) const {
  for (const std::int64_t i : indices) {
    EMBER_CHECK(i >= 0 && i < size_, "TensorDataset: index ", i, " is out of range for ", size_,
                " examples");
  }
  const auto n = static_cast<std::int64_t>(indices.size());
  std::vector<Tensor> batch;
  for (const Tensor& t : tensors_) {
    if (!t.device().is_cpu()) {
      const Tensor index =
          from_vector(indices, {n}, TensorOptions{}.with_dtype(kInt64).with_device(t.device()));
      batch.push_back(index_select(t, 0, index));
      continue;
    }
    Shape shape = t.shape();
    shape[0] = n;
    // Gathered straight into the memory the upload reads: page-locked for a GPU.
    Tensor rows = device.is_cuda() ? detail::make_pinned_tensor(shape, t.dtype(), device)
                                   : detail::make_tensor(shape, t.dtype(), Device::cpu());
    const std::size_t row_bytes =
        static_cast<std::size_t>(t.numel() / std::max<std::int64_t>(size_, 1)) *
        element_size(t.dtype());
    const auto* from = static_cast<const unsigned char*>(t.data_ptr());
    auto* to = static_cast<unsigned char*>(rows.data_ptr());
    for (std::int64_t k = 0; k < n; ++k) {
      std::memcpy(to + k * row_bytes, from + indices[static_cast<std::size_t>(k)] * row_bytes,
                  row_bytes);
    }
    batch.push_back(std::move(rows));
  }
  return batch;
}

}  // namespace ember::data
