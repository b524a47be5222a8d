// Mini-batches for training: a dataset of examples indexed along dim 0, and a loader that
// cuts it into batches in a new random order each epoch, prepares the next batch on a
// background thread and, for a GPU, uploads it from page-locked memory on a stream of its own
// so that a training step never waits for its data. Each batch carries the indices of its
// examples, which feed a subsampled plate:
//   DataLoader loader(TensorDataset({images}), {.batch_size = 128, .device = Device::best()});
//   for (const Batch& batch : loader) svi.step(batch[0], batch.indices);
//   ... in the model: auto data = plate("data", n, {.subsample = indices});
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "ember/tensor.hpp"

namespace ember::data {

class Dataset {
 public:
  virtual ~Dataset() = default;
  // The number of examples.
  virtual std::int64_t size() const = 0;
  // The examples at `indices`, in that order: one tensor per field, each with indices.size()
  // entries along dim 0. `device` is where the loader delivers the batch: tensors already
  // there are kept; CPU tensors bound for a GPU upload without waiting when they are pinned
  // for it (Tensor::pin_memory(device)), and are first copied into pinned memory otherwise.
  // The loader calls this from its background thread, one call at a time; what it throws
  // reaches the loop that iterates the loader.
  virtual std::vector<Tensor> get_batch(std::span<const std::int64_t> indices,
                                        Device device) const = 0;
};

// Tensors that share their size along dim 0, as examples: entry i of each is a field of
// example i (images and labels, say). On the CPU a batch is gathered row by row into fresh
// memory (pinned when bound for a GPU); tensors on a GPU are indexed there.
class TensorDataset final : public Dataset {
 public:
  // At least one tensor of at least one dim; a ShapeError names the first whose dim 0
  // differs from the first's.
  explicit TensorDataset(std::vector<Tensor> tensors);

  std::int64_t size() const override { return size_; }
  const std::vector<Tensor>& tensors() const { return tensors_; }
  // Indices must lie in [0, size()); a ValueError names the first that does not.
  std::vector<Tensor> get_batch(std::span<const std::int64_t> indices,
                                Device device) const override;

 private:
  std::vector<Tensor> tensors_;  // contiguous, detached
  std::int64_t size_ = 0;
};

struct DataLoaderOptions {
  std::int64_t batch_size = 1;
  // A new random order of the examples each epoch; false: 0, 1, 2, ... every epoch.
  bool shuffle = true;
  // Leave out the last batch of an epoch when it is smaller than batch_size.
  bool drop_last = false;
  // The seed of the orders: epoch e's order is a function of (seed, e) alone, from Philox, so
  // it is the same on every machine. Unset: drawn from the calling thread's generator when the
  // loader is made (set_rng_seed makes it reproducible).
  std::optional<std::uint64_t> seed;
  // Where batches (tensors and indices) are delivered.
  Device device = Device::cpu();
  // Batches prepared ahead on a background thread; 0: each is made when asked, in the
  // iterating thread.
  int prefetch = 2;
};

struct Batch {
  std::vector<Tensor> tensors;  // the dataset's fields at `indices`, on the loader's device
  Tensor indices;               // int64, 1-d: the examples' positions in the dataset
  std::int64_t number = 0;      // the batch's position in its epoch (0, 1, ...)

  std::int64_t size() const { return indices.size(0); }
  // A ValueError when there is no such field.
  const Tensor& operator[](std::size_t field) const;
};

class DataLoader {
  class Epoch;

 public:
  DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options = {});
  DataLoader(TensorDataset dataset, DataLoaderOptions options = {});
  // Stops the background thread: it finishes the batch it is making (a dataset call is not
  // interrupted) and ends; batches not yet taken are dropped.
  ~DataLoader();
  DataLoader(DataLoader&&) noexcept;
  DataLoader& operator=(DataLoader&&) noexcept;

  // Batches per epoch.
  std::int64_t size() const;
  const Dataset& dataset() const { return *dataset_; }
  const DataLoaderOptions& options() const { return options_; }
  std::uint64_t seed() const { return seed_; }
  // The epoch that the next begin() starts (0 for a new loader); begin() advances it.
  std::int64_t epoch() const { return next_epoch_; }
  // Resumes at `epoch` (its order is the one a loader that had run epoch - 1 epochs uses).
  void set_epoch(std::int64_t epoch);

  struct End {};
  class Iterator {
   public:
    const Batch& operator*() const { return batch_; }
    const Batch* operator->() const { return &batch_; }
    // The next batch (waits for it when it is not ready); rethrows what making it threw.
    Iterator& operator++();
    friend bool operator==(const Iterator& it, End) { return it.done_; }

   private:
    friend class DataLoader;
    explicit Iterator(Epoch* epoch);
    Epoch* epoch_;
    Batch batch_;
    bool done_ = false;
  };

  // Starts the next epoch (stopping one still running: an iterator of it must not be used
  // again) and returns its first batch. Iterate one epoch at a time, with range-for:
  //   for (const Batch& batch : loader) { ... }
  Iterator begin();
  End end() const { return {}; }

 private:
  std::shared_ptr<const Dataset> dataset_;
  DataLoaderOptions options_;
  std::uint64_t seed_ = 0;
  std::int64_t next_epoch_ = 0;
  std::unique_ptr<Epoch> running_;
};

}  // namespace ember::data
