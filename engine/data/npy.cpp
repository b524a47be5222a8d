// NumPy's .npy format (numpy.lib.format): "\x93NUMPY", a version, a header length (2 bytes
// for 1.0, 4 for 2.0 and 3.0), a Python dict literal {'descr': ..., 'fortran_order': ...,
// 'shape': (...)} padded with spaces to a 64-byte boundary, then the raw elements.
#include <algorithm>
#include <bit>
#include <cstring>
#include <new>
#include <numeric>
#include <vector>

#include "ember/error.hpp"
#include "engine/data/elements.hpp"
#include "engine/data/file_writer.hpp"
#include "engine/data/npy_format.hpp"

namespace ember::data {
namespace detail {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the .npy writer stores tensors' bytes as little-endian");

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicBytes = 6;

struct NpyHeader {
  ElementType type = ElementType::Float64;
  bool big_endian = false;
  bool fortran_order = false;
  Shape shape;
  std::uint64_t numel = 1;
  std::uint64_t extent = 1;  // the product of the nonzero dims
};

// The header's dict literal, as numpy writes it (and Python 2's "3L" integers).
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const ByteSource& src, std::uint64_t base)
      : text_(text), src_(src), base_(base) {}

  NpyHeader parse() {
    NpyHeader h;
    bool seen_descr = false, seen_order = false, seen_shape = false;
    expect('{');
    while (peek() != '}') {
      const std::size_t key_at = pos_;
      const std::string key = string();
      expect(':');
      bool* seen = nullptr;
      if (key == "descr") {
        seen = &seen_descr;
        if (peek() == '[') fail("structured dtypes (a list as descr) are not supported");
        const std::size_t value_at = pos_;
        descr(string(), value_at, &h);
      } else if (key == "fortran_order") {
        seen = &seen_order;
        h.fortran_order = boolean();
      } else if (key == "shape") {
        seen = &seen_shape;
        shape(&h);
      } else {
        pos_ = key_at;
        fail("unknown key '" + key + "' (a .npy header has descr, fortran_order and shape)");
      }
      if (*seen) {
        pos_ = key_at;
        fail("the key '" + key + "' appears twice");
      }
      *seen = true;
      if (peek() != ',') break;
      ++pos_;
    }
    expect('}');
    skip_space();
    if (pos_ != text_.size()) fail("unexpected text after the header's dict");
    if (!seen_descr || !seen_order || !seen_shape) {
      fail("the header lacks " + std::string(!seen_descr   ? "descr"
                                             : !seen_order ? "fortran_order"
                                                           : "shape"));
    }
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    fail_at(src_.where(), base_ + pos_, "malformed .npy header: " + what);
  }
  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' ||
                                   text_[pos_] == '\t' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }
  char peek() {
    skip_space();
    if (pos_ >= text_.size()) fail("it ends early");
    return text_[pos_];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string string() {
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a quoted string");
    const std::size_t end = text_.find(quote, pos_ + 1);
    if (end == std::string::npos) fail("a string is not closed");
    std::string s = text_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    return s;
  }
  bool boolean() {
    peek();
    for (const auto& [word, value] : {std::pair{"True", true}, std::pair{"False", false}}) {
      if (text_.compare(pos_, std::strlen(word), word) == 0) {
        pos_ += std::strlen(word);
        return value;
      }
    }
    fail("fortran_order must be True or False");
  }
  void shape(NpyHeader* h) {
    expect('(');
    while (peek() != ')') {
      const std::size_t start = pos_;
      std::uint64_t dim = 0;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
        const auto times_ten = checked_mul(dim, 10);
        const auto next = times_ten ? checked_add(*times_ten, text_[pos_] - '0') : std::nullopt;
        if (!next || *next > static_cast<std::uint64_t>(INT64_MAX)) fail("a dim is too large");
        dim = *next;
        ++pos_;
      }
      if (pos_ == start) fail("a dim must be a non-negative integer");
      if (pos_ < text_.size() && text_[pos_] == 'L') ++pos_;  // Python 2's long integers
      if (h->shape.size() == kMaxRank) fail("more than " + std::to_string(kMaxRank) + " dims");
      h->shape.push_back(static_cast<std::int64_t>(dim));
      // The nonzero dims are bounded even when another dim is zero: a tensor's strides
      // multiply them.
      const auto extent = checked_mul(h->extent, std::max<std::uint64_t>(dim, 1));
      if (!extent || *extent > static_cast<std::uint64_t>(INT64_MAX)) {
        pos_ = start;
        fail("the shape's element count overflows");
      }
      h->extent = *extent;
      h->numel *= dim;
      if (peek() != ',') break;
      ++pos_;
    }
    expect(')');
  }
  void descr(const std::string& d, std::size_t value_at, NpyHeader* h) {
    static constexpr std::pair<const char*, ElementType> kCodes[] = {
        {"b1", ElementType::Bool},    {"?", ElementType::Bool},     {"u1", ElementType::UInt8},
        {"i1", ElementType::Int8},    {"i2", ElementType::Int16},   {"u2", ElementType::UInt16},
        {"i4", ElementType::Int32},   {"u4", ElementType::UInt32},  {"i8", ElementType::Int64},
        {"f4", ElementType::Float32}, {"f8", ElementType::Float64},
    };
    const bool has_order = !d.empty() && std::strchr("<>|=", d[0]) != nullptr;
    const std::string code = has_order ? d.substr(1) : d;
    for (const auto& [name, type] : kCodes) {
      if (code != name) continue;
      h->type = type;
      h->big_endian = has_order && d[0] == '>';
      if (has_order && d[0] == '|' && element_bytes(type) > 1) {
        fail_at(src_.where(), base_ + value_at, "dtype '" + d + "' has no byte order");
      }
      return;
    }
    fail_at(src_.where(), base_ + value_at,
            "dtype '" + d +
                "' is not supported (bool, uint8, uint16, uint32, int8, int16, int32, int64, "
                "float32, float64)");
  }

  const std::string& text_;
  const ByteSource& src_;
  std::uint64_t base_;
  std::size_t pos_ = 0;
};

