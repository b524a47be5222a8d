// The element types that files store (more than a tensor holds), and reading them into a
// tensor: byte order swapped and values converted on the way, in chunks, so that a file's
// data is never held twice.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ember/tensor.hpp"
#include "engine/data/byte_source.hpp"

namespace ember::data::detail {

enum class ElementType : std::uint8_t {
  Bool,
  UInt8,
  Int8,
  Int16,
  UInt16,
  Int32,
  UInt32,
  Int64,
  Float32,
  Float64,
};

std::size_t element_bytes(ElementType type);
const char* element_name(ElementType type);
// The dtype that holds every value of the type: bool, int64 for integers, or the float.
DType natural_dtype(ElementType type);
// Whether values of `type` may be read as `dtype`: as the natural dtype, integers as
// floats, one float as the other, bool as anything. Not floats as integers (truncation), nor
// numbers as bool.
bool converts_to(ElementType type, DType dtype);

// Reads out.numel() elements stored as `type` (big_endian: most significant byte first) from
// src into `out`, a contiguous CPU tensor whose dtype `type` converts to. Bools are stored as
// 0 or 1 whatever nonzero byte the file holds.
void read_elements(ByteSource& src, ElementType type, bool big_endian, const Tensor& out);

}  // namespace ember::data::detail
