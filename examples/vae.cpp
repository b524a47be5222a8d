// Pyro's VAE tutorial on MNIST: a 784-400-50 encoder and decoder with softplus hidden layers, a
// Bernoulli likelihood on pixel intensities, Adam 1e-3, batches of 128 from a shuffling
// DataLoader. Each epoch prints the ELBO per image on the training and the test images; at the
// end it writes DIR/reconstructions.png (test digits over their reconstructions),
// DIR/samples.png (digits decoded from prior draws) and DIR/loss.png (the ELBO curves).
//
// By default the 10,000 digits shipped in data/ are used, every tenth one held out for the
// test; with --data DIR the full MNIST IDX files in DIR (train-images-idx3-ubyte and
// t10k-images-idx3-ubyte, plain or .gz).
//
//   vae --epochs N --out DIR [--data DIR] [--device cpu|cuda] [--batch B] [--train N]
//       [--min-test-elbo X] [--compile on|off]
// --train keeps only the first N training images (a quick run); --min-test-elbo makes the
// program fail (exit 1) when the last test ELBO is below X, for smoke tests; --compile on
// records the training step and the test loss once and replays them (docs/compile.md): the
// same numbers, less time per step.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "examples/vae_model.hpp"

using namespace ember;
namespace fs = std::filesystem;

namespace {

const TensorOptions kInt64Options = TensorOptions{}.with_dtype(kInt64);

struct Args {
  int epochs = 10;
  fs::path out = "vae_out";
  std::optional<fs::path> data;
  Device device = Device::cpu();
  std::int64_t batch = 128;
  std::optional<std::int64_t> train;
  std::optional<double> min_test_elbo;
  bool compile = false;
};

[[noreturn]] void usage(const char* problem) {
  std::fprintf(stderr,
               "vae: %s\nusage: vae --epochs N --out DIR [--data DIR] [--device cpu|cuda] "
               "[--batch B] [--train N] [--min-test-elbo X] [--compile on|off]\n",
               problem);
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) usage(("no value after " + flag).c_str());
    const std::string value = argv[i + 1];
    if (flag == "--epochs") {
      a.epochs = std::atoi(value.c_str());
    } else if (flag == "--out") {
      a.out = value;
    } else if (flag == "--data") {
      a.data = value;
    } else if (flag == "--device") {
      if (value != "cpu" && value != "cuda") usage("--device is cpu or cuda");
      a.device = value == "cuda" ? Device::cuda(0) : Device::cpu();
    } else if (flag == "--batch") {
      a.batch = std::atoll(value.c_str());
    } else if (flag == "--train") {
      a.train = std::atoll(value.c_str());
    } else if (flag == "--min-test-elbo") {
      a.min_test_elbo = std::atof(value.c_str());
    } else if (flag == "--compile") {
      if (value != "on" && value != "off") usage("--compile is on or off");
      a.compile = value == "on";
    } else {
      usage(("unknown option " + flag).c_str());
    }
  }
  if (a.epochs < 1) usage("--epochs must be at least 1");
  if (a.batch < 1) usage("--batch must be at least 1");
  return a;
}

struct Images {
  Tensor train, test;  // (n, 784) float32 in [0, 1], on the CPU
};

// `count` indices spread evenly over [0, n): the shipped digits are ordered by class, so a
// subset must be spread over the whole set to hold every class.
Tensor spread(std::int64_t count, std::int64_t n) {
  std::vector<std::int64_t> index;
  for (std::int64_t i = 0; i < count; ++i) index.push_back(i * n / count);
  return from_vector(index, {count}, kInt64Options);
}

// An IDX image file in `dir`, compressed or not.
fs::path find_idx(const fs::path& dir, const std::string& stem) {
  for (const std::string& name : {stem, stem + ".gz"}) {
    if (fs::exists(dir / name)) return dir / name;
  }
  throw IoError("vae: neither " + (dir / stem).string() + " nor its .gz was found");
}

Tensor read_images(const fs::path& path) {
  const Tensor raw = data::read_idx(path.string(), {.dtype = kFloat32});
  if (raw.dim() != 3 || raw.size(1) * raw.size(2) != examples::kImagePixels)
    throw IoError("vae: " + path.string() + " holds " + raw.shape().str() + ", not 28 x 28 images");
  return raw.reshape({raw.size(0), examples::kImagePixels}) / 255.0;
}

Images load(const Args& args) {
  Images images;
  if (args.data) {
    images.train = read_images(find_idx(*args.data, "train-images-idx3-ubyte"));
    images.test = read_images(find_idx(*args.data, "t10k-images-idx3-ubyte"));
  } else {
    const Tensor all = read_images(fs::path(EMBER_DATA_DIR) / "mnist10k-images-idx3-ubyte.gz");
    std::vector<std::int64_t> train, test;
    for (std::int64_t i = 0; i < all.size(0); ++i) (i % 10 == 0 ? test : train).push_back(i);
    images.train = index_select(
        all, 0, from_vector(train, {static_cast<std::int64_t>(train.size())}, kInt64Options));
    images.test = index_select(
        all, 0, from_vector(test, {static_cast<std::int64_t>(test.size())}, kInt64Options));
  }
  if (args.train && *args.train < images.train.size(0))
    images.train = index_select(images.train, 0, spread(*args.train, images.train.size(0)));
  return images;
}

