// read_idx: the shipped MNIST subset, every element type plain and gzip-compressed, a
// full-MNIST-sized stream, and every fault named by file and byte.
#include <gtest/gtest.h>

#include <algorithm>

#include "engine/data/data_test_util.hpp"

namespace ember::test {
namespace {

using data::read_idx;

// An IDX file: magic (type code, dims), the dims big-endian, then the data.
std::string idx_bytes(int type_code, const std::vector<std::uint32_t>& dims,
                      const std::string& data) {
  Bytes b;
  b.le(0, 2).le(type_code, 1).le(dims.size(), 1);
  for (const std::uint32_t d : dims) b.be(d, 4);
  return b.raw(data).str();
}

TEST(Idx, ReadsTheShippedMnistSubset) {
  const Tensor images = read_idx(data_dir() + "/mnist10k-images-idx3-ubyte.gz");
  const Tensor labels = read_idx(data_dir() + "/mnist10k-labels-idx1-ubyte.gz");
  EXPECT_EQ(images.shape(), Shape({10000, 28, 28}));
  EXPECT_EQ(images.dtype(), kInt64);
  EXPECT_EQ(labels.shape(), Shape({10000}));
  const auto pixels = images.to_vector<std::int64_t>();
  EXPECT_EQ(*std::min_element(pixels.begin(), pixels.end()), 0);
  EXPECT_EQ(*std::max_element(pixels.begin(), pixels.end()), 255);
  // Ordered by class: 0 first, 9 last, never decreasing, every digit present.
  const auto l = labels.to_vector<std::int64_t>();
  EXPECT_EQ(l.front(), 0);
  EXPECT_EQ(l.back(), 9);
  EXPECT_TRUE(std::is_sorted(l.begin(), l.end()));
  for (std::int64_t digit = 0; digit < 10; ++digit) {
    EXPECT_GT(std::count(l.begin(), l.end(), digit), 500) << digit;
  }
  // As float32 (a quarter of int64's memory), the same values.
  const Tensor scaled =
      read_idx(data_dir() + "/mnist10k-images-idx3-ubyte.gz", {.dtype = kFloat32});
  EXPECT_EQ(scaled.dtype(), kFloat32);
  EXPECT_EQ(sum(scaled.to(kFloat64)).item(), sum(images).item());
}

TEST(Idx, ReadsEveryElementTypePlainAndGzipped) {
  TempDir dir;
  struct Case {
    int code;
    std::string data;
    DType dtype;
    std::vector<double> values;
  };
  const std::vector<Case> cases = {
      {0x08, Bytes().be(0, 1).be(7, 1).be(200, 1).be(255, 1), kInt64, {0, 7, 200, 255}},
      {0x09, Bytes().be(0x80, 1).be(0xFF, 1).be(0, 1).be(127, 1), kInt64, {-128, -1, 0, 127}},
      {0x0B, Bytes().be(0x8000, 2).be(0xFFFE, 2).be(0, 2).be(300, 2), kInt64, {-32768, -2, 0, 300}},
      {0x0C,
       Bytes().be(0x80000000, 4).be(0xFFFFFFFF, 4).be(1, 4).be(70000, 4),
       kInt64,
       {-2147483648.0, -1, 1, 70000}},
      {0x0D,
       Bytes().be(0x3FC00000, 4).be(0xC0100000, 4).be(0, 4).be(0x7F800000, 4),
       kFloat32,
       {1.5, -2.25, 0, std::numeric_limits<double>::infinity()}},
      {0x0E,
       Bytes()
           .be(0x3FF8000000000000, 8)
           .be(0xBFF0000000000000, 8)
           .be(0, 8)
           .be(0x4000000000000000, 8),
       kFloat64,
       {1.5, -1, 0, 2}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.code);
    const std::string plain = idx_bytes(c.code, {2, 2}, c.data);
    for (const std::string& bytes :
         {plain, gzip_stored(plain),
          gzip_stored(plain.substr(0, 5)) + gzip_stored(plain.substr(5))}) {
      const Tensor t = read_idx(dir.write("t.idx", bytes));
      EXPECT_EQ(t.shape(), Shape({2, 2}));
      EXPECT_EQ(t.dtype(), c.dtype);
      EXPECT_EQ(t.to_vector<double>(), c.values);
    }
    EXPECT_EQ(read_idx(dir.write("t.idx", plain), {.dtype = kFloat64}).to_vector<double>(),
              c.values);
  }
}

// The full MNIST training set is 60,000 images (47 MB decoded): a stream of that size and
// more decodes straight into its tensor, in time and memory linear in its size.
TEST(Idx, DecodesAFullMnistSizedGzipStream) {
  TempDir dir;
  const std::uint32_t n = 70000;
  std::string pixels(static_cast<std::size_t>(n) * 28 * 28, '\0');
  for (std::size_t i = 0; i < pixels.size(); ++i)
    pixels[i] = static_cast<char>((i * 7 + i / 784) % 256);
  const std::string path = dir.write("big.gz", gzip_stored(idx_bytes(0x08, {n, 28, 28}, pixels)));
  pixels.clear();
  const Tensor images = read_idx(path, {.dtype = kFloat32});
  ASSERT_EQ(images.shape(), Shape({n, 28, 28}));
  const auto last = images.select(0, n - 1).flatten().to_vector<float>();
  const std::size_t base = static_cast<std::size_t>(n - 1) * 784;
  for (std::size_t k = 0; k < 784; k += 97) {
    EXPECT_EQ(last[k], static_cast<float>(((base + k) * 7 + (base + k) / 784) % 256)) << k;
  }
}

TEST(Idx, EveryFaultIsAnIoErrorNamingFileAndByte) {
  TempDir dir;
  const std::string good = idx_bytes(0x08, {2, 3}, "abcdef");
  std::string bad_crc = gzip_stored(good);
  bad_crc[bad_crc.size() - 8] ^= 1;
  std::string bad_block = gzip_stored(good);
  bad_block[10] = 0x07;  // block type 3: reserved
  const std::vector<BadFile> cases = {
      {"empty", "", {"byte 0", "the file is empty"}},
      {"short", "\x01", {"byte 0", "truncated: the magic number: 4 bytes needed"}},
      {"magic", Bytes().be(0x01020803, 4).be(2, 4).str(), {"byte 0", "magic number 0x01020803"}},
      {"type", idx_bytes(0x07, {1}, "x"), {"byte 2", "unknown data type code 0x07"}},
      {"no dims", idx_bytes(0x08, {}, ""), {"byte 3", "gives 0 dims"}},
      {"rank",
       idx_bytes(0x08, std::vector<std::uint32_t>(11, 1), "x"),
       {"byte 3", "gives 11 dims"}},
      {"dims cut", good.substr(0, 9), {"byte 4", "truncated: the dims: 8 bytes needed"}},
      {"overflow",
       idx_bytes(0x08, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, ""),
       {"byte 8", "more elements than can be addressed"}},
      {"data cut", good.substr(0, good.size() - 1), {"byte 12", "need 6 bytes of uint8 data"}},
      {"trailing", good + "g", {"byte 18", "unexpected bytes after the data"}},
      {"gzip cut", gzip_stored(good).substr(0, 20), {"truncated: the compressed data ends"}},
      {"gzip trailer cut",
       gzip_stored(good).substr(0, gzip_stored(good).size() - 3),
       {"truncated: the compressed data ends"}},
      {"gzip crc", bad_crc, {"corrupt compressed data: incorrect data check"}},
      {"gzip block", bad_block, {"corrupt compressed data: invalid block type"}},
      {"gzip garbage after", gzip_stored(good) + "xyz", {"corrupt compressed data"}},
      {"gzip data cut", gzip_stored(good.substr(0, 15)), {"(decompressed), byte 12", "truncated"}},
      {"gzip magic", gzip_stored("\x01\x02\x08\x01"), {"(decompressed), byte 0", "magic number"}},
  };
  for (const BadFile& c : cases) {
    expect_refused(dir, "IDX file", c, [](const std::string& path) { read_idx(path); });
  }
  EXPECT_EQ(read_idx(dir.write("good.idx", good)).to_vector<std::int64_t>()[0], 'a');
  expect_io_error(
      [&] { read_idx(dir.write("f.idx", idx_bytes(0x0D, {1}, "abcd")), {.dtype = kInt64}); },
      {"byte 2", "holds float32, which cannot be read as int64"});
  expect_io_error([&] { read_idx(dir.file("absent.idx")); }, {"absent.idx", "cannot open"});
}

// Found by fuzz/fuzz_idx: a zero dim made the element count 0, so the other dims escaped the
// bound and the tensor's strides (their product) overflowed int64.
TEST(Idx, AZeroDimDoesNotExemptTheOtherDimsFromTheBound) {
  TempDir dir;
  const std::string crash(
      "\0\0\x08\x04\0\0\0\0\0\0\0\0\xff\xff\xff\xff\xa1\0\0\x04\0\0\0\x04\0\0\0\0\0", 29);
  expect_refused(dir, "IDX file",
                 {"zero dim", crash, {"byte 16", "more elements than can be addressed"}},
                 [](const std::string& path) { read_idx(path); });
}

}  // namespace
}  // namespace ember::test
