// DataLoader: epochs of mini-batches in a Philox-shuffled order, made ahead on a background
// thread and, for a GPU, uploaded from page-locked memory on streams of the loader's own.
#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <numeric>
#include <optional>
#include <thread>

#include "ember/data/loader.hpp"
#include "ember/random.hpp"
#include "ember/stream.hpp"
#include "engine/internal.hpp"
#include "kernels/math/philox.hpp"

namespace ember::data {
namespace {

// Epoch `epoch`'s order of n examples: a Fisher-Yates shuffle whose swap i draws from the
// Philox block (seed, epoch, i), so the order depends on nothing else.
std::vector<std::int64_t> epoch_order(std::int64_t n, std::uint64_t seed, std::int64_t epoch,
                                      bool shuffle) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  if (!shuffle) return order;
  for (std::int64_t i = n - 1; i > 0; --i) {
    const kernels::Philox4 block = kernels::philox_block(seed, static_cast<std::uint64_t>(epoch),
                                                         static_cast<std::uint64_t>(i));
    const std::uint64_t bits =
        static_cast<std::uint64_t>(block.x) | (static_cast<std::uint64_t>(block.y) << 32);
    // Multiply-shift onto [0, i]: uniform up to a bias of i / 2^64.
    const auto j = static_cast<std::int64_t>(
        (static_cast<unsigned __int128>(bits) * static_cast<std::uint64_t>(i + 1)) >> 64);
    std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
  }
  return order;
}

}  // namespace

const Tensor& Batch::operator[](std::size_t field) const {
  EMBER_CHECK(field < tensors.size(), "Batch: field ", field, " does not exist (the batch has ",
              tensors.size(), ")");
  return tensors[field];
}

// One epoch: its batches, made in order by make() on a background thread when prefetching
// (handed over through ready_), else when asked.
class DataLoader::Epoch {
 public:
  Epoch(std::shared_ptr<const Dataset> dataset, const DataLoaderOptions& options,
        std::vector<std::int64_t> order, std::int64_t batches)
      : dataset_(std::move(dataset)),
        options_(options),
        order_(std::move(order)),
        batches_(batches) {
    if (options_.prefetch > 0 && batches_ > 0) producer_ = std::thread([this] { produce(); });
  }

  ~Epoch() {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    if (producer_.joinable()) producer_.join();
  }

