// The safetensors reader against hostile files: every malformed header, size, offset layout
// and byte the format's reference implementation rejects must be an IoError naming the file
// and the fault (never another exception, never a crash), with the store left as it was;
// random corruptions of a valid file either load or raise IoError; and a process killed in
// the middle of a save leaves the previous file intact.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "engine/data/data_test_util.hpp"
#include "test_util.hpp"

namespace ember {
namespace {

namespace fs = std::filesystem;

// A file of the given header text and data bytes (the length prefix computed).
std::string file_bytes(const std::string& header, const std::string& data = "") {
  std::string out(8, '\0');
  const std::uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Loads `bytes` into a store holding one known entry; expects an IoError whose message names
// the file and contains every fragment, and the store unchanged.
void expect_rejected(const std::string& bytes, std::initializer_list<std::string> fragments) {
  const test::TempDir temp;
  const fs::path file = temp.file("hostile.safetensors");
  write_bytes(file, bytes);
  ParamStore store;
  store.set("keep", tensor({1.0, 2.0}, test::f64()));
  try {
    store.load(file.string());
    ADD_FAILURE() << "loaded a hostile file: " << bytes.substr(8, 200);
  } catch (const IoError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(file.string()), std::string::npos) << what;
    for (const std::string& f : fragments) {
      EXPECT_NE(what.find(f), std::string::npos) << "message lacks \"" << f << "\": " << what;
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not an IoError: " << e.what();
  }
  ASSERT_EQ(store.names(), std::vector<std::string>{"keep"});
  EXPECT_EQ(store.get("keep").to_vector<double>(), (std::vector<double>{1.0, 2.0}));
}

const std::string kEightBytes(8, '\1');

TEST(SafetensorsHostile, MalformedHeaders) {
  expect_rejected(file_bytes("[]"), {"does not start with '{'"});
  expect_rejected(file_bytes(" {}"), {"does not start with '{'"});
  expect_rejected(file_bytes("{\"a\":"), {"malformed header"});
  expect_rejected(
      file_bytes("{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]},}", kEightBytes),
      {"malformed header"});
  // A bad \u escape (the old parser threw std::invalid_argument here).
  expect_rejected(file_bytes("{\"\\uZZZZ\":{}}"), {"malformed header"});
  // Not UTF-8.
  expect_rejected(file_bytes("{\"\xff\xfe\":{}}"), {"malformed header"});
  // Numbers that are not nonnegative integers.
  expect_rejected(
      file_bytes("{\"a\":{\"dtype\":\"F64\",\"shape\":[1.0],\"data_offsets\":[0,8]}}", kEightBytes),
      {"shape"});
  expect_rejected(
      file_bytes("{\"a\":{\"dtype\":\"F64\",\"shape\":[-1],\"data_offsets\":[0,8]}}", kEightBytes),
      {"shape"});
  expect_rejected(
      file_bytes("{\"a\":{\"dtype\":\"F64\",\"shape\":[01],\"data_offsets\":[0,8]}}", kEightBytes),
      {"malformed header"});
  expect_rejected(
      file_bytes(
          "{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,18446744073709551616]}}",
          kEightBytes),
      {"data_offsets"});
  // Deep nesting.
  expect_rejected(file_bytes("{\"__metadata__\":{\"a\":[[[[[[[[[[[[1]]]]]]]]]]]]}}"), {"nesting"});
}

TEST(SafetensorsHostile, DuplicateKeys) {
  expect_rejected(file_bytes("{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]},"
                             "\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}",
                             kEightBytes),
                  {"'a' appears twice"});
  expect_rejected(file_bytes("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}"), {"appears twice"});
  expect_rejected(
      file_bytes(
          "{\"a\":{\"dtype\":\"F64\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}",
          kEightBytes),
      {"appears twice"});
}

TEST(SafetensorsHostile, SizesThatOverflow) {
  // 2^32 x 2^32 elements: the count wraps to 0 in 64 bits, so a zero-byte span matched it
  // and the tensor was then read far past its bytes.
  expect_rejected(file_bytes("{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],"
                             "\"data_offsets\":[0,0]}}"),
                  {"overflows"});
  expect_rejected(file_bytes("{\"a\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],"
                             "\"data_offsets\":[0,0]}}"),
                  {"overflows"});
  // A header length beyond the file, and beyond the format's limit.
  std::string huge(8, '\0');
  const std::uint64_t n = 1ULL << 40;
  std::memcpy(huge.data(), &n, 8);
  expect_rejected(huge + "{}", {"header claims"});
  expect_rejected(std::string(5, '\0'), {"truncated"});
}

// The fault fuzz/fuzz_idx found in the IDX reader: a zero dim made the element count 0, so
// the other dims escaped the bound and the tensor's strides overflowed int64.
TEST(SafetensorsHostile, AZeroDimDoesNotExemptTheOtherDimsFromTheBound) {
  expect_rejected(file_bytes("{\"a\":{\"dtype\":\"F64\",\"shape\":[0,4294967296,4294967296],"
                             "\"data_offsets\":[0,0]}}"),
                  {"the shape"});
}

TEST(SafetensorsHostile, OffsetsMustTileTheDataExactly) {
  const std::string two = "\"dtype\":\"F64\",\"shape\":[1]";
  // Overlap: both claim bytes 0..8 of 16 (the old check only summed the spans).
  expect_rejected(file_bytes("{\"a\":{" + two + ",\"data_offsets\":[0,8]},\"b\":{" + two +
                                 ",\"data_offsets\":[0,8]}}",
                             std::string(16, '\1')),
                  {"starts at data byte 0 where 8 was expected"});
  // A gap between them.
  expect_rejected(file_bytes("{\"a\":{" + two + ",\"data_offsets\":[0,8]},\"b\":{" + two +
                                 ",\"data_offsets\":[16,24]}}",
                             std::string(24, '\1')),
                  {"where 8 was expected"});
  // Bytes left over after the last tensor.
  expect_rejected(file_bytes("{\"a\":{" + two + ",\"data_offsets\":[0,8]}}", std::string(12, '\1')),
                  {"cover 8 of the 12"});
  // Span and shape disagree; offsets reversed; offsets past the end.
  expect_rejected(file_bytes("{\"a\":{" + two + ",\"data_offsets\":[0,4]}}", std::string(4, '\1')),
                  {"need 8"});
  expect_rejected(file_bytes("{\"a\":{" + two + ",\"data_offsets\":[8,0]}}", kEightBytes),
                  {"outside"});
  expect_rejected(file_bytes("{\"a\":{" + two + ",\"data_offsets\":[0,8]}}", "\1\1\1"),
                  {"outside"});
}

TEST(SafetensorsHostile, FieldsAndValues) {
  expect_rejected(
      file_bytes("{\"a\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]}}", "\1\1"),
      {"F16", "not supported"});
  expect_rejected(file_bytes("{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8],"
                             "\"extra\":1}}",
                             kEightBytes),
                  {"unknown field 'extra'"});
  expect_rejected(
      file_bytes("{\"a\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[0,2]}}", "\1\2"),
      {"BOOL byte"});
  expect_rejected(file_bytes("{\"a\":{\"dtype\":\"F64\",\"shape\":[1,1,1,1,1,1,1,1,1,1,1],"
                             "\"data_offsets\":[0,8]}}",
                             kEightBytes),
                  {"rank 11"});
  expect_rejected(file_bytes("{\"__metadata__\":{\"k\":1}}"), {"not a string"});
}

TEST(SafetensorsHostile, RandomCorruptionsLoadOrRaiseIoError) {
  const test::TempDir temp;
  const fs::path good = temp.file("good.safetensors");
  ParamStore store;
  store.set("loc", tensor({{1.0, -2.0}, {3.5, 0.25}}, test::f64()));
  store.set("scale", tensor({0.5, 2.0}), constraints::positive);
  store.save(good.string());
  const std::string bytes = read_bytes(good);
  std::mt19937 gen(12345);
  const fs::path bad = temp.file("mutated.safetensors");
  int loaded = 0, rejected = 0;
  for (int trial = 0; trial < 400; ++trial) {
    std::string m = bytes;
    const int edits = 1 + static_cast<int>(gen() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = gen() % m.size();
      switch (gen() % 3) {
        case 0:
          m[at] = static_cast<char>(gen());
          break;
        case 1:
          m.erase(at, 1 + gen() % 8);
          break;
        default:
          m.insert(at, 1, static_cast<char>(gen()));
      }
    }
    write_bytes(bad, m);
    ParamStore target;
    try {
      target.load(bad.string());
      ++loaded;
    } catch (const IoError&) {
      ++rejected;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "trial " << trial << ": not an IoError: " << e.what();
    }
  }
  EXPECT_GT(rejected, 0);
}

TEST(SafetensorsCrashSafety, AKillDuringASaveLeavesThePreviousFileLoadable) {
  const test::TempDir temp;
  const fs::path file = temp.file("params.safetensors");
  {
    ParamStore store;
    store.set("w", full({4}, 7.0, test::f64()));
    store.save(file.string());
  }
  // A child saves a large store over the file again and again; it is killed in the middle.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ParamStore big;
    big.set("w", full({4}, 9.0, test::f64()));
    big.set("big", zeros({4 << 20}, test::f64()));  // 32 MiB: a save takes a while
    for (;;) big.save(file.string());
  }
  ::usleep(300000);
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
  // The file is either the first save or one of the child's complete saves, never a torn one.
  ParamStore loaded;
  ASSERT_NO_THROW(loaded.load(file.string()));
  const double w = loaded.get("w").to_vector<double>()[0];
  EXPECT_TRUE(w == 7.0 || w == 9.0) << w;
}

}  // namespace
}  // namespace ember
