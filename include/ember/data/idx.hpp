// The IDX format of the MNIST files: a magic number (two zero bytes, a type code, the number
// of dims), the dims as big-endian uint32, then the elements big-endian, row-major. Plain or
// gzip-compressed (told apart by the first bytes, not the name); a compressed file is decoded
// as a stream straight into the result, so time and memory grow linearly with its size.
// Every fault of a file is an IoError naming the file and the byte offset.
#pragma once

#include <optional>
#include <string>

#include "ember/tensor.hpp"

namespace ember::data {

struct IdxReadOptions {
  // Convert to this dtype while reading; unset: integer types (uint8, int8, int16, int32)
  // become int64, float32 and float64 stay. MNIST's images are best read as float32: a quarter
  // of int64's memory.
  std::optional<DType> dtype;
};

// The whole array, a contiguous CPU tensor of the file's dims.
//   Tensor images = read_idx("train-images-idx3-ubyte.gz", {.dtype = kFloat32}) / 255.0;
Tensor read_idx(const std::string& path, const IdxReadOptions& options = {});

}  // namespace ember::data
