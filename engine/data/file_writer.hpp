// Writing a file so that a failure never leaves a half-written one at its path: the bytes go
// to a temporary file beside it, which is synced and renamed onto the path when complete.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace ember::data::detail {

class AtomicFileWriter {
 public:
  // `where` names the file in messages ("NPY file 'x.npy'").
  AtomicFileWriter(const std::string& path, std::string where);
  // Removes the temporary file unless commit() succeeded.
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, std::size_t n);
  // Bytes written so far.
  std::uint64_t position() const { return position_; }
  // Flushes, syncs and renames the file onto the path.
  void commit();

 private:
  [[noreturn]] void fail(const std::string& what);
  std::string path_, tmp_path_, where_;
  std::FILE* file_ = nullptr;
  std::uint64_t position_ = 0;
  bool committed_ = false;
};

}  // namespace ember::data::detail
