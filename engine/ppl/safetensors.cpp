// The safetensors reader and writer. The reader is at least as strict as the format's
// reference implementation: any malformed file is an IoError naming the file and the fault.
#include "engine/ppl/safetensors.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ember/error.hpp"
#include "engine/data/byte_source.hpp"

namespace ember::detail {
namespace {

[[noreturn]] void io_fail(const std::string& path, const std::string& what) {
  throw IoError("safetensors file '" + path + "': " + data::detail::printable(what));
}

// The header is parsed by nlohmann::json, strictly: RFC 8259 syntax and valid UTF-8, plus
// what the format's reference implementation requires and JSON alone does not: no key twice
// in one object, and a bounded nesting depth.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;  // as the reference implementation
constexpr int kMaxDepth = 8;

nlohmann::json parse_header(const std::string& text, const std::string& path) {
  std::vector<std::set<std::string>> keys;  // the keys seen in each open object
  std::string fault;
  const nlohmann::json::parser_callback_t check =
      [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        using Event = nlohmann::json::parse_event_t;
        if (depth > kMaxDepth && fault.empty())
          fault = "nesting deeper than " + std::to_string(kMaxDepth);
        if (event == Event::object_start) keys.emplace_back();
        if (event == Event::object_end && !keys.empty()) keys.pop_back();
        if (event == Event::key && !keys.empty() &&
            !keys.back().insert(parsed.get<std::string>()).second && fault.empty()) {
          fault = "the key '" + parsed.get<std::string>() + "' appears twice in one object";
        }
        return true;
      };
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text, check);
  } catch (const nlohmann::json::exception& e) {
    io_fail(path, std::string("malformed header: ") + e.what());
  }
  if (!fault.empty()) io_fail(path, "malformed header: " + fault);
  return header;
}

// a * b, failing when it overflows 64 bits.
std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b, const std::string& path,
                          const std::string& what) {
  std::uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) io_fail(path, what + " overflows 64 bits");
  return r;
}

void json_string(std::ostringstream& os, const std::string& s) {
  os << '"';
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      os << '\\' << c;
    } else if (u < 0x20) {
      static const char* hex = "0123456789abcdef";
      os << "\\u00" << hex[u >> 4] << hex[u & 15];
    } else {
      os << c;
    }
  }
  os << '"';
}

// The offset of the first byte of `s` that is not well-formed UTF-8 (RFC 3629: no overlong
// forms, no surrogates, nothing past U+10FFFF), or npos. A header must be UTF-8 throughout,
// as the reader and Python's safetensors require.
std::size_t first_non_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int more = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the range of the byte after the first
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      more = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      more = 2;
      if (c == 0xE0) lo = 0xA0;  // overlong below U+0800
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      more = 3;
      if (c == 0xF0) lo = 0x90;  // overlong below U+10000
      if (c == 0xF4) hi = 0x8F;  // past U+10FFFF
    } else {
      return i;
    }
    if (i + more >= s.size()) return i;
    for (int k = 1; k <= more; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return i;
    }
    i += more + 1;
  }
  return std::string_view::npos;
}

// A name or metadata text that the header cannot hold: a ValueError naming the file and the
// byte at fault.
void check_header_text(const std::string& path, const char* what, const std::string& text) {
  const std::size_t bad = first_non_utf8(text);
  if (bad == std::string_view::npos) return;
  throw ValueError("safetensors file '" + path + "': the " + what + " '" +
                   data::detail::printable(text, true) + "' is not valid UTF-8 (byte " +
                   std::to_string(bad) + "), which the format's header requires");
}

// Safetensors' codes of the dtypes Ember stores.
constexpr std::pair<DType, std::string_view> kDtypeCodes[] = {
    {DType::Float32, "F32"}, {DType::Float64, "F64"}, {DType::Int64, "I64"}, {DType::Bool, "BOOL"}};

const char* dtype_code(DType d) {
  for (const auto& [dtype, code] : kDtypeCodes)
    if (dtype == d) return code.data();
  return "?";
}

bool dtype_from_code(const std::string& code, DType* out) {
  for (const auto& [dtype, c] : kDtypeCodes) {
    if (c == code) {
      *out = dtype;
      return true;
    }
  }
  return false;
}

}  // namespace

