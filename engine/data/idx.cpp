// The IDX reader (Yann LeCun's format of the MNIST files), plain or gzip-compressed.
#include "ember/data/idx.hpp"

#include <algorithm>
#include <new>

#include "ember/error.hpp"
#include "engine/data/elements.hpp"

namespace ember::data {
namespace {

using detail::ElementType;

constexpr std::size_t kMagicBytes = 4;

bool type_of_code(unsigned char code, ElementType* type) {
  switch (code) {
    case 0x08:
      *type = ElementType::UInt8;
      return true;
    case 0x09:
      *type = ElementType::Int8;
      return true;
    case 0x0B:
      *type = ElementType::Int16;
      return true;
    case 0x0C:
      *type = ElementType::Int32;
      return true;
    case 0x0D:
      *type = ElementType::Float32;
      return true;
    case 0x0E:
      *type = ElementType::Float64;
      return true;
    default:
      return false;
  }
}

std::string hex(std::uint64_t v, int digits) {
  static const char* kDigits = "0123456789abcdef";
  std::string s = "0x";
  for (int i = digits - 1; i >= 0; --i) s.push_back(kDigits[(v >> (4 * i)) & 15]);
  return s;
}

Tensor read_idx_from(detail::ByteSource& src, const IdxReadOptions& options) {
  unsigned char magic[kMagicBytes];
  src.read_exact(magic, kMagicBytes, "the magic number");
  const std::string magic_hex = hex(detail::get_be(magic, kMagicBytes), 8);
  if (magic[0] != 0 || magic[1] != 0) {
    detail::fail_at(
        src.where(), 0,
        "not an IDX file: its magic number " + magic_hex + " does not start with two zero bytes");
  }
  ElementType type{};
  if (!type_of_code(magic[2], &type)) {
    detail::fail_at(src.where(), 2,
                    "unknown data type code " + hex(magic[2], 2) +
                        " (0x08 uint8, 0x09 int8, 0x0b int16, 0x0c int32, 0x0d float32, "
                        "0x0e float64)");
  }
  const int ndim = magic[3];
  if (ndim == 0 || ndim > kMaxRank) {
    detail::fail_at(src.where(), 3,
                    "the magic number " + magic_hex + " gives " + std::to_string(ndim) +
                        " dims (1 to " + std::to_string(kMaxRank) + " are supported)");
  }
  unsigned char dims[4 * kMaxRank];
  src.read_exact(dims, 4 * static_cast<std::size_t>(ndim), "the dims");
  Shape shape;
  std::uint64_t numel = 1;
  std::uint64_t extent = 1;  // the product of the nonzero dims
  for (int d = 0; d < ndim; ++d) {
    const std::uint64_t size = detail::get_be(dims + 4 * d, 4);
    shape.push_back(static_cast<std::int64_t>(size));
    // Bounded so that the byte count (8 per element at most) fits an int64 too. The nonzero
    // dims are bounded even when another dim is zero: a tensor's strides multiply them.
    const auto next = detail::checked_mul(extent, std::max<std::uint64_t>(size, 1));
    if (!next || *next > static_cast<std::uint64_t>(INT64_MAX) / 8) {
      detail::fail_at(src.where(), kMagicBytes + 4 * d,
                      "the dims " + shape.str() + " hold more elements than can be addressed");
    }
    extent = *next;
    numel *= size;
  }
  const DType dtype = options.dtype.value_or(detail::natural_dtype(type));
  if (!detail::converts_to(type, dtype)) {
    detail::fail_at(src.where(), 2,
                    std::string("the file holds ") + detail::element_name(type) +
                        ", which cannot be read as " + dtype_name(dtype));
  }
  const std::uint64_t data_bytes = numel * detail::element_bytes(type);
  if (data_bytes > src.max_remaining()) {
    src.fail("truncated: the dims " + shape.str() + " need " + std::to_string(data_bytes) +
             " bytes of " + detail::element_name(type) + " data, more than follow");
  }
  Tensor out;
  try {
    out = empty(shape, TensorOptions{}.with_dtype(dtype));
  } catch (const std::bad_alloc&) {
    src.fail("cannot allocate memory for the dims " + shape.str());
  }
  detail::read_elements(src, type, /*big_endian=*/true, out);
  src.expect_end("the data of the dims " + shape.str());
  return out;
}

}  // namespace

Tensor read_idx(const std::string& path, const IdxReadOptions& options) {
  const detail::File file(path, "IDX file");
  if (file.size() == 0) detail::fail_at(file.where(), 0, "the file is empty");
  unsigned char first[2] = {};
  const bool gzip = file.read_at(0, first, 2) == 2 && first[0] == 0x1f && first[1] == 0x8b;
  detail::FileRangeSource raw(file, 0, file.size());
  if (!gzip) return read_idx_from(raw, options);
  detail::InflateSource decompressed(raw, detail::InflateSource::Format::Gzip,
                                     file.where() + " (decompressed)");
  return read_idx_from(decompressed, options);
}

}  // namespace ember::data
