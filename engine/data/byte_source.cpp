// Files read at offsets, byte sources over them, and zlib streams in both directions.
#include "engine/data/byte_source.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "ember/error.hpp"

namespace ember::data::detail {

void fail_at(const std::string& where, std::uint64_t offset, const std::string& message) {
  throw IoError(where + ", byte " + std::to_string(offset) + ": " + printable(message));
}

std::string printable(std::string_view text, bool ascii) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < (ascii ? 0x7F : 0x100) && u != 0x7F) {
      out.push_back(c);
    } else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out.push_back(hex[u >> 4]);
      out.push_back(hex[u & 15]);
    }
  }
  return out;
}

std::optional<std::uint64_t> checked_add(std::uint64_t a, std::uint64_t b) {
  std::uint64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b) {
  std::uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// ------------------------------------------------------------------------------ File ----
File::File(const std::string& path, std::string_view kind)
    : where_(std::string(kind) + " '" + path + "'") {
  // Opened without blocking: opening a FIFO for reading would otherwise wait for a writer
  // before the check below could refuse it. Reads of a regular file never block.
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd_ < 0) throw IoError(where_ + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    const std::string why = S_ISDIR(st.st_mode) ? "is a directory" : "is not a regular file";
    ::close(fd_);
    throw IoError(where_ + ": cannot read: " + why);
  }
  size_ = static_cast<std::uint64_t>(st.st_size);
}

File::~File() { ::close(fd_); }

std::size_t File::read_at(std::uint64_t offset, void* dst, std::size_t n) const {
  auto* out = static_cast<char*>(dst);
  std::size_t done = 0;
  while (done < n) {
    const ssize_t got = ::pread(fd_, out + done, n - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0)
      fail_at(where_, offset + done, std::string("read failed: ") + std::strerror(errno));
    if (got == 0) break;
    done += static_cast<std::size_t>(got);
  }
  return done;
}

void File::read_exact_at(std::uint64_t offset, void* dst, std::size_t n,
                         std::string_view item) const {
  const std::size_t got = read_at(offset, dst, n);
  if (got < n) {
    fail_at(where_, offset,
            "truncated: " + std::string(item) + ": " + std::to_string(n) +
                " bytes needed here, the file ends after " + std::to_string(got));
  }
}

// ------------------------------------------------------------------------ ByteSource ----
std::size_t ByteSource::read_some(void* dst, std::size_t n) {
  const std::size_t got = n ? read_raw(dst, n) : 0;
  position_ += got;
  return got;
}

void ByteSource::read_exact(void* dst, std::size_t n, std::string_view item) {
  const std::uint64_t start = position_;
  auto* out = static_cast<char*>(dst);
  std::size_t done = 0;
  while (done < n) {
    const std::size_t got = read_some(out + done, n - done);
    if (got == 0) {
      fail_at(where_, start,
              "truncated: " + std::string(item) + ": " + std::to_string(n) +
                  " bytes needed here, the data ends after " + std::to_string(done));
    }
    done += got;
  }
}

void ByteSource::expect_end(std::string_view after) {
  unsigned char extra = 0;
  const std::uint64_t at = position_;
  if (read_some(&extra, 1) != 0) {
    fail_at(where_, at, "unexpected bytes after " + std::string(after) + " (corrupt file?)");
  }
}

FileRangeSource::FileRangeSource(const File& file, std::uint64_t begin, std::uint64_t end)
    : FileRangeSource(file, begin, end, file.where()) {}

FileRangeSource::FileRangeSource(const File& file, std::uint64_t begin, std::uint64_t end,
                                 std::string where)
    : ByteSource(std::move(where), begin), file_(file), next_(begin), end_(std::max(begin, end)) {}

std::size_t FileRangeSource::read_raw(void* dst, std::size_t n) {
  const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n, end_ - next_));
  const std::size_t got = file_.read_at(next_, dst, want);
  next_ += got;
  return got;
}

// --------------------------------------------------------------------- InflateSource ----
namespace {
constexpr std::size_t kInflateChunk = std::size_t{1} << 16;
constexpr std::uint64_t kMaxDeflateRatio = 1032;  // deflate's largest expansion
}  // namespace

