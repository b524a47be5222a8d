// NumPy's .npy files (one array) and .npz archives (a zip of .npy files, stored or deflated),
// read and written, so that arrays move between Ember and Python unchanged:
//   numpy.load("samples.npz")["z"]  <->  ember::data::read_npz("samples.npz").at("z")
// Every fault of a file is an IoError naming the file, the member and the byte offset.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "ember/tensor.hpp"

namespace ember::data {

struct NpyReadOptions {
  // Convert to this dtype while reading; unset: bool stays bool, every integer type becomes
  // int64 and float32, float64 stay as they are. Integers may be read as floats and floats
  // as the other float; floats cannot be read as integers, nor numbers as bool.
  std::optional<DType> dtype;
};

struct NpyWriteOptions {
  // Store the elements column-major (NumPy's fortran_order) instead of row-major.
  bool fortran_order = false;
};

struct NpzWriteOptions {
  // Deflate each member (numpy.savez_compressed) instead of storing it (numpy.savez).
  bool compress = false;
  // Applies to every member.
  bool fortran_order = false;
};

// Reads a .npy file of format version 1.0, 2.0 or 3.0: dtypes bool, uint8, uint16, uint32,
// int8, int16, int32, int64, float32, float64, little- or big-endian (swapped while reading),
// in C or Fortran order. The result is a contiguous CPU tensor in C order.
Tensor read_npy(const std::string& path, const NpyReadOptions& options = {});

// Writes `tensor` (any device) as a version 1.0 .npy file (2.0 when the header needs it) of
// the same dtype, little-endian. Like every writer here it writes beside `path` and renames
// the finished file onto it, so a failure never leaves a half-written file at `path`.
void write_npy(const std::string& path, const Tensor& tensor, const NpyWriteOptions& options = {});

// Reads every member of a .npz archive: the key of "name.npy" is "name". The zip structure
// is checked (central directory, local headers, sizes, CRC-32 of every member; Zip64 records
// accepted); encrypted members, other compression methods and members that are not .npy
// files are refused.
std::map<std::string, Tensor> read_npz(const std::string& path, const NpyReadOptions& options = {});

// Writes the tensors as "<key>.npy" members of a zip archive, as numpy.savez does. An archive
// or member over 4 GiB would need Zip64 records, which this writer does not make: it refuses
// such data with an IoError (write each tensor with write_npy instead).
void write_npz(const std::string& path, const std::map<std::string, Tensor>& tensors,
               const NpzWriteOptions& options = {});

}  // namespace ember::data