// `shape` with its dims in reverse order (a Fortran-order array read as C order).
Shape reversed(const Shape& shape) {
  Shape r = shape;
  std::reverse(r.begin(), r.end());
  return r;
}

std::vector<int> reversed_dims(int n) {
  std::vector<int> dims(static_cast<std::size_t>(n));
  std::iota(dims.rbegin(), dims.rend(), 0);
  return dims;
}

// NumPy's descr of each dtype, in DType's order (bool, int64, float32, float64).
const char* descr_of(DType dtype) {
  static constexpr const char* kDescrs[] = {"|b1", "<i8", "<f4", "<f8"};
  return kDescrs[static_cast<int>(dtype)];
}

}  // namespace

Tensor read_npy_from(ByteSource& src, const NpyReadOptions& options) {
  const std::uint64_t start = src.position();
  unsigned char preamble[8];
  src.read_exact(preamble, sizeof preamble, "the magic string and version");
  if (std::memcmp(preamble, kMagic, kMagicBytes) != 0) {
    fail_at(src.where(), start, "not a .npy file: it does not start with \\x93NUMPY");
  }
  const int major = preamble[6], minor = preamble[7];
  if (major < 1 || major > 3 || minor != 0) {
    fail_at(src.where(), start + 6,
            "format version " + std::to_string(major) + "." + std::to_string(minor) +
                " is not supported (1.0, 2.0, 3.0)");
  }
  unsigned char length_bytes[4];
  const int length_size = major == 1 ? 2 : 4;
  src.read_exact(length_bytes, length_size, "the header length");
  const std::uint64_t header_length = get_le(length_bytes, length_size);
  if (header_length > src.max_remaining()) {
    src.fail("truncated: the header length is " + std::to_string(header_length) +
             " bytes, more than the data holds");
  }
  const std::uint64_t header_at = src.position();
  std::string text(header_length, '\0');
  src.read_exact(text.data(), text.size(), "the header");
  const NpyHeader h = HeaderParser(text, src, header_at).parse();

  const DType dtype = options.dtype.value_or(natural_dtype(h.type));
  if (!converts_to(h.type, dtype)) {
    fail_at(src.where(), header_at,
            std::string("the array holds ") + element_name(h.type) + ", which cannot be read as " +
                dtype_name(dtype));
  }
  const auto data_bytes = checked_mul(h.numel, element_bytes(h.type));
  if (!data_bytes || *data_bytes > src.max_remaining()) {
    src.fail("truncated: the header's shape " + h.shape.str() + " and dtype " +
             element_name(h.type) + " need " + std::to_string(h.numel) + " elements of " +
             std::to_string(element_bytes(h.type)) + " bytes, more than follow");
  }
  Tensor out;
  try {
    out = empty(h.fortran_order ? reversed(h.shape) : h.shape, TensorOptions{}.with_dtype(dtype));
  } catch (const std::bad_alloc&) {
    src.fail("cannot allocate " + std::to_string(*data_bytes) + " bytes for the array");
  }
  read_elements(src, h.type, h.big_endian, out);
  src.expect_end("the array's data");
  return h.fortran_order ? out.permute(reversed_dims(out.dim())).contiguous() : out;
}

