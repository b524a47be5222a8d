// The param store: independent stores, scopes, save/load in the safetensors format, and
// corrupt or truncated files that must fail cleanly without touching the store.
#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "engine/data/data_test_util.hpp"
#include "test_util.hpp"

namespace ember {
namespace {

using test::f64;
namespace fs = std::filesystem;

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST(ParamStoreTest, ScopesSelectIndependentStores) {
  ParamStore a, b;
  {
    ParamStoreScope sa(a);
    param("w", 1.0);
    {
      ParamStoreScope sb(b);
      param("w", 2.0);
      EXPECT_EQ(&current_param_store(), &b);
    }
    EXPECT_EQ(&current_param_store(), &a);
  }
  EXPECT_EQ(&current_param_store(), &default_param_store());
  EXPECT_DOUBLE_EQ(a.get("w").item(), 1.0);
  EXPECT_DOUBLE_EQ(b.get("w").item(), 2.0);
}

TEST(ParamStoreTest, SaveLoadRoundTripsValuesAndConstraints) {
  const test::TempDir temp;
  const fs::path file = temp.file("params.safetensors");
  ParamStore store;
  store.set("loc", tensor({{1.0, -2.0}, {3.5, 0.25}}, f64()));
  store.set("scale", tensor({0.5, 2.0}), constraints::positive);
  store.set("p", scalar_tensor(0.3, f64()), constraints::interval(0.1, 0.9));
  store.set("w", tensor({0.2, 0.3, 0.5}, f64()), constraints::simplex);
  store.save(file.string());
  for (const auto& entry : fs::directory_iterator(file.parent_path())) {
    EXPECT_EQ(entry.path().filename(), "params.safetensors") << "left behind: " << entry.path();
  }

  ParamStore loaded;
  loaded.set("keep", scalar_tensor(7.0));
  loaded.load(file.string());
  EXPECT_EQ(loaded.names(), (std::vector<std::string>{"keep", "loc", "p", "scale", "w"}));
  for (const std::string name : {"loc", "scale", "p", "w"}) {
    test::expect_close(loaded.get(name).to(kFloat64), store.get(name).to(kFloat64), 1e-6, 1e-7);
    EXPECT_EQ(loaded.get(name).dtype(), store.get(name).dtype()) << name;
    EXPECT_EQ(loaded.constraint(name).name(), store.constraint(name).name()) << name;
  }
  EXPECT_TRUE(loaded.unconstrained("scale").requires_grad());
  test::expect_close(loaded.unconstrained("scale"), store.unconstrained("scale"), 1e-6, 1e-7);
}

// A file laid out by hand per the safetensors specification, as Python's library writes it:
// an 8-byte little-endian header length, the JSON header, then the raw little-endian data.
TEST(ParamStoreTest, LoadsAFileWrittenToTheSpecification) {
  const test::TempDir temp;
  const fs::path file = temp.file("spec.safetensors");
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"F64","shape":[1,1],"data_offsets":[8,16]}})";
  std::string bytes(8, '\0');
  const std::uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  bytes += header;
  const float a[2] = {1.5f, -2.0f};
  const double b = 0.125;
  bytes.append(reinterpret_cast<const char*>(a), 8);
  bytes.append(reinterpret_cast<const char*>(&b), 8);
  write_bytes(file, bytes);
  ParamStore store;
  store.load(file.string());
  test::expect_values(store.get("a"), {1.5, -2.0});
  EXPECT_EQ(store.get("a").dtype(), kFloat32);
  EXPECT_EQ(store.get("b").shape(), (Shape{1, 1}));
  EXPECT_DOUBLE_EQ(store.get("b").item(), 0.125);
  EXPECT_EQ(store.constraint("a").kind(), constraints::Kind::Real);
}

TEST(ParamStoreTest, SavedHeaderIsTheSpecificationsLayout) {
  const test::TempDir temp;
  const fs::path file = temp.file("layout.safetensors");
  ParamStore store;
  store.set("x", tensor({1.0, 2.0, 3.0}));
  store.save(file.string());
  const std::string bytes = read_bytes(file);
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  ASSERT_EQ(bytes.size(), 8 + n + 12);
  EXPECT_EQ((8 + n) % 8, 0u);  // data aligned to 8 bytes
  const std::string header = bytes.substr(8, n);
  EXPECT_NE(header.find(R"("x":{"dtype":"F32","shape":[3],"data_offsets":[0,12]})"),
            std::string::npos)
      << header;
  float back[3];
  std::memcpy(back, bytes.data() + 8 + n, 12);
  EXPECT_EQ(back[2], 3.0f);
}