void write_safetensors(const std::string& path, const SafetensorsFile& file) {
  static_assert(std::endian::native == std::endian::little, "safetensors is little-endian");
  // Names first, then metadata (which a param store derives from the names).
  for (const auto& [name, t] : file.tensors) {
    EMBER_CHECK_T(ValueError, name != "__metadata__", "safetensors file '", path,
                  "': a tensor cannot be named __metadata__ (the format reserves it)");
    check_header_text(path, "tensor name", name);
  }
  for (const auto& [key, value] : file.metadata) {
    check_header_text(path, "metadata key", key);
    check_header_text(path, "metadata value", value);
  }
  std::vector<Tensor> host;
  std::ostringstream header;
  header << '{';
  bool first = true;
  if (!file.metadata.empty()) {
    header << "\"__metadata__\":{";
    for (auto it = file.metadata.begin(); it != file.metadata.end(); ++it) {
      if (it != file.metadata.begin()) header << ',';
      json_string(header, it->first);
      header << ':';
      json_string(header, it->second);
    }
    header << '}';
    first = false;
  }
  std::uint64_t offset = 0;
  for (const auto& [name, t] : file.tensors) {
    Tensor h = t.detach().to(Device::cpu()).contiguous();
    const std::uint64_t nbytes = static_cast<std::uint64_t>(h.numel()) * element_size(h.dtype());
    if (!first) header << ',';
    first = false;
    json_string(header, name);
    header << ":{\"dtype\":\"" << dtype_code(h.dtype()) << "\",\"shape\":[";
    for (int d = 0; d < h.dim(); ++d) header << (d ? "," : "") << h.shape()[d];
    header << "],\"data_offsets\":[" << offset << ',' << offset + nbytes << "]}";
    offset += nbytes;
    host.push_back(h);
  }
  header << '}';
  std::string text = header.str();
  while ((text.size() + 8) % 8 != 0) text.push_back(' ');  // the data starts 8-aligned

  const std::filesystem::path target(path);
  std::random_device rd;
  const std::filesystem::path tmp =
      target.parent_path() / (target.filename().string() + ".tmp-" + std::to_string(rd()));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    io_fail(path, std::string("cannot create ") + tmp.string() + ": " + std::strerror(errno));
  auto write_all = [&](const void* data, std::size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      const ssize_t w = ::write(fd, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        const std::string err = std::strerror(errno);
        ::close(fd);
        std::filesystem::remove(tmp);
        io_fail(path, "write failed: " + err);
      }
      p += w;
      n -= static_cast<std::size_t>(w);
    }
  };
  const std::uint64_t header_len = text.size();
  write_all(&header_len, 8);
  write_all(text.data(), text.size());
  for (const Tensor& h : host) {
    write_all(h.data_ptr(), static_cast<std::size_t>(h.numel()) * element_size(h.dtype()));
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    std::filesystem::remove(tmp);
    io_fail(path, std::string("sync failed: ") + std::strerror(errno));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, target, ec);
  if (ec) {
    std::filesystem::remove(tmp);
    io_fail(path, "cannot rename the written file into place: " + ec.message());
  }
}

