// Where the binary readers' bytes come from: a range of a file, or a deflate or gzip stream
// decoded on the fly from another source. A source counts the bytes it has delivered, so a
// reader's errors name the byte offset at fault; every failure is an IoError that names the
// file (and the member of an archive).
#pragma once

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ember::data::detail {

inline constexpr std::uint64_t kUnknownSize = std::numeric_limits<std::uint64_t>::max();

// Throws IoError("<where>, byte <offset>: <message>"), the message's text printable.
[[noreturn]] void fail_at(const std::string& where, std::uint64_t offset,
                          const std::string& message);

// Text from a file as a message shows it: control bytes (a NUL would cut the message short
// for every reader of what()) and DEL as \xNN, and with `ascii` every byte past 0x7F too;
// the rest as is.
std::string printable(std::string_view text, bool ascii = false);

// a + b and a * b, or nullopt when the result does not fit 64 bits.
std::optional<std::uint64_t> checked_add(std::uint64_t a, std::uint64_t b);
std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b);

// A file opened for reading at explicit offsets (an archive's directory needs random access).
class File {
 public:
  // `kind` names the format in messages ("NPY file").
  File(const std::string& path, std::string_view kind);
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  // "<kind> '<path>'", the start of every message about this file.
  const std::string& where() const { return where_; }
  std::uint64_t size() const { return size_; }
  // Up to n bytes at offset: fewer only where the file ends.
  std::size_t read_at(std::uint64_t offset, void* dst, std::size_t n) const;
  // Exactly n bytes at offset, or an IoError naming `item` and how far the file falls short.
  void read_exact_at(std::uint64_t offset, void* dst, std::size_t n, std::string_view item) const;

 private:
  std::string where_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

class ByteSource {
 public:
  // `start`: the offset of the first byte, as messages name it.
  explicit ByteSource(std::string where, std::uint64_t start = 0)
      : where_(std::move(where)), position_(start) {}
  virtual ~ByteSource() = default;
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;

  // Up to n bytes (at least one unless the data has ended): the count delivered.
  std::size_t read_some(void* dst, std::size_t n);
  // Exactly n bytes, or an IoError: the data ends before `item` does.
  void read_exact(void* dst, std::size_t n, std::string_view item);
  // An IoError unless the data ends here (`after` names what should have been last).
  void expect_end(std::string_view after);
  // Bytes delivered so far: the offset of the next one.
  std::uint64_t position() const { return position_; }
  // An upper bound on the bytes still to come (kUnknownSize: none known): readers compare a
  // header's claims with it before allocating for them.
  virtual std::uint64_t max_remaining() const = 0;
  const std::string& where() const { return where_; }
  [[noreturn]] void fail(const std::string& message) const { fail_at(where_, position_, message); }

 protected:
  virtual std::size_t read_raw(void* dst, std::size_t n) = 0;

 private:
  std::string where_;
  std::uint64_t position_ = 0;
};

// Bytes [begin, end) of a file; offsets in messages are the file's.
class FileRangeSource final : public ByteSource {
 public:
  FileRangeSource(const File& file, std::uint64_t begin, std::uint64_t end);
  FileRangeSource(const File& file, std::uint64_t begin, std::uint64_t end, std::string where);
  std::uint64_t max_remaining() const override { return end_ - next_; }

 private:
  std::size_t read_raw(void* dst, std::size_t n) override;
  const File& file_;
  std::uint64_t next_, end_;
};

// The decompressed bytes of a zlib stream read from `compressed`: gzip (one or more members,
// as RFC 1952 allows) or raw deflate (a zip member: exactly one stream, nothing after it).
// Offsets in its messages count decompressed bytes; a corrupt or truncated stream is
// reported at the compressed offset where zlib stopped.
class InflateSource final : public ByteSource {
 public:
  enum class Format { Gzip, RawDeflate };
  InflateSource(ByteSource& compressed, Format format, std::string where);
  ~InflateSource() override;
  // Deflate expands at most 1032-fold, so the compressed bytes left bound the rest.
  std::uint64_t max_remaining() const override;

 private:
  std::size_t read_raw(void* dst, std::size_t n) override;
  bool refill();  // more compressed input; false at its end
  ByteSource& compressed_;
  Format format_;
  z_stream stream_{};
  std::vector<unsigned char> input_;
  bool stream_ended_ = false;
};

// Compresses bytes into raw deflate (a zip member's data), appended to `out`.
class Deflater {
 public:
  explicit Deflater(std::vector<unsigned char>& out);
  ~Deflater();
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;
  void add(const void* data, std::size_t n);
  void finish();

 private:
  void run(int flush);
  std::vector<unsigned char>& out_;
  z_stream stream_{};
};

// Appends a little-endian unsigned integer of N bytes; reads one.
template <int N>
void put_le(std::vector<unsigned char>& out, std::uint64_t v) {
  for (int i = 0; i < N; ++i) out.push_back(static_cast<unsigned char>(v >> (8 * i)));
}
inline std::uint64_t get_le(const unsigned char* p, int n) {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
inline std::uint64_t get_be(const unsigned char* p, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

}  // namespace ember::data::detail
