// read_npy and write_npy: round trips of every dtype in both orders, files written by NumPy
// (tests/engine/data/reference, made by tools/reference/make_npy_reference.py), conversions,
// and every fault of a file named by file and byte offset.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "engine/data/data_test_util.hpp"

namespace ember::test {
namespace {

using data::read_npy;
using data::write_npy;

// A .npy file from its header dict (unpadded) and data bytes.
std::string npy_bytes(const std::string& dict, const std::string& data, int major = 1) {
  Bytes b;
  b.raw("\x93NUMPY").le(major, 1).le(0, 1).le(dict.size(), major == 1 ? 2 : 4);
  return b.raw(dict).raw(data).str();
}

void expect_same(const Tensor& actual, const Tensor& expected) {
  ASSERT_EQ(actual.dtype(), expected.dtype());
  ASSERT_EQ(actual.shape(), expected.shape());
  EXPECT_TRUE(actual.is_contiguous());
  EXPECT_EQ(actual.to_vector<double>(), expected.to_vector<double>());
}

TEST(Npy, RoundTripsEveryDtypeInBothOrders) {
  TempDir dir;
  const std::vector<Tensor> tensors = {
      arange(24.0, TensorOptions{}.with_dtype(kFloat32)).reshape({2, 3, 4}) / 3.0,
      arange(-6.0, 6.0, 1.0, TensorOptions{}.with_dtype(kFloat64)).reshape({3, 4}) / 7.0,
      from_vector(std::vector<std::int64_t>{-3000009, -2, -1, 0, 1, std::int64_t{1} << 60}, {2, 3},
                  TensorOptions{}.with_dtype(kInt64)),
      gt(arange(6.0).reshape({3, 2}), 2.5),
      scalar_tensor(2.5, TensorOptions{}.with_dtype(kFloat64)),
      zeros({0, 3}),
      arange(5.0, TensorOptions{}.with_dtype(kInt64)),
  };
  for (const bool fortran : {false, true}) {
    for (const Tensor& t : tensors) {
      SCOPED_TRACE(t.str() + (fortran ? " fortran" : " C"));
      const std::string path = dir.file("t.npy");
      write_npy(path, t, {.fortran_order = fortran});
      expect_same(read_npy(path), t);
      // The header says which order, and the file is 64-byte aligned as NumPy's are.
      const std::string bytes = read_bytes(path);
      const bool says_fortran = bytes.find("'fortran_order': True") != std::string::npos;
      EXPECT_EQ(says_fortran, fortran);
      const auto header_length =
          static_cast<unsigned char>(bytes[8]) + 256 * static_cast<unsigned char>(bytes[9]);
      EXPECT_EQ((10 + header_length) % 64, 0);
    }
  }
}

TEST(Npy, WritesNonContiguousAndDeviceTensorsAsTheirValues) {
  TempDir dir;
  const Tensor t = arange(12.0).reshape({3, 4}).t();
  write_npy(dir.file("t.npy"), t);
  expect_same(read_npy(dir.file("t.npy")), t.contiguous());
  // A failed write leaves no file behind, and no temporary either.
  EXPECT_THROW(write_npy(dir.file("missing/dir/t.npy"), t), IoError);
  EXPECT_FALSE(std::filesystem::exists(dir.file("missing")));
}

TEST(Npy, ReadsFilesWrittenByNumPy) {
  const auto f32 = read_npy(reference_file("float32.npy"));
  EXPECT_EQ(f32.dtype(), kFloat32);
  EXPECT_EQ(f32.shape(), Shape({2, 3}));
  EXPECT_EQ(f32.to_vector<double>(), (std::vector<double>{-1.0, -0.5, 0.0, 0.5, 1.0, 1.5}));

  const auto f64 = read_npy(reference_file("float64_fortran.npy"));
  EXPECT_EQ(f64.shape(), Shape({2, 3, 4}));
  expect_same(f64, arange(24.0, TensorOptions{}.with_dtype(kFloat64)).reshape({2, 3, 4}) / 8.0);

  const auto be = read_npy(reference_file("float64_big_endian.npy")).to_vector<double>();
  EXPECT_EQ(be, (std::vector<double>{1.5, -2.25, std::numeric_limits<double>::infinity(), 1e-300}));

  auto ints = [](const std::string& name) {
    return read_npy(reference_file(name)).to_vector<std::int64_t>();
  };
  EXPECT_EQ(ints("int8.npy"), (std::vector<std::int64_t>{-128, -1, 0, 1, 127}));
  EXPECT_EQ(ints("int16_big_endian.npy"), (std::vector<std::int64_t>{-32768, -2, 0, 300, 32767}));
  EXPECT_EQ(ints("int32_fortran.npy"), (std::vector<std::int64_t>{1, -2, 3, -4, 5, -6}));
  EXPECT_EQ(read_npy(reference_file("int32_fortran.npy")).shape(), Shape({2, 3}));
  EXPECT_EQ(ints("int64.npy"), (std::vector<std::int64_t>{-(std::int64_t{1} << 62), -1, 0,
                                                          (std::int64_t{1} << 62) + 7}));
  EXPECT_EQ(ints("uint8.npy"), (std::vector<std::int64_t>{0, 1, 128, 255}));
  EXPECT_EQ(ints("uint16.npy"), (std::vector<std::int64_t>{0, 65535}));
  EXPECT_EQ(ints("uint32_big_endian.npy"), (std::vector<std::int64_t>{0, 4294967295}));
  EXPECT_EQ(read_npy(reference_file("uint8.npy")).dtype(), kInt64);

  const auto flags = read_npy(reference_file("bool.npy"));
  EXPECT_EQ(flags.dtype(), kBool);
  EXPECT_EQ(flags.to_vector<std::int64_t>(), (std::vector<std::int64_t>{1, 0, 0, 1}));

  const auto scalar = read_npy(reference_file("scalar.npy"));
  EXPECT_EQ(scalar.dim(), 0);
  EXPECT_EQ(scalar.item(), 3.25);
  EXPECT_EQ(read_npy(reference_file("empty.npy")).shape(), Shape({0, 3}));
  EXPECT_EQ(read_npy(reference_file("version2.npy")).to_vector<double>(),
            (std::vector<double>{1, 2}));
  EXPECT_EQ(ints("version3.npy"), (std::vector<std::int64_t>{7, 8, 9}));
}

TEST(Npy, ConvertsWhileReadingWhereNoValueIsLost) {
  const auto as_f32 = read_npy(reference_file("uint8.npy"), {.dtype = kFloat32});
  EXPECT_EQ(as_f32.dtype(), kFloat32);
  EXPECT_EQ(as_f32.to_vector<double>(), (std::vector<double>{0, 1, 128, 255}));
  EXPECT_EQ(read_npy(reference_file("float32.npy"), {.dtype = kFloat64}).dtype(), kFloat64);
  EXPECT_EQ(read_npy(reference_file("bool.npy"), {.dtype = kFloat32}).to_vector<double>(),
            (std::vector<double>{1, 0, 0, 1}));
  expect_io_error([] { read_npy(reference_file("float32.npy"), {.dtype = kInt64}); },
                  {"float32.npy", "holds float32, which cannot be read as int64"});
  expect_io_error([] { read_npy(reference_file("int8.npy"), {.dtype = kBool}); },
                  {"holds int8, which cannot be read as bool"});
}

TEST(Npy, EveryFaultIsAnIoErrorNamingFileAndByte) {
  TempDir dir;
  const std::string f8_3 = Bytes().le(0x3FF0000000000000, 8).le(0, 8).le(0, 8).str();  // 1, 0, 0
  const std::string good_dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }";
  const std::vector<BadFile> cases = {
      {"empty", "", {"byte 0", "the file is empty"}},
      {"short", "\x93NUM", {"byte 0", "truncated: the magic string and version: 8 bytes needed"}},
      {"magic",
       Bytes().raw("\x93NUMPZ").le(1, 1).le(0, 1).le(16, 2).str(),
       {"byte 0", "not a .npy file"}},
      {"version", npy_bytes(good_dict, f8_3, 4), {"byte 6", "format version 4.0 is not supported"}},
      {"header length",
       Bytes().raw("\x93NUMPY").le(1, 1).le(0, 1).le(500, 2).raw("{}").str(),
       {"byte 10", "the header length is 500 bytes"}},
      {"no brace", npy_bytes("'descr': '<f8'", ""), {"byte 10", "expected '{'"}},
      {"unclosed", npy_bytes("{'descr': '<f8', 'shape': (3,", ""), {"malformed", "ends early"}},
      {"unknown key",
       npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'x': 1}", f8_3),
       {"byte 66", "unknown key 'x'"}},
      {"twice",
       npy_bytes("{'descr': '<f8', 'descr': '<f8'}", ""),
       {"byte 27", "'descr' appears twice"}},
      {"missing key", npy_bytes("{'descr': '<f8', 'shape': ()}", ""), {"lacks fortran_order"}},
      {"structured",
       npy_bytes("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': ()}", ""),
       {"structured dtypes"}},
      {"dtype",
       npy_bytes("{'descr': '<c16', 'fortran_order': False, 'shape': (1,)}", ""),
       {"byte 20", "dtype '<c16' is not supported"}},
      {"uint64",
       npy_bytes("{'descr': '<u8', 'fortran_order': False, 'shape': (1,)}", ""),
       {"dtype '<u8' is not supported"}},
      {"byte order",
       npy_bytes("{'descr': '|f8', 'fortran_order': False, 'shape': (1,)}", ""),
       {"dtype '|f8' has no byte order"}},
      {"order flag",
       npy_bytes("{'descr': '<f8', 'fortran_order': Maybe, 'shape': (1,)}", ""),
       {"fortran_order must be True or False"}},
      {"negative dim",
       npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (-1,)}", ""),
       {"a dim must be a non-negative integer"}},
      {"huge dim",
       npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,)}", ""),
       {"a dim is too large"}},
      {"overflow",
       npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296)}", ""),
       {"element count overflows"}},
      {"rank",
       npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1,1,1)}", ""),
       {"more than 10 dims"}},
      {"truncated data", npy_bytes(good_dict, f8_3.substr(0, 20)), {"need 3 elements of 8 bytes"}},
      {"trailing", npy_bytes(good_dict, f8_3 + "x"), {"unexpected bytes after the array's data"}},
      {"after dict",
       npy_bytes(good_dict + " x", f8_3),
       {"unexpected text after the header's dict"}},
  };
  for (const BadFile& c : cases) {
    expect_refused(dir, "NPY file", c, [](const std::string& path) { read_npy(path); });
  }
  // The good file those cases spoil reads.
  EXPECT_EQ(read_npy(dir.write("good.npy", npy_bytes(good_dict, f8_3))).to_vector<double>(),
            (std::vector<double>{1, 0, 0}));
  // Python 2's long integers in the shape.
  EXPECT_EQ(read_npy(dir.write("long.npy",
                               npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (3L,)}",
                                         f8_3)))
                .shape(),
            Shape({3}));
  expect_io_error([&] { read_npy(dir.file("absent.npy")); }, {"absent.npy", "cannot open"});
}

// The fault fuzz/fuzz_idx found in the IDX reader: a zero dim made the element count 0, so
// the other dims escaped the bound and the tensor's strides overflowed int64.
TEST(Npy, AZeroDimDoesNotExemptTheOtherDimsFromTheBound) {
  TempDir dir;
  expect_refused(
      dir, "NPY file",
      {"zero dim",
       npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (0, 4294967296, 4294967296)}",
                 ""),
       {"element count overflows"}},
      [](const std::string& path) { read_npy(path); });
}

}  // namespace
}  // namespace ember::test
