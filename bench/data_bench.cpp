// Data loading: decoding MNIST's IDX files (the shipped gzip-compressed 10,000 images, and a
// plain file the size of the full 70,000), and DataLoader throughput for MNIST-shaped batches
// (128 examples of 784 float32) on each backend, with and without prefetching. Bytes/s count
// decoded bytes (IDX) or the bytes of the batches delivered (loader).
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bench/bench_util.hpp"

namespace ember::bench {
namespace {

const std::string kMnistImages = EMBER_DATA_DIR "/mnist10k-images-idx3-ubyte.gz";

// A plain (uncompressed) IDX file of `images` 28x28 uint8 images, made on first use.
std::string plain_idx(std::int64_t images);

// Reads the shipped gzip-compressed subset (images = 10000, gzip) or a plain file.
void bm_read_idx(benchmark::State& state, bool gzip, std::int64_t images) {
  const std::string path = gzip ? kMnistImages : plain_idx(images);
  const Tensor check = data::read_idx(path, {.dtype = kFloat32});
  if (!validated(state, check.shape() == Shape({images, 28, 28}), "read_idx: wrong shape")) {
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(data::read_idx(path, {.dtype = kFloat32}));
  state.SetItemsProcessed(state.iterations() * images);
  state.SetBytesProcessed(state.iterations() * images * 784);
}

std::string plain_idx(std::int64_t images) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("ember_bench_" + std::to_string(images) + ".idx"))
          .string();
  if (std::filesystem::exists(path)) return path;
  std::ofstream out(path, std::ios::binary);
  const unsigned char header[16] = {0,
                                    0,
                                    8,
                                    3,
                                    static_cast<unsigned char>(images >> 24),
                                    static_cast<unsigned char>(images >> 16),
                                    static_cast<unsigned char>(images >> 8),
                                    static_cast<unsigned char>(images),
                                    0,
                                    0,
                                    0,
                                    28,
                                    0,
                                    0,
                                    0,
                                    28};
  out.write(reinterpret_cast<const char*>(header), sizeof header);
  std::vector<char> image(784);
  for (std::int64_t i = 0; i < images; ++i) {
    for (std::size_t k = 0; k < image.size(); ++k) image[k] = static_cast<char>((i + k) % 256);
    out.write(image.data(), static_cast<std::streamsize>(image.size()));
  }
  return path;
}

void bm_loader(benchmark::State& state, Device d, int prefetch) {
  const std::int64_t n = 60000, batch = 128;
  const data::TensorDataset ds(
      {randn({n, 784}), arange(static_cast<double>(n), TensorOptions{}.with_dtype(kInt64))});
  data::DataLoader loader(
      ds, {.batch_size = batch, .drop_last = true, .seed = 1, .device = d, .prefetch = prefetch});
  const double seconds = timed_loader_epochs(state, d, loader);
  if (seconds < 0) return;
  const auto batches = static_cast<double>(state.iterations() * loader.size());
  const double bytes_per_batch = static_cast<double>(batch) * (784 * 4 + 8 + 8);
  report_rates(state, d, loader.size(), seconds, static_cast<double>(batch), bytes_per_batch);
  state.counters["batches_per_s"] = benchmark::Counter(batches, benchmark::Counter::kIsRate);
}

void register_all(const std::vector<Backend>& backends) {
  add_copy_context(backends);
  const Backend& cpu = backends.front();
  benchmark::RegisterBenchmark(bench_name("ReadIdxGzip", cpu, "mnist10k").c_str(), bm_read_idx,
                               true, 10000)
      ->Unit(benchmark::kMillisecond);
  for (const std::int64_t images : {10000, 70000}) {
    benchmark::RegisterBenchmark(bench_name("ReadIdxPlain", cpu, images).c_str(), bm_read_idx,
                                 false, images)
        ->Unit(benchmark::kMillisecond);
  }
  for (const Backend& be : backends) {
    for (const int prefetch : {0, 2}) {
      register_ms(bench_name("DataLoader", be, "128x784/prefetch" + std::to_string(prefetch)),
                  bm_loader, be.device, prefetch);
    }
  }
}

}  // namespace
}  // namespace ember::bench

int main(int argc, char** argv) {
  return ember::bench::bench_main(argc, argv, ember::bench::register_all);
}
