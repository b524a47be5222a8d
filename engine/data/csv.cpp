// The CSV reader: a tokenizer for RFC 4180 records (quoted fields may span lines), then one
// typed tensor per column.
#include "ember/data/csv.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <limits>
#include <new>
#include <set>
#include <string_view>

#include "ember/error.hpp"
#include "ember/ops.hpp"
#include "engine/data/byte_source.hpp"

namespace ember::data {
namespace {

[[noreturn]] void fail_line(const std::string& where, std::int64_t line, const std::string& what) {
  throw IoError(where + ", line " + std::to_string(line) + ": " + detail::printable(what));
}

struct Field {
  std::string_view text;
  bool quoted = false;
};

// Splits the text into records of fields, skipping blank and comment lines and tracking the
// line each record starts on.
class Tokenizer {
 public:
  Tokenizer(std::string_view text, const CsvOptions& options, const std::string& where)
      : s_(text), options_(options), where_(where) {}

  // The next record's fields; false at the end of the text.
  bool next(std::vector<Field>* fields, std::int64_t* line) {
    skip_blank_and_comment_lines();
    if (pos_ >= s_.size()) return false;
    *line = line_;
    fields->clear();
    while (true) {
      fields->push_back(s_[pos_] == '"' ? quoted() : unquoted());
      if (pos_ >= s_.size()) return true;
      if (s_[pos_] == options_.delimiter) {
        ++pos_;
        if (pos_ >= s_.size()) {  // a delimiter last in the file ends with an empty field
          fields->push_back({});
          return true;
        }
        continue;
      }
      end_line();
      return true;
    }
  }

 private:
  bool at_line_end(std::size_t p) const {
    return p >= s_.size() || s_[p] == '\n' ||
           (s_[p] == '\r' && p + 1 < s_.size() && s_[p + 1] == '\n');
  }
  void end_line() {
    pos_ += s_[pos_] == '\r' ? 2 : 1;
    ++line_;
  }
  void skip_blank_and_comment_lines() {
    while (pos_ < s_.size()) {
      std::size_t p = pos_;
      const bool comment = options_.comment != '\0' && s_[p] == options_.comment;
      if (comment) {
        while (p < s_.size() && s_[p] != '\n') ++p;
      } else {
        while (p < s_.size() && (s_[p] == ' ' || s_[p] == '\t')) ++p;
        if (!at_line_end(p)) return;
      }
      pos_ = p;
      if (pos_ < s_.size()) end_line();
    }
  }
  Field unquoted() {
    const std::size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] != options_.delimiter && !at_line_end(pos_)) {
      if (s_[pos_] == '"') {
        fail_line(where_, line_, "a quote inside an unquoted field (quote the whole field)");
      }
      if (s_[pos_] == '\r') {
        fail_line(where_, line_,
                  "a carriage return not followed by a line feed (rows end with LF or CRLF; "
                  "a file with CR line endings must be converted first)");
      }
      ++pos_;
    }
    return {s_.substr(start, pos_ - start), false};
  }
  Field quoted() {
    const std::int64_t opened = line_;
    const std::size_t start = ++pos_;
    bool doubled_quotes = false;
    while (true) {
      const std::size_t q = s_.find('"', pos_);
      if (q == std::string_view::npos) {
        fail_line(where_, opened, "a quoted field opened here is not closed");
      }
      for (std::size_t p = pos_; p < q; ++p) line_ += s_[p] == '\n' ? 1 : 0;
      if (q + 1 < s_.size() && s_[q + 1] == '"') {  // "" stands for one quote
        doubled_quotes = true;
        pos_ = q + 2;
        continue;
      }
      pos_ = q + 1;
      if (pos_ < s_.size() && s_[pos_] != options_.delimiter && !at_line_end(pos_)) {
        fail_line(where_, line_, "text after the closing quote of a quoted field");
      }
      std::string_view text = s_.substr(start, q - start);
      if (doubled_quotes) {
        std::string& unescaped = unescaped_.emplace_back();
        for (std::size_t p = 0; p < text.size(); ++p) {
          unescaped.push_back(text[p]);
          if (text[p] == '"') ++p;
        }
        text = unescaped;
      }
      return {text, true};
    }
  }