TEST(ParamStoreTest, BadFilesThrowAndLeaveTheStoreUnchanged) {
  const test::TempDir temp;
  const fs::path& dir = temp.path();
  const fs::path good = dir / "good.safetensors";
  ParamStore source;
  source.set("a", tensor({1.0, 2.0, 3.0, 4.0}));
  source.set("b", tensor({5.0}), constraints::positive);
  source.save(good.string());
  const std::string bytes = read_bytes(good);

  ParamStore target;
  target.set("a", tensor({-1.0}));
  auto expect_rejected = [&](const std::string& contents, const std::string& why) {
    const fs::path bad = dir / "bad.safetensors";
    write_bytes(bad, contents);
    EMBER_EXPECT_THROW_WITH(target.load(bad.string()), IoError, bad.string(), why);
    EXPECT_EQ(target.names(), (std::vector<std::string>{"a"}));
    EXPECT_DOUBLE_EQ(target.get("a").item(), -1.0);
  };
  expect_rejected(bytes.substr(0, 5), "truncated");
  expect_rejected(bytes.substr(0, 20), "truncated");
  expect_rejected(bytes.substr(0, bytes.size() - 4), "outside");
  std::string corrupt = bytes;
  corrupt[8] = '#';
  expect_rejected(corrupt, "malformed header");
  std::string wrong_dtype = bytes;
  const auto at = wrong_dtype.find("F32");
  wrong_dtype.replace(at, 3, "F16");
  expect_rejected(wrong_dtype, "F16");
  std::string bad_constraint = bytes;
  const auto c = bad_constraint.find("positive|");
  ASSERT_NE(c, std::string::npos);
  bad_constraint[c + 9] = 'x';
  expect_rejected(bad_constraint, "constraint");
  EMBER_EXPECT_THROW_WITH(target.load((dir / "absent.safetensors").string()), IoError,
                          "absent.safetensors", "cannot open");
}

TEST(ParamStoreTest, SaveIntoAMissingDirectoryThrows) {
  ParamStore store;
  store.set("a", tensor({1.0}));
  EMBER_EXPECT_THROW_WITH(store.save("/nonexistent_dir_ember/x.safetensors"), IoError,
                          "x.safetensors", "cannot create");
}

