// Element types of files and their chunked, converting reads into tensors.
#include "engine/data/elements.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "ember/error.hpp"

namespace ember::data::detail {
namespace {

// Each element type and the C++ type of its bytes: the one list the code below expands.
#define EMBER_ELEMENT_TYPES(X) \
  X(Bool, std::uint8_t)        \
  X(UInt8, std::uint8_t)       \
  X(Int8, std::int8_t)         \
  X(Int16, std::int16_t)       \
  X(UInt16, std::uint16_t)     \
  X(Int32, std::int32_t)       \
  X(UInt32, std::uint32_t)     \
  X(Int64, std::int64_t)       \
  X(Float32, float)            \
  X(Float64, double)

template <ElementType E>
struct Stored;
#define EMBER_STORED(name, cpp)      \
  template <>                        \
  struct Stored<ElementType::name> { \
    using type = cpp;                \
  };
EMBER_ELEMENT_TYPES(EMBER_STORED)
#undef EMBER_STORED

// f.template operator()<E>() for the runtime type.
template <typename F>
void visit(ElementType type, F&& f) {
  switch (type) {
#define EMBER_VISIT(name, cpp) \
  case ElementType::name:      \
    return f.template operator()<ElementType::name>();
    EMBER_ELEMENT_TYPES(EMBER_VISIT)
#undef EMBER_VISIT
  }
}

// Converts n stored elements (in host byte order) at `in` to D.
template <ElementType E, typename D>
void convert(const unsigned char* in, std::size_t n, D* out) {
  using S = typename Stored<E>::type;
  for (std::size_t i = 0; i < n; ++i) {
    S v;
    std::memcpy(&v, in + i * sizeof(S), sizeof(S));
    if constexpr (E == ElementType::Bool) {
      out[i] = static_cast<D>(v != 0);
    } else {
      out[i] = static_cast<D>(v);
    }
  }
}

template <ElementType E>
void convert_to(const unsigned char* in, std::size_t n, DType dtype, void* out) {
  switch (dtype) {
    case DType::Bool:
      return convert<E>(in, n, static_cast<std::uint8_t*>(out));
    case DType::Int64:
      return convert<E>(in, n, static_cast<std::int64_t*>(out));
    case DType::Float32:
      return convert<E>(in, n, static_cast<float*>(out));
    case DType::Float64:
      return convert<E>(in, n, static_cast<double*>(out));
  }
}

void swap_bytes(unsigned char* data, std::size_t n, std::size_t size) {
  for (std::size_t i = 0; i < n; ++i) std::reverse(data + i * size, data + (i + 1) * size);
}

constexpr std::size_t kChunkBytes = std::size_t{1} << 20;

}  // namespace

std::size_t element_bytes(ElementType type) {
  std::size_t size = 0;
  visit(type, [&]<ElementType E>() { size = sizeof(typename Stored<E>::type); });
  return size;
}

const char* element_name(ElementType type) {
  static constexpr const char* kNames[] = {"bool",  "uint8",  "int8",  "int16",   "uint16",
                                           "int32", "uint32", "int64", "float32", "float64"};
  return kNames[static_cast<int>(type)];
}

DType natural_dtype(ElementType type) {
  switch (type) {
    case ElementType::Bool:
      return kBool;
    case ElementType::Float32:
      return kFloat32;
    case ElementType::Float64:
      return kFloat64;
    default:
      return kInt64;
  }
}

bool converts_to(ElementType type, DType dtype) {
  const DType natural = natural_dtype(type);
  return dtype == natural || natural == kBool || (natural == kInt64 && is_floating(dtype)) ||
         (is_floating(natural) && is_floating(dtype));
}

void read_elements(ByteSource& src, ElementType type, bool big_endian, const Tensor& out) {
  const std::size_t size = element_bytes(type);
  const auto count = static_cast<std::size_t>(out.numel());
  auto* dst = static_cast<unsigned char*>(out.data_ptr());
  const bool swap = big_endian && size > 1;
  const bool same_layout = !swap && natural_dtype(type) == out.dtype() &&
                           size == element_size(out.dtype()) && type != ElementType::Bool;
  if (same_layout) {
    // Straight into the tensor: no second copy of the data.
    src.read_exact(dst, count * size, "the array's data");
    return;
  }
  std::vector<unsigned char> chunk(std::min(kChunkBytes / size, std::max<std::size_t>(count, 1)) *
                                   size);
  const std::size_t per_chunk = chunk.size() / size;
  const std::size_t out_size = element_size(out.dtype());
  for (std::size_t done = 0; done < count;) {
    const std::size_t n = std::min(per_chunk, count - done);
    src.read_exact(chunk.data(), n * size, "the array's data");
    if (swap) swap_bytes(chunk.data(), n, size);
    visit(type, [&]<ElementType E>() {
      convert_to<E>(chunk.data(), n, out.dtype(), dst + done * out_size);
    });
    done += n;
  }
}

}  // namespace ember::data::detail