InflateSource::InflateSource(ByteSource& compressed, Format format, std::string where)
    : ByteSource(std::move(where)), compressed_(compressed), format_(format) {
  const int window_bits = format == Format::Gzip ? 15 + 16 : -15;
  if (inflateInit2(&stream_, window_bits) != Z_OK) {
    compressed_.fail("cannot start zlib's decoder (out of memory?)");
  }
  input_.resize(kInflateChunk);
}

InflateSource::~InflateSource() { inflateEnd(&stream_); }

std::uint64_t InflateSource::max_remaining() const {
  if (stream_ended_ && stream_.avail_in == 0 && compressed_.max_remaining() == 0) return 0;
  const std::uint64_t left = compressed_.max_remaining();
  if (left == kUnknownSize) return kUnknownSize;
  // The buffered input, the rest of the source, and what zlib holds back in its window.
  const auto bound =
      checked_mul(checked_add(left, stream_.avail_in).value_or(kUnknownSize), kMaxDeflateRatio);
  return checked_add(bound.value_or(kUnknownSize), std::uint64_t{1} << 16).value_or(kUnknownSize);
}

bool InflateSource::refill() {
  const std::size_t got = compressed_.read_some(input_.data(), input_.size());
  stream_.next_in = input_.data();
  stream_.avail_in = static_cast<uInt>(got);
  return got > 0;
}

std::size_t InflateSource::read_raw(void* dst, std::size_t n) {
  stream_.next_out = static_cast<Bytef*>(dst);
  stream_.avail_out = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
  const uInt wanted = stream_.avail_out;
  while (stream_.avail_out > 0) {
    if (stream_ended_) {
      if (stream_.avail_in == 0 && !refill()) break;  // the end of the data
      // Gzip allows members back to back; raw deflate in a zip ends with its stream.
      if (format_ == Format::RawDeflate) {
        compressed_.fail("compressed data continues after the end of the deflate stream");
      }
      if (inflateReset(&stream_) != Z_OK) compressed_.fail("cannot restart zlib's decoder");
      stream_ended_ = false;
    }
    if (stream_.avail_in == 0 && !refill()) {
      compressed_.fail(std::string("truncated: the compressed data ends inside the ") +
                       (format_ == Format::Gzip ? "gzip" : "deflate") + " stream");
    }
    const int rc = inflate(&stream_, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) {
      stream_ended_ = true;
    } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
      // At the first compressed byte that zlib has not consumed.
      fail_at(compressed_.where(), compressed_.position() - stream_.avail_in,
              std::string("corrupt compressed data: ") +
                  (stream_.msg != nullptr ? stream_.msg : zError(rc)));
    }
  }
  return wanted - stream_.avail_out;
}

// -------------------------------------------------------------------------- Deflater ----
Deflater::Deflater(std::vector<unsigned char>& out) : out_(out) {
  if (deflateInit2(&stream_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    throw IoError("cannot start zlib's compressor (out of memory?)");
  }
}

Deflater::~Deflater() { deflateEnd(&stream_); }

void Deflater::add(const void* data, std::size_t n) {
  const auto* p = static_cast<const Bytef*>(data);
  while (n > 0) {
    const auto chunk = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
    stream_.next_in = const_cast<Bytef*>(p);
    stream_.avail_in = chunk;
    run(Z_NO_FLUSH);
    p += chunk;
    n -= chunk;
  }
}

void Deflater::finish() {
  stream_.next_in = nullptr;
  stream_.avail_in = 0;
  run(Z_FINISH);
}

void Deflater::run(int flush) {
  unsigned char buffer[kInflateChunk];
  int rc = Z_OK;
  do {
    stream_.next_out = buffer;
    stream_.avail_out = sizeof buffer;
    rc = deflate(&stream_, flush);
    if (rc == Z_STREAM_ERROR) throw IoError("zlib's compressor failed");
    out_.insert(out_.end(), buffer, buffer + (sizeof buffer - stream_.avail_out));
  } while (stream_.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
}

}  // namespace ember::data::detail