TEST(ParamStoreTest, ConcurrentCreationKeepsOneEntry) {
  ParamStore store;
  std::vector<std::thread> threads;
  std::vector<double> seen(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      ParamStoreScope scope(store);
      seen[t] = param("shared", scalar_tensor(static_cast<double>(t))).item();
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(store.size(), 1u);
  for (double v : seen) EXPECT_DOUBLE_EQ(v, store.get("shared").item());
}

// A constrained parameter's leaf comes back bit for bit, though exp(log(c)) is not always c:
// the file keeps the exact leaf beside the constrained value.
TEST(ParamStoreTest, ConstrainedLeavesRoundTripExactly) {
  ParamStore store;
  store.set("s", tensor({2.5}, test::f64()), constraints::positive);
  // Steps of an optimizer move the leaf until it holds a value that exp, then log, do not
  // give back exactly (most values a fit reaches are like that somewhere).
  const Tensor moving = store.unconstrained("s");
  optim::SGD sgd(optim::SGDOptions{.lr = 1.0});
  bool drifts = false;
  for (int k = 0; k < 20000 && !drifts; ++k) {
    moving.zero_grad();
    sum(moving * 1e-3).backward();
    sgd.step({{"s", moving}});
    const double v = moving.item();
    drifts = std::log(std::exp(v)) != v;
  }
  ASSERT_TRUE(drifts);
  const std::vector<double> leaf = moving.to_vector<double>();
  const test::TempDir temp;
  const fs::path file = temp.file("exact.safetensors");
  store.save(file.string());
  ParamStore back;
  back.load(file.string());
  EXPECT_EQ(back.unconstrained("s").to_vector<double>(), leaf);
  EXPECT_EQ(back.constraint("s").kind(), constraints::Kind::Positive);
  EXPECT_EQ(back.names(), (std::vector<std::string>{"s"}));  // the copy is no parameter
}

// The file holds a constrained parameter twice, as its value (what Python reads by name) and
// as its exact unconstrained leaf. When the two no longer agree (the value edited after
// saving, the copy damaged), neither is taken silently; a copy named as a parameter would
// hide that parameter, and a copy of a parameter the file lacks is an orphan.
TEST(ParamStoreTest, AValueAndItsUnconstrainedCopyMustAgree) {
  const test::TempDir temp;
  const std::string path = temp.file("edited.safetensors");
  const std::map<std::string, std::string> meta = {
      {"ember.constraint.scale", "positive|1:0:0:0"},
      {"ember.unconstrained.scale", "__ember_unconstrained__.scale"}};
  const auto write = [&](double value, double copy) {
    data::write_safetensors(path,
                            {{"scale", tensor({value}, test::f64())},
                             {"__ember_unconstrained__.scale", tensor({copy}, test::f64())}},
                            meta);
  };
  // As saved: the exact leaf is taken.
  write(2.0, std::log(2.0));
  ParamStore store;
  store.load(path);
  EXPECT_EQ(store.unconstrained("scale").item(), std::log(2.0));
  // Within the rounding of the transform on another machine: still the leaf.
  write(2.0 * (1 + 1e-13), std::log(2.0));
  store.load(path);
  EXPECT_EQ(store.unconstrained("scale").item(), std::log(2.0));
  // The value edited, or the copy damaged: refused, the store as it was.
  write(5.0, std::log(2.0));
  EMBER_EXPECT_THROW_WITH(store.load(path), IoError, "edited.safetensors", "tensor 'scale'",
                          "disagree", "value 5", "the copy gives 2",
                          "remove the metadata entry 'ember.unconstrained.scale'");
  write(2.0, std::nan(""));
  EMBER_EXPECT_THROW_WITH(store.load(path), IoError, "tensor 'scale'", "disagree");
  EXPECT_EQ(store.get("scale").item(), 2.0);
  // A copy that is the parameter itself, or of a parameter the file lacks.
  data::write_safetensors(
      path, {{"scale", tensor({2.0}, test::f64())}},
      {{"ember.constraint.scale", "positive|1:0:0:0"}, {"ember.unconstrained.scale", "scale"}});
  EMBER_EXPECT_THROW_WITH(store.load(path), IoError, "names 'scale' as parameter 'scale's",
                          "__ember_unconstrained__.<name>");
  data::write_safetensors(path, {{"__ember_unconstrained__.gone", tensor({0.0}, test::f64())}},
                          {{"ember.unconstrained.gone", "__ember_unconstrained__.gone"}});
  EMBER_EXPECT_THROW_WITH(store.load(path), IoError, "parameter 'gone'", "does not hold");
}

// A name the header cannot hold is refused when saving, not written into a file that no
// reader (this one included) would load.
TEST(ParamStoreTest, NamesThatAreNotUtf8AreRefusedWhenSaving) {
  const test::TempDir temp;
  const std::string path = temp.file("names.safetensors");
  ParamStore store;
  store.set("caf\xc3\xa9", tensor({1.0}));  // UTF-8: saved and loaded
  store.save(path);
  ParamStore back;
  back.load(path);
  EXPECT_EQ(back.names(), std::vector<std::string>{"caf\xc3\xa9"});
  for (const std::string bad : {std::string("a\xff"), std::string("\xc0\xaf"),  // overlong
                                std::string("\xed\xa0\x80"),                    // a surrogate
                                std::string("ab\xe2\x82")}) {                   // cut short
    ParamStore one;
    one.set(bad, tensor({1.0}));
    EMBER_EXPECT_THROW_WITH(one.save(path), ValueError, "names.safetensors", "tensor name",
                            "is not valid UTF-8");
  }
  EXPECT_EQ(back.names(), std::vector<std::string>{"caf\xc3\xa9"});
  EMBER_EXPECT_THROW_WITH(data::write_safetensors(path, {{"__metadata__", tensor({1.0})}}),
                          ValueError, "names.safetensors", "cannot be named __metadata__");
}

// Neither a device nor a FIFO is read: the one never ends, the other waits for a writer.
TEST(ParamStoreTest, LoadRefusesWhatIsNoRegularFile) {
  const test::TempDir temp;
  ParamStore store;
  EMBER_EXPECT_THROW_WITH(store.load("/dev/zero"), IoError, "'/dev/zero'", "is not a regular file");
  const std::string fifo = temp.file("fifo.safetensors");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EMBER_EXPECT_THROW_WITH(store.load(fifo), IoError, "fifo.safetensors", "is not a regular file");
  EMBER_EXPECT_THROW_WITH(store.load(temp.path().string()), IoError, "is a directory");
  EMBER_EXPECT_THROW_WITH(data::read_safetensors(temp.path().string()), IoError, "is a directory");
}

// A store made where a destroyed one was is a store of its own: a compiled function keyed by
// the store it ran with does not replay the old store's plan against it.
TEST(ParamStoreTest, AStoreInADestroyedOnesPlaceIsNotTakenForIt) {
  std::optional<ParamStore> slot;
  slot.emplace();
  const std::uint64_t first = slot->version();
  slot.emplace();
  EXPECT_NE(slot->version(), first);
  const Tensor x = full({3}, 1.0, f64());
  auto weighted = compile([](const Tensor& v) { return v * param("w", full({3}, 0.5, f64())); });
  for (int request = 0; request < 4; ++request) {
    slot.emplace();  // one store per request, in the same memory
    slot->set("w", full({3}, request + 1.0, f64()));
    ParamStoreScope scope(*slot);
    for (int call = 0; call < 3; ++call) {
      EXPECT_EQ(weighted(x).to_vector<double>(), std::vector<double>(3, request + 1.0))
          << "request " << request << ", call " << call;
    }
  }
}

}  // namespace
}  // namespace ember