// Rows of test digits spread over the test set, each row followed by the digits'
// reconstructions.
Tensor reconstruction_grid(examples::Vae& vae, const Tensor& test, const Device& device) {
  constexpr std::int64_t kColumns = 10, kPairs = 4;
  const Tensor digits = index_select(test, 0, spread(kColumns * kPairs, test.size(0)));
  const Tensor recon = vae.reconstruct(digits.to(device)).to(Device::cpu());
  std::vector<Tensor> rows;
  for (std::int64_t p = 0; p < kPairs; ++p) {
    rows.push_back(digits.narrow(0, p * kColumns, kColumns));
    rows.push_back(recon.narrow(0, p * kColumns, kColumns));
  }
  return data::image_grid(cat(rows).reshape({-1, 28, 28}), kColumns);
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  try {
    fs::create_directories(args.out);
    const Images images = load(args);
    set_rng_seed(0);
    ParamStore store;
    Generator init_gen(1);
    const TensorOptions opts = TensorOptions{}.with_device(args.device);
    examples::Vae vae({.tensor_options = opts, .gen = &init_gen});

    data::DataLoader train_loader(data::TensorDataset({images.train}),
                                  {.batch_size = args.batch, .seed = 2, .device = args.device});
    data::DataLoader test_loader(data::TensorDataset({images.test}),
                                 {.batch_size = 1000, .shuffle = false, .device = args.device});
    SVI svi([&](const Tensor& x) { vae.model(x); }, [&](const Tensor& x) { vae.guide(x); },
            optim::Adam({.lr = 1e-3}), Trace_ELBO(), {.param_store = &store});
    if (args.compile) svi.compile();
    std::printf("%lld training and %lld test images, batches of %lld, on %s%s\n",
                static_cast<long long>(images.train.size(0)),
                static_cast<long long>(images.test.size(0)), static_cast<long long>(args.batch),
                args.device.str().c_str(), args.compile ? ", compiled" : "");

    std::vector<double> epochs, train_elbo, test_elbo;
    for (int epoch = 1; epoch <= args.epochs; ++epoch) {
      const auto start = std::chrono::steady_clock::now();
      double loss = 0;
      for (const data::Batch& batch : train_loader) loss += svi.step(batch[0]);
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      double test_loss = 0;
      for (const data::Batch& batch : test_loader) test_loss += svi.evaluate_loss(batch[0]);
      epochs.push_back(epoch);
      train_elbo.push_back(-loss / static_cast<double>(images.train.size(0)));
      test_elbo.push_back(-test_loss / static_cast<double>(images.test.size(0)));
      std::printf("epoch %d train_elbo %.2f test_elbo %.2f seconds %.2f\n", epoch,
                  train_elbo.back(), test_elbo.back(), seconds);
      std::fflush(stdout);
    }

    data::write_png(args.out / "reconstructions.png",
                    reconstruction_grid(vae, images.test, args.device));
    Generator sample_gen(3);
    data::write_png(args.out / "samples.png",
                    data::image_grid(vae.generate(64, &sample_gen).reshape({-1, 28, 28}), 8));
    data::Plot({.title = "VAE: ELBO per image (blue: training, red: test)",
                .x_label = "epoch",
                .y_label = "ELBO"})
        .line(epochs, train_elbo, {31, 119, 180})
        .points(epochs, train_elbo, {31, 119, 180})
        .line(epochs, test_elbo, {214, 39, 40})
        .points(epochs, test_elbo, {214, 39, 40})
        .write_png(args.out / "loss.png");
    if (args.compile) {
      const CompileStats cs = svi.compile_stats();
      std::printf(
          "compiled: %lld replays, %lld recordings (%zu plans: full and last batches, "
          "test loss), %zu kernel calls per replay\n",
          static_cast<long long>(cs.replays), static_cast<long long>(cs.recordings), cs.plans,
          cs.calls_per_replay);
    }
    std::printf("wrote %s, %s and %s\n", (args.out / "reconstructions.png").c_str(),
                (args.out / "samples.png").c_str(), (args.out / "loss.png").c_str());

    if (args.min_test_elbo && test_elbo.back() < *args.min_test_elbo) {
      std::printf("test ELBO %.2f is below the required %.2f\n", test_elbo.back(),
                  *args.min_test_elbo);
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vae: %s\n", e.what());
    return 1;
  }
  return 0;
}
