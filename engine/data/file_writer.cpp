// The atomic file writer of the data formats.
#include "engine/data/file_writer.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "ember/error.hpp"

namespace ember::data::detail {

AtomicFileWriter::AtomicFileWriter(const std::string& path, std::string where)
    : path_(path), where_(std::move(where)) {
  // A random suffix: two writers of one path never share a temporary file.
  std::random_device entropy;
  tmp_path_ = path + ".tmp-" + std::to_string(entropy());
  file_ = std::fopen(tmp_path_.c_str(), "wbx");
  if (file_ == nullptr) {
    throw IoError(where_ + ": cannot create " + tmp_path_ + ": " + std::strerror(errno));
  }
}

AtomicFileWriter::~AtomicFileWriter() {
  if (committed_) return;
  if (file_ != nullptr) std::fclose(file_);
  std::error_code ignored;
  std::filesystem::remove(tmp_path_, ignored);
}

void AtomicFileWriter::fail(const std::string& what) {
  const std::string reason = std::strerror(errno);
  throw IoError(where_ + ": " + what + " failed at byte " + std::to_string(position_) + ": " +
                reason);
}

void AtomicFileWriter::write(const void* data, std::size_t n) {
  if (n > 0 && std::fwrite(data, 1, n, file_) != n) fail("writing");
  position_ += n;
}

void AtomicFileWriter::commit() {
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) fail("syncing");
  const int closed = std::fclose(file_);
  file_ = nullptr;
  if (closed != 0) fail("closing");
  std::error_code ec;
  std::filesystem::rename(tmp_path_, path_, ec);
  if (ec) throw IoError(where_ + ": cannot rename the written file into place: " + ec.message());
  committed_ = true;
}

}  // namespace ember::data::detail
