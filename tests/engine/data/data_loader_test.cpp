// TensorDataset and DataLoader: batch shapes and contents, drop_last, every example once per
// epoch, reproducible Philox orders, prefetching (shutdown mid-epoch, errors reaching the
// loop), and a subsampled plate fed from the loader.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "engine/data/data_test_util.hpp"

namespace ember::test {
namespace {

using data::Batch;
using data::DataLoader;
using data::TensorDataset;

// 10 examples: x holds rows (10 * i, 10 * i + 1, 10 * i + 2), y holds i.
TensorDataset numbered(std::int64_t n = 10) {
  const Tensor y = arange(static_cast<double>(n), TensorOptions{}.with_dtype(kInt64));
  const Tensor x = (y.to(kFloat32).unsqueeze(1) * 10.0) + arange(3.0).unsqueeze(0);
  return TensorDataset({x, y});
}

std::vector<std::int64_t> epoch_indices(DataLoader& loader) {
  std::vector<std::int64_t> all;
  for (const Batch& b : loader) {
    const auto idx = b.indices.to_vector<std::int64_t>();
    all.insert(all.end(), idx.begin(), idx.end());
  }
  return all;
}

TEST(TensorDataset, GathersRowsAndChecksItsArguments) {
  const TensorDataset ds = numbered();
  EXPECT_EQ(ds.size(), 10);
  const std::vector<std::int64_t> idx = {7, 2, 2};
  const auto batch = ds.get_batch(idx, Device::cpu());
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[0].shape(), Shape({3, 3}));
  EXPECT_EQ(batch[0].to_vector<double>(),
            (std::vector<double>{70, 71, 72, 20, 21, 22, 20, 21, 22}));
  EXPECT_EQ(batch[1].to_vector<std::int64_t>(), idx);
  EXPECT_FALSE(batch[0].is_pinned());
  // Non-contiguous inputs are taken as their values.
  const TensorDataset t({arange(6.0).reshape({2, 3}).t()});
  EXPECT_EQ(t.get_batch(std::vector<std::int64_t>{2}, Device::cpu())[0].to_vector<double>(),
            (std::vector<double>{2, 5}));

