// Helpers of the data tests: a temporary directory per test, files built byte by byte
// (including gzip streams of stored deflate blocks, so no compressor is needed), and a check
// that a call throws an IoError whose message names what it should.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <ember/ember.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

namespace ember::test {

// A fresh directory, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::random_device entropy;
    path_ = std::filesystem::temp_directory_path() /
            ("ember_data_test_" + std::to_string(entropy()) + std::to_string(entropy()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  // Writes `bytes` to a file of that name and returns its path.
  std::string write(const std::string& name, const std::string& bytes) const {
    const std::string path = file(name);
    std::ofstream(path, std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path;
  }

 private:
  std::filesystem::path path_;
};

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A byte string built field by field.
class Bytes {
 public:
  Bytes& raw(const std::string& s) {
    s_ += s;
    return *this;
  }
  Bytes& le(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) s_.push_back(static_cast<char>(v >> (8 * i)));
    return *this;
  }
  Bytes& be(std::uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) s_.push_back(static_cast<char>(v >> (8 * i)));
    return *this;
  }
  const std::string& str() const { return s_; }
  operator const std::string&() const { return s_; }  // NOLINT: implicit by design

 private:
  std::string s_;
};

// The CRC-32 of zip and gzip (reflected polynomial 0xEDB88320).
inline std::uint32_t crc32_of(const std::string& data) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (const char c : data) {
    crc ^= static_cast<unsigned char>(c);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

// `data` as raw deflate of stored (uncompressed) blocks.
inline std::string stored_deflate(const std::string& data) {
  Bytes out;
  std::size_t at = 0;
  do {
    const std::size_t n = std::min<std::size_t>(data.size() - at, 65535);
    const bool last = at + n == data.size();
    out.le(last ? 1 : 0, 1).le(n, 2).le(~n & 0xFFFF, 2).raw(data.substr(at, n));
    at += n;
  } while (at < data.size());
  return out.str();
}

// A gzip member (RFC 1952) holding `data` in stored deflate blocks.
inline std::string gzip_stored(const std::string& data) {
  return Bytes()
      .raw("\x1f\x8b\x08")
      .le(0, 1)    // flags
      .le(0, 4)    // mtime
      .le(0, 1)    // extra flags
      .le(255, 1)  // OS unknown
      .raw(stored_deflate(data))
      .le(crc32_of(data), 4)
      .le(data.size() & 0xFFFFFFFF, 4)
      .str();
}

// Expects `call` to throw an IoError whose message contains every one of `parts`.
inline void expect_io_error(const std::function<void()>& call,
                            const std::vector<std::string>& parts) {
  try {
    call();
  } catch (const IoError& e) {
    const std::string what = e.what();
    for (const std::string& part : parts) {
      EXPECT_NE(what.find(part), std::string::npos) << "'" << part << "' is not in: " << what;
    }
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw another exception than IoError: " << e.what();
    return;
  }
  ADD_FAILURE() << "did not throw";
}

// A file a reader must refuse: its name (in the temporary directory), its bytes, and the
// parts of the IoError's message besides the file's name.
struct BadFile {
  std::string name, bytes;
  std::vector<std::string> parts;
};

// Writes the file and expects read(path) to throw an IoError that names it as
// "<kind> '<path>'" and holds every part.
inline void expect_refused(const TempDir& dir, const std::string& kind, const BadFile& file,
                           const std::function<void(const std::string&)>& read) {
  SCOPED_TRACE(file.name);
  const std::string path = dir.write(file.name, file.bytes);
  std::vector<std::string> parts = file.parts;
  parts.push_back(kind + " '" + path + "'");
  expect_io_error([&] { read(path); }, parts);
}

// Where the project's data sets are (data/ beside tests/), and NumPy's reference files.
inline std::string data_dir() { return std::string(EMBER_TEST_DIR) + "/../data"; }
inline std::string reference_file(const std::string& name) {
  return std::string(EMBER_TEST_DIR) + "/engine/data/reference/" + name;
}

}  // namespace ember::test