  std::string_view s_;
  const CsvOptions& options_;
  const std::string& where_;
  std::size_t pos_ = 0;
  std::int64_t line_ = 1;
  std::deque<std::string> unescaped_;  // stable homes of the fields that held ""
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The whole of `s` as a T, or nothing. A leading '+' is accepted, as strtod accepts it. A
// float too small for T rounds to zero, as strtod rounds it; `too_large` is set for a
// number too large for T.
template <typename T>
std::optional<T> parse_number(std::string_view s, bool* too_large = nullptr) {
  if (s.size() > 1 && s[0] == '+' && s[1] != '-' && s[1] != '+') s.remove_prefix(1);
  T value{};
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (end != s.data() + s.size()) return std::nullopt;
  if (ec == std::errc::result_out_of_range && std::is_floating_point_v<T>) {
    // from_chars leaves the value unset: the text's magnitude tells underflow from overflow.
    const std::string text(s);
    errno = 0;
    const long double v = std::strtold(text.c_str(), nullptr);
    if (std::fabs(v) < 1) return std::signbit(v) ? -T(0) : T(0);
    if (too_large != nullptr) *too_large = true;
    return std::nullopt;
  }
  if (ec != std::errc()) return std::nullopt;
  return value;
}

// A column of the table's fields (held row by row), the line of each row, and how to read
// them.
struct Column {
  const std::string& name;
  const std::vector<Field>& cells;
  std::size_t stride, index;  // field (row, index) is cells[row * stride + index]
  const std::vector<std::int64_t>& lines;
  const std::string& where;
  const CsvOptions& options;

  std::size_t rows() const { return lines.size(); }
  const Field& field(std::size_t row) const { return cells[row * stride + index]; }

  [[noreturn]] void fail(std::size_t row, const std::string& what) const {
    fail_line(where, lines[row], "column '" + name + "': " + what);
  }
  static std::string not_a(std::string_view text, bool too_large, const char* dtype) {
    return "'" + std::string(text) + "' is " +
           (too_large ? std::string("a number too large for ") + dtype : "not a number");
  }
  // Checks the missing fields; true when one is missing (and becomes NaN).
  bool missing(std::size_t row) const {
    if (!trim(field(row).text).empty()) return false;
    if (options.missing == MissingValues::Error) fail(row, "missing value");
    return true;
  }

  DType infer() const {
    bool floating = false;
    for (std::size_t row = 0; row < rows(); ++row) {
      if (missing(row)) {
        floating = true;
        continue;
      }
      const std::string_view text = trim(field(row).text);
      if (parse_number<std::int64_t>(text)) continue;
      bool too_large = false;
      if (!parse_number<double>(text, &too_large)) fail(row, not_a(text, too_large, "float64"));
      floating = true;
    }
    return floating || rows() == 0 ? kFloat64 : kInt64;
  }

  template <typename T>
  Tensor convert(DType dtype) const {
    Tensor out = empty({static_cast<std::int64_t>(rows())}, TensorOptions{}.with_dtype(dtype));
    T* values = out.data<T>();
    for (std::size_t row = 0; row < rows(); ++row) {
      if (missing(row)) {
        if constexpr (std::is_integral_v<T>) {
          fail(row, "missing value in an int64 column (read it as a float to get NaN)");
        } else {
          values[row] = std::numeric_limits<T>::quiet_NaN();
        }
        continue;
      }
      const std::string_view text = trim(field(row).text);
      bool too_large = false;
      const std::optional<T> v = parse_number<T>(text, &too_large);
      if (!v) {
        if constexpr (std::is_integral_v<T>) {
          fail(row, "'" + std::string(text) + "' is not an integer that fits int64");
        } else {
          fail(row, not_a(text, too_large, std::is_same_v<T, float> ? "float32" : "float64"));
        }
      }
      values[row] = *v;
    }
    return out;
  }

  Tensor read(std::optional<DType> requested) const {
    const DType dtype = requested.value_or(infer());
    switch (dtype) {
      case DType::Int64:
        return convert<std::int64_t>(dtype);
      case DType::Float32:
        return convert<float>(dtype);
      case DType::Float64:
        return convert<double>(dtype);
      case DType::Bool:
        break;
    }
    EMBER_CHECK_DTYPE(false, "read_csv: column '", name,
                      "': dtype bool is not supported (float64, float32 or int64)");
    return {};
  }
};

std::string read_whole_file(const detail::File& file) {
  std::string text;
  try {
    text.resize(static_cast<std::size_t>(file.size()));
  } catch (const std::bad_alloc&) {
    throw IoError(file.where() + ": cannot allocate " + std::to_string(file.size()) + " bytes");
  }
  file.read_exact_at(0, text.data(), text.size(), "the file");
  return text;
}

}  // namespace

CsvTable::CsvTable(std::vector<std::string> names, std::vector<Tensor> columns)
    : names_(std::move(names)), columns_(std::move(columns)) {
  EMBER_CHECK(names_.size() == columns_.size(), "CsvTable: ", names_.size(), " names for ",
              columns_.size(), " columns");
  for (std::size_t c = 0; c < columns_.size(); ++c) {
    EMBER_CHECK_SHAPE(columns_[c].dim() == 1 && columns_[c].size(0) == columns_[0].size(0),
                      "CsvTable: column '", names_[c], "' has shape ", columns_[c].shape(),
                      ", expected (", columns_[0].size(0), ")");
  }
}

std::int64_t CsvTable::rows() const { return columns_.empty() ? 0 : columns_[0].size(0); }