  EXPECT_THROW(TensorDataset({}), ValueError);
  EXPECT_THROW(TensorDataset({zeros({3}), zeros({4})}), ShapeError);
  EXPECT_THROW(TensorDataset({scalar_tensor(1.0)}), ShapeError);
  EXPECT_THROW(ds.get_batch(std::vector<std::int64_t>{10}, Device::cpu()), ValueError);
  EXPECT_THROW(ds.get_batch(std::vector<std::int64_t>{-1}, Device::cpu()), ValueError);
}

TEST(DataLoader, BatchShapesContentsAndDropLast) {
  DataLoader loader(numbered(), {.batch_size = 4, .seed = 3});
  EXPECT_EQ(loader.size(), 3);
  std::vector<std::int64_t> sizes;
  for (const Batch& b : loader) {
    sizes.push_back(b.size());
    EXPECT_EQ(b.number, static_cast<std::int64_t>(sizes.size()) - 1);
    EXPECT_EQ(b[0].shape(), Shape({b.size(), 3}));
    EXPECT_EQ(b[0].dtype(), kFloat32);
    EXPECT_EQ(b.indices.dtype(), kInt64);
    // Each row is the example its index names.
    EXPECT_EQ(b[1].to_vector<std::int64_t>(), b.indices.to_vector<std::int64_t>());
    EXPECT_EQ(b[0].to_vector<double>(),
              (b[1].to(kFloat32).unsqueeze(1) * 10.0 + arange(3.0)).to_vector<double>());
    EXPECT_THROW(b[2], ValueError);
  }
  EXPECT_EQ(sizes, (std::vector<std::int64_t>{4, 4, 2}));

  DataLoader dropping(numbered(), {.batch_size = 4, .drop_last = true, .seed = 3});
  EXPECT_EQ(dropping.size(), 2);
  EXPECT_EQ(epoch_indices(dropping).size(), 8u);
  DataLoader exact(numbered(8), {.batch_size = 4, .drop_last = true});
  EXPECT_EQ(epoch_indices(exact).size(), 8u);
}

TEST(DataLoader, EveryExampleOncePerEpochInANewOrderEachEpoch) {
  DataLoader loader(numbered(1000), {.batch_size = 64, .seed = 11});
  std::set<std::vector<std::int64_t>> orders;
  for (int epoch = 0; epoch < 4; ++epoch) {
    EXPECT_EQ(loader.epoch(), epoch);
    const auto order = epoch_indices(loader);
    std::vector<std::int64_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::int64_t> expected(1000);
    std::iota(expected.begin(), expected.end(), 0);
    EXPECT_EQ(sorted, expected) << "epoch " << epoch;
    EXPECT_NE(order, expected) << "epoch " << epoch << " is not shuffled";
    orders.insert(order);
  }
  EXPECT_EQ(orders.size(), 4u);

  DataLoader in_order(numbered(5), {.batch_size = 2, .shuffle = false});
  EXPECT_EQ(epoch_indices(in_order), (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(epoch_indices(in_order), (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
}

TEST(DataLoader, OrdersArePhiloxFunctionsOfSeedAndEpoch) {
  DataLoader a(numbered(), {.batch_size = 3, .seed = 42});
  DataLoader b(numbered(), {.batch_size = 5, .seed = 42, .prefetch = 0});
  // The same on every machine and compiler: Philox, not the standard library's engines.
  // tools/reference/philox_order.py, an independent Python Philox, prints these orders.
  const std::vector<std::int64_t> epoch0 = {5, 8, 9, 1, 3, 2, 4, 7, 0, 6};
  EXPECT_EQ(epoch_indices(a), epoch0);
  EXPECT_EQ(epoch_indices(b), epoch0);  // whatever the batch size and prefetching
  const auto epoch1 = epoch_indices(a);
  EXPECT_EQ(epoch1, (std::vector<std::int64_t>{2, 3, 0, 6, 8, 4, 7, 5, 1, 9}));
  // Resuming at an epoch repeats its order.
  DataLoader resumed(numbered(), {.batch_size = 3, .seed = 42});
  resumed.set_epoch(1);
  EXPECT_EQ(epoch_indices(resumed), epoch1);
  EXPECT_EQ(resumed.epoch(), 2);
  DataLoader other(numbered(), {.batch_size = 3, .seed = 43});
  EXPECT_NE(epoch_indices(other), epoch0);
  // Without a seed, the thread's generator gives one: set_rng_seed makes it reproducible.
  set_rng_seed(7);
  DataLoader c(numbered(), {.batch_size = 3});
  set_rng_seed(7);
  DataLoader d(numbered(), {.batch_size = 3});
  EXPECT_EQ(c.seed(), d.seed());
  EXPECT_EQ(epoch_indices(c), epoch_indices(d));
}

// A dataset that counts its calls, can be slow, and fails at one batch if told to.
class CountingDataset final : public data::Dataset {
 public:
  explicit CountingDataset(std::int64_t n, int fail_at_call = -1,
                           std::chrono::milliseconds delay = std::chrono::milliseconds(0))
      : inner_(numbered(n)), fail_at_call_(fail_at_call), delay_(delay) {}
  std::int64_t size() const override { return inner_.size(); }
  std::vector<Tensor> get_batch(std::span<const std::int64_t> indices,
                                Device device) const override {
    const int call = calls_++;
    std::this_thread::sleep_for(delay_);
    if (call == fail_at_call_) throw IoError("dataset: the disk is gone");
    return inner_.get_batch(indices, device);
  }
  int calls() const { return calls_; }

 private:
  TensorDataset inner_;
  int fail_at_call_;
  std::chrono::milliseconds delay_;
  mutable std::atomic<int> calls_{0};
};

TEST(DataLoader, ErrorsOfTheDatasetReachTheLoop) {
  for (const int prefetch : {0, 1, 3}) {
    SCOPED_TRACE(prefetch);
    auto ds = std::make_shared<CountingDataset>(10, /*fail_at_call=*/2);
    DataLoader loader(ds, {.batch_size = 2, .seed = 1, .prefetch = prefetch});
    int seen = 0;
    try {
      for (const Batch& b : loader) {
        EXPECT_EQ(b.size(), 2);
        ++seen;
      }
      ADD_FAILURE() << "the dataset's error did not reach the loop";
    } catch (const IoError& e) {
      EXPECT_STREQ(e.what(), "dataset: the disk is gone");
    }
    EXPECT_EQ(seen, 2);  // the batches made before the failure came first
    // The next epoch starts afresh (and this dataset fails no more).
    EXPECT_EQ(epoch_indices(loader).size(), 10u);
    // A failure ends its epoch: the iterator that threw reaches the end next.
    auto failing = std::make_shared<CountingDataset>(10, /*fail_at_call=*/1);
    DataLoader again(failing, {.batch_size = 2, .seed = 1, .prefetch = prefetch});
    auto it = again.begin();
    EXPECT_THROW(++it, IoError);
    ++it;
    EXPECT_TRUE(it == again.end());
  }
}

TEST(DataLoader, ABatchOfTheWrongSizeIsAShapeError) {
  class Ragged final : public data::Dataset {
   public:
    std::int64_t size() const override { return 4; }
    std::vector<Tensor> get_batch(std::span<const std::int64_t>, Device) const override {
      return {zeros({1, 2})};
    }
  };
  DataLoader loader(std::make_shared<Ragged>(), {.batch_size = 2});
  EXPECT_THROW(loader.begin(), ShapeError);
}

TEST(DataLoader, StopsItsThreadWhenDestroyedMidEpoch) {
  auto ds = std::make_shared<CountingDataset>(1000, -1, std::chrono::milliseconds(2));
  {
    DataLoader loader(ds, {.batch_size = 10, .seed = 5, .prefetch = 4});
    auto it = loader.begin();
    ++it;
    EXPECT_EQ(it->number, 1);
    EXPECT_EQ(ds.use_count(), 3);  // the test, the loader, and its running epoch
  }
  // The producer has ended: it holds no reference and makes no more batches.
  EXPECT_EQ(ds.use_count(), 1);
  const int calls = ds->calls();
  EXPECT_LE(calls, 2 + 4 + 1);  // taken, waiting, and the one being made
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(ds->calls(), calls);

  // Starting a new epoch mid-epoch stops the running one likewise.
  DataLoader loader(ds, {.batch_size = 10, .seed = 5, .prefetch = 2});
  for (int epoch = 0; epoch < 5; ++epoch) {
    auto it = loader.begin();
    EXPECT_EQ(it->number, 0);
  }
  EXPECT_EQ(loader.epoch(), 5);
}

TEST(DataLoader, MovesAndChecksItsOptions) {
  DataLoader a(numbered(), {.batch_size = 3, .seed = 42});
  DataLoader b = std::move(a);
  EXPECT_EQ(epoch_indices(b).size(), 10u);
  DataLoader empty(TensorDataset({zeros({0, 2})}), {.batch_size = 3});
  EXPECT_EQ(empty.size(), 0);
  EXPECT_TRUE(epoch_indices(empty).empty());
  EXPECT_THROW(DataLoader(numbered(), {.batch_size = 0}), ValueError);
  EXPECT_THROW(DataLoader(numbered(), {.prefetch = -1}), ValueError);
  EXPECT_THROW(DataLoader(std::shared_ptr<const data::Dataset>(), {}), ValueError);
  EXPECT_THROW(b.set_epoch(-1), ValueError);
  if (!cuda_available()) {
    EXPECT_THROW(DataLoader(numbered(), {.device = Device(DeviceType::CUDA, 0)}), DeviceError);
  }
}

// A subsampled plate fed from the loader: each batch's log-density is scaled by
// N / batch size, so over an epoch the mean loss is the full data's loss.
TEST(DataLoader, FeedsASubsampledPlateWhoseElboIsScaledByNOverBatch) {
  clear_param_store();
  const std::int64_t n = 12;
  const Tensor x = arange(static_cast<double>(n), TensorOptions{}.with_dtype(kFloat64)) * 0.5 - 1.0;
  auto model = [n](const Tensor& batch_x, const Tensor& indices) {
    const Tensor loc = param("loc", scalar_tensor(0.3, TensorOptions{}.with_dtype(kFloat64)));
    auto data = plate("data", n, {.subsample = indices});
    sample("obs", dist::Normal(loc, 1.0), batch_x);
  };
  auto guide = [](const Tensor&, const Tensor&) {};

  // The observed site's scale is N / batch.
  DataLoader loader(TensorDataset({x}), {.batch_size = 4, .drop_last = true, .seed = 9});
  {
    const auto it = loader.begin();
    const Batch& first = *it;
    handlers::TraceHandler tracer;
    model(first[0], first.indices);
    EXPECT_DOUBLE_EQ(tracer.trace().at("obs").scale, 3.0);
    EXPECT_EQ(tracer.trace().at("data").value.to_vector<std::int64_t>(),
              first.indices.to_vector<std::int64_t>());
  }
  SVI svi(model, guide, optim::Adam({.lr = 0.1}), Trace_ELBO());
  const Tensor all = arange(static_cast<double>(n), TensorOptions{}.with_dtype(kInt64));
  const double full = svi.evaluate_loss(x, all);
  double epoch_mean = 0;
  std::vector<double> batch_losses;
  for (const Batch& b : loader) {
    batch_losses.push_back(svi.evaluate_loss(b[0], b.indices));
    epoch_mean += batch_losses.back() / static_cast<double>(loader.size());
  }
  EXPECT_NEAR(epoch_mean, full, 1e-9 * std::abs(full));
  // A batch alone is not the full loss: the scale makes it an unbiased estimate of it.
  EXPECT_NE(batch_losses[0], batch_losses[1]);

  // Training from the loader finds the maximum-likelihood location, the data's mean.
  for (int epoch = 0; epoch < 60; ++epoch) {
    for (const Batch& b : loader) svi.step(b[0], b.indices);
  }
  EXPECT_NEAR(param("loc").item(), mean(x).item(), 0.1);
}

}  // namespace
}  // namespace ember::test