std::string npy_header(const Tensor& tensor, bool fortran_order) {
  std::string dict = std::string("{'descr': '") + descr_of(tensor.dtype()) +
                     "', 'fortran_order': " + (fortran_order ? "True" : "False") + ", 'shape': (";
  for (int d = 0; d < tensor.dim(); ++d) {
    dict += std::to_string(tensor.shape()[d]) + (tensor.dim() == 1 ? "," : "");
    if (d + 1 < tensor.dim()) dict += ", ";
  }
  dict += "), }";
  // Padded with spaces and ended by a newline so that the data starts 64-byte aligned; a
  // header too long for version 1.0's 2-byte length needs version 2.0.
  auto padded_length = [&](std::size_t preamble) {
    return (preamble + dict.size() + 1 + 63) / 64 * 64 - preamble;
  };
  const bool long_header = padded_length(kMagicBytes + 4) > 65535;
  const std::size_t length = padded_length(kMagicBytes + (long_header ? 6 : 4));
  dict.append(length - dict.size() - 1, ' ');
  dict.push_back('\n');
  std::vector<unsigned char> head(kMagic, kMagic + kMagicBytes);
  head.push_back(long_header ? 2 : 1);
  head.push_back(0);
  if (long_header) {
    put_le<4>(head, dict.size());
  } else {
    put_le<2>(head, dict.size());
  }
  return std::string(head.begin(), head.end()) + dict;
}

Tensor npy_payload(const Tensor& tensor, bool fortran_order) {
  const Tensor host = tensor.detach().to(Device::cpu());
  return (fortran_order ? host.permute(reversed_dims(host.dim())) : host).contiguous();
}

}  // namespace detail

Tensor read_npy(const std::string& path, const NpyReadOptions& options) {
  const detail::File file(path, "NPY file");
  if (file.size() == 0) detail::fail_at(file.where(), 0, "the file is empty");
  detail::FileRangeSource src(file, 0, file.size());
  return detail::read_npy_from(src, options);
}

void write_npy(const std::string& path, const Tensor& tensor, const NpyWriteOptions& options) {
  const std::string header = detail::npy_header(tensor, options.fortran_order);
  const Tensor payload = detail::npy_payload(tensor, options.fortran_order);
  detail::AtomicFileWriter out(path, "NPY file '" + path + "'");
  out.write(header.data(), header.size());
  out.write(payload.data_ptr(),
            static_cast<std::size_t>(payload.numel()) * element_size(payload.dtype()));
  out.commit();
}

}  // namespace ember::data
