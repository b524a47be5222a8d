// Reading comma-separated values (RFC 4180) into named column tensors or one 2-d tensor.
// Every fault of the file is an IoError naming the file and the line.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ember/tensor.hpp"

namespace ember::data {

// What a field that is empty (nothing between the delimiters, or "") means.
enum class MissingValues : std::uint8_t {
  Error,  // an IoError naming the line and the column
  NaN,    // NaN (a floating column: an inferred column holding one is float64)
};

struct CsvOptions {
  char delimiter = ',';
  // The first row names the columns; without it they are named "0", "1", ...
  bool header = true;
  // Every column's dtype (float64, float32 or int64); unset: inferred per column, int64 when
  // every value is an integer that fits, else float64.
  std::optional<DType> dtype;
  // Per-column dtypes by name, over `dtype`; a name the file lacks is an IoError.
  std::map<std::string, DType> column_dtypes;
  MissingValues missing = MissingValues::Error;
  // A line that starts with this character is skipped ('\0': none); only at the start of a
  // line, never inside a quoted field.
  char comment = '#';
  // The most columns a file may have: each column is a tensor of its own, several hundred
  // bytes before its first value, so a file of a few bytes per column is refused (an IoError)
  // rather than read into memory hundreds of times its size.
  std::int64_t max_columns = 65536;
};

// The columns of a CSV file, in the file's order: each a 1-d CPU tensor of rows() values.
class CsvTable {
 public:
  CsvTable(std::vector<std::string> names, std::vector<Tensor> columns);

  const std::vector<std::string>& names() const { return names_; }
  const std::vector<Tensor>& columns() const { return columns_; }
  std::int64_t rows() const;
  std::int64_t cols() const { return static_cast<std::int64_t>(columns_.size()); }
  // The column of that name; a ValueError lists the names when there is none.
  const Tensor& operator[](const std::string& name) const;
  // All columns side by side as a (rows, cols) tensor of `dtype` (default: the widest of the
  // columns' dtypes).
  Tensor to_tensor(std::optional<DType> dtype = std::nullopt) const;

 private:
  std::vector<std::string> names_;
  std::vector<Tensor> columns_;
};

// Reads a whole CSV file: fields separated by `delimiter`, rows by LF or CRLF; a field in
// double quotes may hold delimiters, line breaks and doubled quotes (""); spaces and tabs
// around an unquoted number are ignored; blank lines and comment lines are skipped; a UTF-8
// byte-order mark is skipped. Every row must have the header's number of fields. Numbers are
// decimal with an optional sign and exponent ("-1.5e-3"), or inf and nan, whatever the
// locale.
CsvTable read_csv(const std::string& path, const CsvOptions& options = {});

}  // namespace ember::data
