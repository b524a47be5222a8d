// The safetensors reader and writer, with the small JSON subset its header uses.
#include "engine/ppl/safetensors.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <variant>
#include <vector>

#include "ember/error.hpp"

namespace ember::detail {
namespace {

[[noreturn]] void io_fail(const std::string& path, const std::string& what) {
  throw IoError("safetensors file '" + path + "': " + what);
}

// ---- JSON: objects, arrays, strings, integers (all the header needs) ----
struct Json;
using JsonObject = std::vector<std::pair<std::string, Json>>;
using JsonArray = std::vector<Json>;
struct Json {
  std::variant<std::string, std::int64_t, JsonArray, JsonObject> v;
  const std::string* str() const { return std::get_if<std::string>(&v); }
  const std::int64_t* num() const { return std::get_if<std::int64_t>(&v); }
  const JsonArray* arr() const { return std::get_if<JsonArray>(&v); }
  const JsonObject* obj() const { return std::get_if<JsonObject>(&v); }
};

class JsonParser {
 public:
  JsonParser(const std::string& text, const std::string& path) : s_(text), path_(path) {}

  Json parse_document() {
    Json j = value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected text after the header object");
    return j;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    io_fail(path_, "malformed header at byte " + std::to_string(pos_) + ": " + what);
  }
  void skip_ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t')) {
      ++pos_;
    }
  }
  char peek() {
    skip_ws();
    if (pos_ >= s_.size()) fail("unexpected end of the header");
    return s_[pos_];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  Json value(int depth) {
    if (depth > 16) fail("nesting too deep");
    const char c = peek();
    if (c == '{') return Json{object(depth)};
    if (c == '[') return Json{array(depth)};
    if (c == '"') return Json{string()};
    if (c == '-' || (c >= '0' && c <= '9')) return Json{integer()};
    fail(std::string("unexpected character '") + c + "'");
  }
  JsonObject object(int depth) {
    expect('{');
    JsonObject out;
    if (peek() == '}') {
      ++pos_;
      return out;
    }
    while (true) {
      if (peek() != '"') fail("expected a key");
      std::string key = string();
      expect(':');
      out.emplace_back(std::move(key), value(depth + 1));
      const char c = peek();
      ++pos_;
      if (c == '}') return out;
      if (c != ',') fail("expected ',' or '}'");
    }
  }
  JsonArray array(int depth) {
    expect('[');
    JsonArray out;
    if (peek() == ']') {
      ++pos_;
      return out;
    }
    while (true) {
      out.push_back(value(depth + 1));
      const char c = peek();
      ++pos_;
      if (c == ']') return out;
      if (c != ',') fail("expected ',' or ']'");
    }
  }
  std::string string() {
    expect('"');
    std::string out;
    while (true) {
      if (pos_ >= s_.size()) fail("unterminated string");
      const char c = s_[pos_++];
      if (c == '"') return out;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= s_.size()) fail("unterminated escape");
      const char e = s_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out.push_back(e);
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'u': {
          if (pos_ + 4 > s_.size()) fail("short \\u escape");
          const unsigned long cp = std::stoul(s_.substr(pos_, 4), nullptr, 16);
          pos_ += 4;
          // UTF-8 for the basic plane (surrogate pairs are not used in tensor names).
          if (cp < 0x80) {
            out.push_back(static_cast<char>(cp));
          } else if (cp < 0x800) {
            out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
          } else {
            out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
          }
          break;
        }
        default:
          fail(std::string("unknown escape '\\") + e + "'");
      }
    }
  }
  std::int64_t integer() {
    const std::size_t start = pos_;
    if (s_[pos_] == '-') ++pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    if (pos_ < s_.size() && (s_[pos_] == '.' || s_[pos_] == 'e' || s_[pos_] == 'E')) {
      fail("only integers are expected in a safetensors header");
    }
    const std::string digits = s_.substr(start, pos_ - start);
    if (digits.empty() || digits == "-" || digits.size() > 19) fail("bad integer '" + digits + "'");
    return std::stoll(digits);
  }

  const std::string& s_;
  const std::string& path_;
  std::size_t pos_ = 0;
};

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

const char* dtype_code(DType d) {
  switch (d) {
    case DType::Float32:
      return "F32";
    case DType::Float64:
      return "F64";
    case DType::Int64:
      return "I64";
    case DType::Bool:
      return "BOOL";
  }
  return "?";
}