  // The next batch into *out; false after the last. Rethrows what making it threw.
  bool next(Batch* out) {
    if (!producer_.joinable()) {
      if (taken_ == batches_) return false;
      const std::int64_t number = taken_;
      taken_ = batches_;  // a batch that throws ends the epoch, as with prefetching
      *out = make(number);
      taken_ = number + 1;
      return true;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return !ready_.empty() || produced_all_; });
    if (ready_.empty()) {
      if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
      return false;
    }
    *out = std::move(ready_.front());
    ready_.pop_front();
    // The calling thread's stream waits, on the device, for the batch's upload: the only work
    // queued so far on the stream it was uploaded on (see produce()).
    for (const Tensor& t : out->tensors) detail::order_use(t);
    detail::order_use(out->indices);
    changed_.notify_all();
    return true;
  }

 private:
  void produce() {
    try {
      const NoGradGuard no_grad;
      // Uploads go to streams of the loader's own, so they overlap the training stream's work.
      // Batch k uses stream k mod (prefetch + 1): by the time the producer makes batch k, batch
      // k - prefetch - 1 has been taken (at most `prefetch` wait in ready_), so a consumer that
      // orders its work after a batch's stream waits for that batch's upload alone.
      std::vector<Stream> streams;
      if (options_.device.is_cuda()) {
        for (int s = 0; s <= options_.prefetch; ++s) streams.emplace_back(options_.device);
      }
      for (std::int64_t number = 0; number < batches_; ++number) {
        {
          std::unique_lock<std::mutex> lock(mutex_);
          changed_.wait(lock, [&] {
            return stopping_ || ready_.size() < static_cast<std::size_t>(options_.prefetch);
          });
          if (stopping_) return;
        }
        std::optional<StreamGuard> on_stream;
        if (!streams.empty()) on_stream.emplace(streams[number % streams.size()]);
        Batch batch = make(number);
        const std::lock_guard<std::mutex> lock(mutex_);
        ready_.push_back(std::move(batch));
        changed_.notify_all();
      }
    } catch (...) {
      const std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
    }
    const std::lock_guard<std::mutex> lock(mutex_);
    produced_all_ = true;
    changed_.notify_all();
  }

  Batch make(std::int64_t number) const {
    const std::int64_t begin = number * options_.batch_size;
    const std::int64_t n = std::min<std::int64_t>(options_.batch_size,
                                                  static_cast<std::int64_t>(order_.size()) - begin);
    const std::span<const std::int64_t> indices(order_.data() + begin, static_cast<std::size_t>(n));
    const Device device = options_.device;
    Batch batch;
    batch.number = number;
    std::vector<Tensor> fields = dataset_->get_batch(indices, device);
    for (std::size_t f = 0; f < fields.size(); ++f) {
      const Tensor& t = fields[f];
      EMBER_CHECK_SHAPE(t.defined() && t.dim() >= 1 && t.size(0) == n, "DataLoader: field ", f,
                        " of batch ", number, " from the dataset has shape ",
                        t.defined() ? t.shape().str() : "undefined", ", expected ", n,
                        " entries along dim 0");
      batch.tensors.push_back(deliver(t));
    }
    Tensor host_indices = device.is_cuda() ? detail::make_pinned_tensor({n}, kInt64, device)
                                           : detail::make_tensor({n}, kInt64, Device::cpu());
    std::memcpy(host_indices.data_ptr(), indices.data(), indices.size_bytes());
    batch.indices = deliver(host_indices);
    return batch;
  }

  // `t` on the loader's device: uploaded to a GPU from pinned memory without waiting.
  Tensor deliver(const Tensor& t) const {
    const Device device = options_.device;
    if (t.device() == device) return t;
    if (!device.is_cuda() || !t.device().is_cpu()) return t.to(device);
    return t.pin_memory(device).to(device, /*non_blocking=*/true);
  }

  std::shared_ptr<const Dataset> dataset_;
  DataLoaderOptions options_;
  std::vector<std::int64_t> order_;
  std::int64_t batches_;
  std::int64_t taken_ = 0;  // batches made when asked (no producer)
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Batch> ready_;
  std::exception_ptr error_;  // what the producer threw, after the batches it made before
  bool stopping_ = false;
  bool produced_all_ = false;
  std::thread producer_;  // last: started once everything it uses exists
};

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options)
    : dataset_(std::move(dataset)), options_(options) {
  EMBER_CHECK(dataset_ != nullptr, "DataLoader: the dataset is null");
  EMBER_CHECK(options_.batch_size >= 1, "DataLoader: batch_size must be at least 1, got ",
              options_.batch_size);
  EMBER_CHECK(options_.prefetch >= 0, "DataLoader: prefetch must be at least 0, got ",
              options_.prefetch);
  if (options_.device.is_cuda()) Device::cuda(options_.device.index());  // validates it
  seed_ = options_.seed ? *options_.seed : default_generator().fork().seed();
}

DataLoader::DataLoader(TensorDataset dataset, DataLoaderOptions options)
    : DataLoader(std::make_shared<TensorDataset>(std::move(dataset)), options) {}

DataLoader::~DataLoader() = default;
DataLoader::DataLoader(DataLoader&&) noexcept = default;
DataLoader& DataLoader::operator=(DataLoader&&) noexcept = default;

std::int64_t DataLoader::size() const {
  const std::int64_t n = dataset_->size();
  return options_.drop_last ? n / options_.batch_size
                            : (n + options_.batch_size - 1) / options_.batch_size;
}

void DataLoader::set_epoch(std::int64_t epoch) {
  EMBER_CHECK(epoch >= 0, "DataLoader::set_epoch: the epoch must be at least 0, got ", epoch);
  next_epoch_ = epoch;
}

DataLoader::Iterator DataLoader::begin() {
  running_.reset();  // the previous epoch's producer ends before the next one starts
  running_ = std::make_unique<Epoch>(
      dataset_, options_, epoch_order(dataset_->size(), seed_, next_epoch_, options_.shuffle),
      size());
  ++next_epoch_;
  return Iterator(running_.get());
}

DataLoader::Iterator::Iterator(Epoch* epoch) : epoch_(epoch) { ++*this; }

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  done_ = !epoch_->next(&batch_);
  return *this;
}

}  // namespace ember::data
