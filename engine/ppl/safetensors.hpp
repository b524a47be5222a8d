// Reading and writing the safetensors format (a little-endian u64 header length, a JSON
// header of {name: {dtype, shape, data_offsets}} plus "__metadata__", then the raw bytes),
// so that Python's safetensors library reads Ember's files and the other way round.
#pragma once

#include <map>
#include <string>

#include "ember/tensor.hpp"

namespace ember::detail {

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;  // on the CPU, contiguous
  std::map<std::string, std::string> metadata;
};

// Writes atomically: to a temporary file beside `path`, synced, then renamed onto it.
// Float32, float64, int64 and bool tensors (any device).
void write_safetensors(const std::string& path, const SafetensorsFile& file);
// Reads and checks the whole file; an IoError names the file and what is wrong (missing,
// truncated, a malformed header, an unknown dtype, offsets outside the data, ...).
SafetensorsFile read_safetensors(const std::string& path);

}  // namespace ember::detail