bool dtype_from_code(const std::string& code, DType* out) {
  if (code == "F32")
    *out = DType::Float32;
  else if (code == "F64")
    *out = DType::Float64;
  else if (code == "I64")
    *out = DType::Int64;
  else if (code == "BOOL")
    *out = DType::Bool;
  else
    return false;
  return true;
}

}  // namespace

void write_safetensors(const std::string& path, const SafetensorsFile& file) {
  static_assert(std::endian::native == std::endian::little, "safetensors is little-endian");
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
    EMBER_CHECK_T(IoError, name != "__metadata__", "safetensors: a tensor cannot be named ",
                  "__metadata__");
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
  std::ifstream in(path, std::ios::binary);
  if (!in) io_fail(path, std::string("cannot open: ") + std::strerror(errno));
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < 8) {
    io_fail(path, "truncated: " + std::to_string(bytes.size()) +
                      " bytes, less than the 8-byte header length");
  }
  std::uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  if (header_len > bytes.size() - 8) {
    io_fail(path, "truncated: the header claims " + std::to_string(header_len) +
                      " bytes but the file has " + std::to_string(bytes.size() - 8) +
                      " after the length");
  }
  const std::string text = bytes.substr(8, header_len);
  const Json root = JsonParser(text, path).parse_document();
  const JsonObject* top = root.obj();
  if (top == nullptr) io_fail(path, "the header is not a JSON object");
  const std::size_t data_begin = 8 + header_len;
  const std::uint64_t data_size = bytes.size() - data_begin;

  SafetensorsFile out;
  std::uint64_t covered = 0;
  for (const auto& [name, entry] : *top) {
    if (name == "__metadata__") {
      const JsonObject* meta = entry.obj();
      if (meta == nullptr) io_fail(path, "__metadata__ is not an object");
      for (const auto& [k, v] : *meta) {
        if (v.str() == nullptr) io_fail(path, "metadata value '" + k + "' is not a string");
        out.metadata[k] = *v.str();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "': ";
    const JsonObject* fields = entry.obj();
    if (fields == nullptr) io_fail(path, where + "entry is not an object");
    const Json *dtype = nullptr, *shape = nullptr, *offsets = nullptr;
    for (const auto& [k, v] : *fields) {
      if (k == "dtype")
        dtype = &v;
      else if (k == "shape")
        shape = &v;
      else if (k == "data_offsets")
        offsets = &v;
    }
    if (dtype == nullptr || dtype->str() == nullptr) io_fail(path, where + "no dtype");
    DType dt;
    if (!dtype_from_code(*dtype->str(), &dt)) {
      io_fail(path, where + "dtype " + *dtype->str() + " is not supported (F32, F64, I64, BOOL)");
    }
    if (shape == nullptr || shape->arr() == nullptr) io_fail(path, where + "no shape");
    Shape sh;
    std::uint64_t numel = 1;
    for (const Json& d : *shape->arr()) {
      if (d.num() == nullptr || *d.num() < 0) io_fail(path, where + "bad shape");
      sh.push_back(*d.num());
      numel *= static_cast<std::uint64_t>(*d.num());
    }
    if (offsets == nullptr || offsets->arr() == nullptr || offsets->arr()->size() != 2 ||
        (*offsets->arr())[0].num() == nullptr || (*offsets->arr())[1].num() == nullptr) {
      io_fail(path, where + "no data_offsets [begin, end]");
    }
    const auto begin = static_cast<std::uint64_t>(*(*offsets->arr())[0].num());
    const auto end = static_cast<std::uint64_t>(*(*offsets->arr())[1].num());
    if (begin > end || end > data_size) {
      io_fail(path, where + "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                        "] lie outside the " + std::to_string(data_size) +
                        " data bytes (truncated file?)");
    }
    if (end - begin != numel * element_size(dt)) {
      io_fail(path, where + "data_offsets span " + std::to_string(end - begin) +
                        " bytes but shape and dtype need " +
                        std::to_string(numel * element_size(dt)));
    }
    covered += end - begin;
    Tensor t = empty(sh, TensorOptions{}.with_dtype(dt));
    if (end > begin) std::memcpy(t.data_ptr(), bytes.data() + data_begin + begin, end - begin);
    if (!out.tensors.emplace(name, t).second) io_fail(path, "tensor '" + name + "' appears twice");
  }
  if (covered != data_size) {
    io_fail(path, "the tensors cover " + std::to_string(covered) + " of the " +
                      std::to_string(data_size) + " data bytes (corrupt or overlapping entries)");
  }
  return out;
}

}  // namespace ember::detail