const Tensor& CsvTable::operator[](const std::string& name) const {
  for (std::size_t c = 0; c < names_.size(); ++c) {
    if (names_[c] == name) return columns_[c];
  }
  std::string known;
  for (const std::string& n : names_) known += (known.empty() ? "'" : ", '") + n + "'";
  EMBER_CHECK(false, "CsvTable: no column '", name, "' (the columns are ", known, ")");
  return columns_.front();
}

Tensor CsvTable::to_tensor(std::optional<DType> dtype) const {
  EMBER_CHECK(!columns_.empty(), "CsvTable::to_tensor: the table has no columns");
  DType widest = columns_[0].dtype();
  for (const Tensor& c : columns_) widest = promote(widest, c.dtype());
  std::vector<Tensor> converted;
  for (const Tensor& c : columns_) converted.push_back(c.to(dtype.value_or(widest)));
  return stack(converted, 1);
}

namespace {

// A delimiter or comment character the tokenizer cannot tell from the text around it.
void check_options(const std::string& path, const CsvOptions& options) {
  const auto shown = [](char c) {
    return c == '\0'   ? std::string("'\\0'")
           : c == '\n' ? std::string("'\\n'")
           : c == '\r' ? std::string("'\\r'")
                       : "'" + std::string(1, c) + "'";
  };
  const char d = options.delimiter;
  EMBER_CHECK(d != '\0' && d != '\n' && d != '\r' && d != '"', "read_csv('", path,
              "'): the delimiter ", shown(d),
              " cannot separate fields (it is a line end, the quote or NUL)");
  EMBER_CHECK(options.comment != d && options.comment != '"' && options.comment != '\n' &&
                  options.comment != '\r',
              "read_csv('", path, "'): the comment character ", shown(options.comment),
              " cannot start a comment (it is the delimiter, the quote or a line end)");
  EMBER_CHECK(options.max_columns > 0, "read_csv('", path, "'): max_columns must be positive, got ",
              options.max_columns);
}

}  // namespace

namespace {

CsvTable read_csv_file(const detail::File& file, const CsvOptions& options) {
  const std::string& where = file.where();
  std::string text = read_whole_file(file);
  std::string_view body = text;
  if (body.starts_with("\xEF\xBB\xBF")) body.remove_prefix(3);  // a UTF-8 byte-order mark
  Tokenizer tokens(body, options, where);

  std::vector<Field> record;
  std::int64_t line = 1;
  std::vector<std::string> names;
  if (!tokens.next(&record, &line)) {
    fail_line(where, 1, options.header ? "the file is empty: no header row" : "the file is empty");
  }
  if (static_cast<std::int64_t>(record.size()) > options.max_columns) {
    fail_line(where, line,
              "the row has " + std::to_string(record.size()) + " fields, more than max_columns (" +
                  std::to_string(options.max_columns) + ": each column is a tensor of its own)");
  }
  std::vector<Field> cells;  // row by row
  std::vector<std::int64_t> lines;
  if (options.header) {
    std::set<std::string_view> seen;
    for (const Field& f : record) {
      if (!seen.insert(f.text).second) {
        fail_line(where, line, "the column name '" + std::string(f.text) + "' appears twice");
      }
      names.emplace_back(f.text);
    }
  } else {
    for (std::size_t c = 0; c < record.size(); ++c) names.push_back(std::to_string(c));
  }
  for (const auto& [name, dtype] : options.column_dtypes) {
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      fail_line(where, line, "no column '" + name + "' (named in column_dtypes)");
    }
  }
  // Without a header the first record is already data.
  bool have_record = !options.header;
  const std::string header_said = options.header ? "the header has " : "the first row has ";
  while (have_record || tokens.next(&record, &line)) {
    have_record = false;
    if (record.size() != names.size()) {
      fail_line(where, line,
                "the row has " + std::to_string(record.size()) + " fields, " + header_said +
                    std::to_string(names.size()));
    }
    cells.insert(cells.end(), record.begin(), record.end());
    lines.push_back(line);
  }

  std::vector<Tensor> columns;
  for (std::size_t c = 0; c < names.size(); ++c) {
    const auto named = options.column_dtypes.find(names[c]);
    const std::optional<DType> dtype =
        named != options.column_dtypes.end() ? std::optional(named->second) : options.dtype;
    columns.push_back(Column{names[c], cells, names.size(), c, lines, where, options}.read(dtype));
  }
  return CsvTable(std::move(names), std::move(columns));
}

}  // namespace

CsvTable read_csv(const std::string& path, const CsvOptions& options) {
  check_options(path, options);
  const detail::File file(path, "CSV file");
  const std::string& where = file.where();
  try {
    return read_csv_file(file, options);
  } catch (const std::bad_alloc&) {
    throw IoError(where + ": out of memory while reading the table (" +
                  std::to_string(file.size()) + " bytes)");
  }
}

}  // namespace ember::data