SafetensorsFile read_safetensors(const std::string& path) {
  // Read at offsets: the header first, then each tensor's bytes straight into the tensor, once
  // the header's claims have been checked against the file's size (a FIFO, a device or a
  // directory is refused before anything is read).
  const data::detail::File in(path, "safetensors file");
  const std::uint64_t size = in.size();
  if (size < 8) {
    io_fail(path,
            "truncated: " + std::to_string(size) + " bytes, less than the 8-byte header length");
  }
  std::uint64_t header_len = 0;
  in.read_exact_at(0, &header_len, 8, "the header length");
  if (header_len > kMaxHeaderBytes) {
    io_fail(path, "the header claims " + std::to_string(header_len) + " bytes, more than the " +
                      std::to_string(kMaxHeaderBytes) + " the format allows");
  }
  if (header_len > size - 8) {
    io_fail(path, "truncated: the header claims " + std::to_string(header_len) +
                      " bytes but the file has " + std::to_string(size - 8) + " after the length");
  }
  std::string text(header_len, '\0');
  in.read_exact_at(8, text.data(), text.size(), "the header");
  if (text.empty() || text[0] != '{') io_fail(path, "malformed header: it does not start with '{'");
  const nlohmann::json header = parse_header(text, path);
  if (!header.is_object()) io_fail(path, "the header is not a JSON object");
  const std::uint64_t data_begin = 8 + header_len;
  const std::uint64_t data_size = size - data_begin;

  // Everything is checked before any tensor is made: a bad file leaves nothing half-read.
  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    std::uint64_t begin, end;
  };
  std::vector<Entry> entries;
  SafetensorsFile out;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) io_fail(path, "__metadata__ is not an object");
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) io_fail(path, "metadata value '" + k + "' is not a string");
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "': ";
    if (!entry.is_object()) io_fail(path, where + "entry is not an object");
    for (const auto& [k, v] : entry.items()) {
      if (k != "dtype" && k != "shape" && k != "data_offsets") {
        io_fail(path, where + "unknown field '" + k + "'");
      }
    }
    const auto dtype = entry.find("dtype");
    if (dtype == entry.end() || !dtype->is_string()) io_fail(path, where + "no dtype");
    Entry e{name, DType::Float32, {}, 0, 0};
    if (!dtype_from_code(dtype->get<std::string>(), &e.dtype)) {
      io_fail(path, where + "dtype " + dtype->get<std::string>() +
                        " is not supported (F32, F64, I64, BOOL)");
    }
    const auto shape = entry.find("shape");
    if (shape == entry.end() || !shape->is_array()) io_fail(path, where + "no shape");
    if (shape->size() > static_cast<std::size_t>(kMaxRank)) {
      io_fail(path, where + "rank " + std::to_string(shape->size()) + " exceeds the maximum " +
                        std::to_string(kMaxRank));
    }
    std::uint64_t numel = 1;
    std::uint64_t extent = 1;  // the product of the nonzero dims
    for (const auto& d : *shape) {
      if (!d.is_number_unsigned())
        io_fail(path, where + "a shape entry is not a nonnegative integer");
      const auto n = d.get<std::uint64_t>();
      if (n > static_cast<std::uint64_t>(INT64_MAX)) io_fail(path, where + "a dim exceeds int64");
      e.shape.push_back(static_cast<std::int64_t>(n));
      numel = checked_mul(numel, n, path, where + "the number of elements");
      // Bounded even when another dim is zero: a tensor's strides multiply the nonzero dims.
      extent = checked_mul(extent, std::max<std::uint64_t>(n, 1), path, where + "the shape");
      if (extent > static_cast<std::uint64_t>(INT64_MAX)) {
        io_fail(path, where + "the shape's nonzero dims hold more elements than int64 counts");
      }
    }
    const std::uint64_t nbytes =
        checked_mul(numel, element_size(e.dtype), path, where + "the size");
    const auto offsets = entry.find("data_offsets");
    if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 ||
        !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
      io_fail(path, where + "no data_offsets [begin, end] of nonnegative integers");
    }
    e.begin = (*offsets)[0].get<std::uint64_t>();
    e.end = (*offsets)[1].get<std::uint64_t>();
    if (e.begin > e.end || e.end > data_size) {
      io_fail(path, where + "data_offsets [" + std::to_string(e.begin) + ", " +
                        std::to_string(e.end) + "] lie outside the " + std::to_string(data_size) +
                        " data bytes (truncated file?)");
    }
    if (e.end - e.begin != nbytes) {
      io_fail(path, where + "data_offsets span " + std::to_string(e.end - e.begin) +
                        " bytes but shape and dtype need " + std::to_string(nbytes));
    }
    entries.push_back(std::move(e));
  }
  // The tensors' bytes, in offset order, must tile the data section exactly: no gap, no
  // overlap, nothing left over.
  std::vector<const Entry*> by_offset;
  for (const Entry& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  std::uint64_t expected = 0;
  for (const Entry* e : by_offset) {
    if (e->begin != expected) {
      io_fail(path, "tensor '" + e->name + "' starts at data byte " + std::to_string(e->begin) +
                        " where " + std::to_string(expected) +
                        " was expected (tensors must cover the data section in order, without gaps "
                        "or overlap)");
    }
    expected = e->end;
  }
  if (expected != data_size) {
    io_fail(path, "the tensors cover " + std::to_string(expected) + " of the " +
                      std::to_string(data_size) + " data bytes");
  }
  for (const Entry& e : entries) {
    Tensor t = empty(e.shape, TensorOptions{}.with_dtype(e.dtype));
    if (e.end > e.begin) {
      in.read_exact_at(data_begin + e.begin, t.data_ptr(), e.end - e.begin,
                       "tensor '" + e.name + "'");
    }
    if (e.dtype == DType::Bool) {
      // Ember's bools are 0 or 1; any other byte would make comparisons lie.
      const auto* b = static_cast<const std::uint8_t*>(t.data_ptr());
      for (std::int64_t i = 0; i < t.numel(); ++i) {
        if (b[i] > 1) io_fail(path, "tensor '" + e.name + "': a BOOL byte is neither 0 nor 1");
      }
    }
    out.tensors.emplace(e.name, std::move(t));
  }
  return out;
}

}  // namespace ember::detail
