// read_npz and write_npz: round trips (stored and deflated), archives written by NumPy, Zip64
// records, and every fault of the zip structure or of a member named by file and byte.
#include <gtest/gtest.h>

#include "engine/data/data_test_util.hpp"

namespace ember::test {
namespace {

using data::read_npz;
using data::write_npz;

// A member as the archive holds it.
struct ZipMember {
  std::string name;
  std::string data;  // stored bytes, or raw deflate
  std::uint16_t method = 0;
  std::uint64_t size = 0;  // uncompressed
  std::uint32_t crc = 0;
};

ZipMember stored(const std::string& name, const std::string& content) {
  return {name, content, 0, content.size(), crc32_of(content)};
}
ZipMember deflated(const std::string& name, const std::string& content) {
  return {name, stored_deflate(content), 8, content.size(), crc32_of(content)};
}

struct Zip {
  std::string bytes;
  std::size_t directory = 0;  // offset of the central directory
};

// A plain zip archive of the members (no Zip64 records).
Zip make_zip(const std::vector<ZipMember>& members) {
  Bytes out;
  std::vector<std::size_t> offsets;
  for (const ZipMember& m : members) {
    offsets.push_back(out.str().size());
    out.le(0x04034b50, 4).le(20, 2).le(0, 2).le(m.method, 2).le(0, 4).le(m.crc, 4);
    out.le(m.data.size(), 4).le(m.size, 4).le(m.name.size(), 2).le(0, 2).raw(m.name).raw(m.data);
  }
  const std::size_t directory = out.str().size();
  for (std::size_t i = 0; i < members.size(); ++i) {
    const ZipMember& m = members[i];
    out.le(0x02014b50, 4).le(20, 2).le(20, 2).le(0, 2).le(m.method, 2).le(0, 4).le(m.crc, 4);
    out.le(m.data.size(), 4).le(m.size, 4).le(m.name.size(), 2).le(0, 2).le(0, 2).le(0, 2);
    out.le(0, 2).le(0, 4).le(offsets[i], 4).raw(m.name);
  }
  const std::size_t size = out.str().size() - directory;
  out.le(0x06054b50, 4).le(0, 4).le(members.size(), 2).le(members.size(), 2).le(size, 4);
  out.le(directory, 4).le(0, 2);
  return {out.str(), directory};
}

void patch(std::string& bytes, std::size_t at, std::uint64_t value, int n) {
  for (int i = 0; i < n; ++i) bytes[at + i] = static_cast<char>(value >> (8 * i));
}

std::string npy_of(const Tensor& t) {
  TempDir dir;
  data::write_npy(dir.file("m.npy"), t);
  return read_bytes(dir.file("m.npy"));
}

TEST(Npz, RoundTripsStoredAndDeflated) {
  TempDir dir;
  const std::map<std::string, Tensor> tensors = {
      {"f32", arange(12.0, TensorOptions{}.with_dtype(kFloat32)).reshape({3, 4}) / 4.0},
      {"f64", arange(-3.0, 3.0, 0.5, TensorOptions{}.with_dtype(kFloat64)).reshape({2, 2, 3})},
      {"i64", from_vector(std::vector<std::int64_t>{-7, 0, 1LL << 40}, {3},
                          TensorOptions{}.with_dtype(kInt64))},
      {"flag", gt(arange(4.0), 1.5)},
      {"scalar", scalar_tensor(-1.25, TensorOptions{}.with_dtype(kFloat64))},
      {"none", zeros({0})},
  };
  for (const bool compress : {false, true}) {
    for (const bool fortran : {false, true}) {
      SCOPED_TRACE(std::string(compress ? "deflated" : "stored") + (fortran ? ", fortran" : ""));
      const std::string path = dir.file("t.npz");
      write_npz(path, tensors, {.compress = compress, .fortran_order = fortran});
      const auto back = read_npz(path);
      ASSERT_EQ(back.size(), tensors.size());
      for (const auto& [key, t] : tensors) {
        ASSERT_EQ(back.count(key), 1u) << key;
        EXPECT_EQ(back.at(key).dtype(), t.dtype()) << key;
        EXPECT_EQ(back.at(key).shape(), t.shape()) << key;
        EXPECT_EQ(back.at(key).to_vector<double>(), t.to_vector<double>()) << key;
      }
    }
  }
  // Deflate shrinks repetitive data; the archive is the same bytes each time it is written.
  const std::map<std::string, Tensor> big = {{"z", zeros({4096})}};
  write_npz(dir.file("s.npz"), big);
  write_npz(dir.file("c.npz"), big, {.compress = true});
  EXPECT_LT(read_bytes(dir.file("c.npz")).size() * 10, read_bytes(dir.file("s.npz")).size());
  write_npz(dir.file("c2.npz"), big, {.compress = true});
  EXPECT_EQ(read_bytes(dir.file("c.npz")), read_bytes(dir.file("c2.npz")));
  write_npz(dir.file("empty.npz"), {});
  EXPECT_TRUE(read_npz(dir.file("empty.npz")).empty());
}

TEST(Npz, ReadsArchivesWrittenByNumPy) {
  const std::vector<double> x = {0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.25, 2.5, 2.75};
  for (const char* name : {"savez.npz", "savez_compressed.npz"}) {
    SCOPED_TRACE(name);
    const auto arrays = read_npz(reference_file(name));
    EXPECT_EQ(arrays.at("x").shape(), Shape({3, 4}));
    EXPECT_EQ(arrays.at("x").to_vector<double>(), x);
    EXPECT_EQ(arrays.at("y").to_vector<std::int64_t>(), (std::vector<std::int64_t>{3, 1, 2}));
  }
  const auto compressed = read_npz(reference_file("savez_compressed.npz"), {.dtype = kFloat32});
  EXPECT_EQ(compressed.at("flags").dtype(), kFloat32);
  EXPECT_EQ(compressed.at("flags").to_vector<double>(), (std::vector<double>{1, 0}));
}

TEST(Npz, ReadsZip64Records) {
  TempDir dir;
  const std::string content = npy_of(arange(3.0));
  // The central entry's sizes and offset in a Zip64 extra field, the counts and the
  // directory's place in a Zip64 end record: as a writer of very large archives makes them.
  Bytes out;
  const ZipMember m = stored("a.npy", content);
  out.le(0x04034b50, 4).le(45, 2).le(0, 2).le(0, 2).le(0, 4).le(m.crc, 4).le(0xFFFFFFFF, 4);
  out.le(0xFFFFFFFF, 4).le(5, 2).le(20, 2).raw("a.npy").le(1, 2).le(16, 2);
  out.le(content.size(), 8).le(content.size(), 8).raw(content);
  const std::size_t directory = out.str().size();
  out.le(0x02014b50, 4).le(45, 2).le(45, 2).le(0, 2).le(0, 2).le(0, 4).le(m.crc, 4);
  out.le(0xFFFFFFFF, 4).le(0xFFFFFFFF, 4).le(5, 2).le(28, 2).le(0, 2).le(0, 2).le(0, 2).le(0, 4);
  out.le(0xFFFFFFFF, 4).raw("a.npy").le(1, 2).le(24, 2);
  out.le(content.size(), 8).le(content.size(), 8).le(0, 8);
  const std::size_t directory_size = out.str().size() - directory;
  const std::size_t end64 = out.str().size();
  out.le(0x06064b50, 4).le(44, 8).le(45, 2).le(45, 2).le(0, 4).le(0, 4).le(1, 8).le(1, 8);
  out.le(directory_size, 8).le(directory, 8);
  out.le(0x07064b50, 4).le(0, 4).le(end64, 8).le(1, 4);
  out.le(0x06054b50, 4).le(0, 4).le(0xFFFF, 2).le(0xFFFF, 2).le(0xFFFFFFFF, 4);
  out.le(0xFFFFFFFF, 4).le(0, 2);
  const std::string path = dir.write("z64.npz", out);
  EXPECT_EQ(read_npz(path).at("a").to_vector<double>(), (std::vector<double>{0, 1, 2}));

  // Without its extra field the entry's sizes are unknown.
  std::string bytes = out.str();
  patch(bytes, directory + 30, 0, 2);  // extra length 0: the extra becomes the next entry
  expect_io_error([&] { read_npz(dir.write("bad.npz", bytes)); },
                  {"NPZ file", "a Zip64 size or offset without its extra field"});
}

TEST(Npz, EveryFaultIsAnIoErrorNamingFileAndByte) {
  TempDir dir;
  const std::string npy = npy_of(arange(4.0));
  const Zip good = make_zip({stored("x.npy", npy)});
  const std::size_t cd = good.directory;           // the central entry of x.npy
  const std::size_t end = good.bytes.size() - 22;  // the end record
  auto with = [&](std::size_t at, std::uint64_t value, int n) {
    std::string b = good.bytes;
    patch(b, at, value, n);
    return b;
  };
  std::string corrupt_npy = npy;
  corrupt_npy[1] = 'X';
  std::string bad_deflate = deflated("x.npy", npy).data;
  bad_deflate[0] = 0x07;  // block type 3: reserved
  ZipMember long_deflate = deflated("x.npy", npy);
  long_deflate.data += "junk";
  ZipMember short_member = deflated("x.npy", npy);
  short_member.size += 8;
  const std::vector<BadFile> cases = {
      {"empty", "", {"byte 0", "not a zip archive: 0 bytes"}},
      {"npy", npy, {"not a zip archive: no end of central directory record"}},
      {"cut", good.bytes.substr(0, good.bytes.size() - 3), {"no end of central directory record"}},
      {"disks", with(end + 4, 1, 2), {"byte " + std::to_string(end), "several disks"}},
      {"directory past end", with(end + 16, cd + 1, 4), {"runs past its end record"}},
      {"entries", with(end + 8, 9 | (9 << 16), 4), {"9 entries cannot fit"}},
      {"entries on this disk", with(end + 8, 2, 2), {"several disks"}},
      {"signature", with(cd, 0x12345678, 4), {"byte " + std::to_string(cd), "entry 0"}},
      {"encrypted", with(cd + 8, 1, 2), {"byte " + std::to_string(cd + 8), "is encrypted"}},
      {"method", with(cd + 10, 12, 2), {"compression method 12"}},
      {"sizes", with(cd + 24, npy.size() + 1, 4), {"is stored, yet its sizes differ"}},
      {"local offset", with(cd + 42, 7, 4), {"no local header"}},
      {"local offset outside", with(cd + 42, cd, 4), {"lies outside the members' area"}},
      {"local method", with(8, 8, 2), {"byte 8", "compression methods differ"}},
      {"local name", with(30, 'y', 1), {"byte 30", "names another file"}},
      {"data past",
       with(cd + 20, (npy.size() + 100) * 0x100000001ULL, 8),
       {"run past the members' area"}},
      {"crc", with(cd + 16, 12345, 4), {"member 'x.npy'", "CRC-32 mismatch"}},
      {"not npy", make_zip({stored("x.txt", npy)}).bytes, {"member 'x.txt' is not a .npy file"}},
      {"twice", make_zip({stored("x.npy", npy), stored("x.npy", npy)}).bytes, {"appears twice"}},
      {"member content",
       make_zip({stored("x.npy", corrupt_npy)}).bytes,
       {"member 'x.npy', byte 0", "not a .npy file"}},
      {"deflate corrupt",
       make_zip({{"x.npy", bad_deflate, 8, npy.size(), crc32_of(npy)}}).bytes,
       {"member 'x.npy' (compressed data), byte ", "corrupt compressed data"}},
      {"deflate trailing", make_zip({long_deflate}).bytes, {"continues after the end"}},
      {"deflate short", make_zip({short_member}).bytes, {"the member's data ends here"}},
      {"trailing directory bytes",
       with(end + 12, good.bytes.size() - 22 - cd - 2, 4),
       {"entry 0 runs past the central directory"}},
  };
  for (const BadFile& c : cases) {
    expect_refused(dir, "NPZ file", c, [](const std::string& path) { read_npz(path); });
  }
  // The archive those cases spoil reads, stored and deflated.
  EXPECT_EQ(read_npz(dir.write("good.npz", good.bytes)).at("x").to_vector<double>(),
            (std::vector<double>{0, 1, 2, 3}));
  EXPECT_EQ(read_npz(dir.write("d.npz", make_zip({deflated("x.npy", npy)}).bytes)).at("x").numel(),
            4);
  expect_io_error([&] { read_npz(dir.file("absent.npz")); }, {"absent.npz", "cannot open"});
  expect_io_error([&] { write_npz(dir.file("no/such/dir.npz"), {}); }, {"cannot create"});
}

}  // namespace
}  // namespace ember::test
