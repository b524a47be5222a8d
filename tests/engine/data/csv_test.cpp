// read_csv and CsvTable: typed and inferred columns, RFC 4180 quoting, comments and blank
// lines, missing values, and every fault named by file and line.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>

#include "engine/data/data_test_util.hpp"

namespace ember::test {
namespace {

using data::CsvOptions;
using data::MissingValues;
using data::read_csv;

TEST(Csv, ReadsTheShippedFaithfulData) {
  const data::CsvTable table = read_csv(data_dir() + "/faithful.csv");
  ASSERT_EQ(table.names(), (std::vector<std::string>{"eruptions", "waiting"}));
  EXPECT_EQ(table.rows(), 272);
  EXPECT_EQ(table["eruptions"].dtype(), kFloat64);
  EXPECT_EQ(table["waiting"].dtype(), kInt64);  // whole minutes
  // The provenance note's check values.
  EXPECT_NEAR(mean(table["eruptions"]).item(), 3.4878, 1e-4);
  EXPECT_NEAR(mean(table["waiting"].to(kFloat64)).item(), 70.897, 1e-3);
  const Tensor both = table.to_tensor();
  EXPECT_EQ(both.shape(), Shape({272, 2}));
  EXPECT_EQ(both.dtype(), kFloat64);
  EXPECT_EQ(both.to_vector<double>()[0], 3.6);
  EXPECT_EQ(both.to_vector<double>()[1], 79.0);
}

TEST(Csv, InfersColumnTypesAndHonoursRequestedOnes) {
  TempDir dir;
  const std::string path = dir.write("t.csv", "a,b,c\n1,2.5,-3\n4,1e3,+6\n");
  const data::CsvTable inferred = read_csv(path);
  EXPECT_EQ(inferred["a"].dtype(), kInt64);
  EXPECT_EQ(inferred["b"].dtype(), kFloat64);
  EXPECT_EQ(inferred["c"].to_vector<std::int64_t>(), (std::vector<std::int64_t>{-3, 6}));
  EXPECT_EQ(inferred["b"].to_vector<double>(), (std::vector<double>{2.5, 1000.0}));

  const data::CsvTable f32 = read_csv(path, {.dtype = kFloat32, .column_dtypes = {{"c", kInt64}}});
  EXPECT_EQ(f32["a"].dtype(), kFloat32);
  EXPECT_EQ(f32["b"].dtype(), kFloat32);
  EXPECT_EQ(f32["c"].dtype(), kInt64);
  EXPECT_EQ(f32.to_tensor(kFloat64).shape(), Shape({2, 3}));
  // float32 values are rounded once, from the text, not through a double.
  const std::string tricky = dir.write("f.csv", "x\n0.1\n16777217\n");
  EXPECT_EQ(read_csv(tricky, {.dtype = kFloat32})["x"].to_vector<float>(),
            (std::vector<float>{0.1f, 16777216.0f}));
}

TEST(Csv, QuotedFieldsFollowRfc4180) {
  TempDir dir;
  // Quoted names and numbers, a delimiter and a line break inside quotes, doubled quotes,
  // CRLF line ends and a byte-order mark.
  const std::string path =
      dir.write("q.csv", "\xEF\xBB\xBF\"the \"\"x\"\"\",\"y,\nz\"\r\n\"1\",2\r\n3,\"4\"\r\n");
  const data::CsvTable table = read_csv(path);
  EXPECT_EQ(table.names(), (std::vector<std::string>{"the \"x\"", "y,\nz"}));
  EXPECT_EQ(table["the \"x\""].to_vector<std::int64_t>(), (std::vector<std::int64_t>{1, 3}));
  EXPECT_EQ(table["y,\nz"].to_vector<std::int64_t>(), (std::vector<std::int64_t>{2, 4}));
}

TEST(Csv, SkipsCommentsAndBlankLinesAndCountsLinesAcrossThem) {
  TempDir dir;
  const std::string path = dir.write("c.csv", "# a comment\n\nx;y\n  \n1;2\n# 3;4\n5 ; 6\n\n");
  const data::CsvTable table = read_csv(path, {.delimiter = ';'});
  EXPECT_EQ(table.rows(), 2);
  EXPECT_EQ(table["y"].to_vector<std::int64_t>(), (std::vector<std::int64_t>{2, 6}));
  // With comments off, '#' is data: the header is "# a comment", and line 3 is ragged.
  expect_io_error([&] { read_csv(path, {.delimiter = ';', .comment = '\0'}); },
                  {"CSV file '" + path + "'", "line 3", "the row has 2 fields"});
}

TEST(Csv, WithoutHeaderColumnsAreNumbered) {
  TempDir dir;
  const data::CsvTable table = read_csv(dir.write("h.csv", "1,2\n3,4\n"), {.header = false});
  EXPECT_EQ(table.names(), (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(table.rows(), 2);
  EXPECT_EQ(table.to_tensor().to_vector<std::int64_t>(), (std::vector<std::int64_t>{1, 2, 3, 4}));
}

TEST(Csv, MissingValuesAreAnErrorOrNaNByOption) {
  TempDir dir;
  const std::string path = dir.write("m.csv", "a,b\n1,2\n3,\n,\"\"\n");
  // Columns are read in order: column a's gap on line 4 comes first.
  expect_io_error([&] { read_csv(path); }, {"line 4", "column 'a'", "missing value"});
  expect_io_error([&] { read_csv(dir.write("b.csv", "a,b\n1,2\n3,\n")); },
                  {"line 3", "column 'b'", "missing value"});
  const data::CsvTable table = read_csv(path, {.missing = MissingValues::NaN});
  EXPECT_EQ(table["a"].dtype(), kFloat64);  // an integer column with a gap becomes float
  const auto b = table["b"].to_vector<double>();
  EXPECT_EQ(b[0], 2.0);
  EXPECT_TRUE(std::isnan(b[1]) && std::isnan(b[2]));
  expect_io_error([&] { read_csv(path, {.dtype = kInt64, .missing = MissingValues::NaN}); },
                  {"line 4", "column 'a'", "missing value in an int64 column"});
}

TEST(Csv, HeaderOnlyGivesEmptyColumns) {
  TempDir dir;
  const data::CsvTable table = read_csv(dir.write("e.csv", "a,b\n"));
  EXPECT_EQ(table.rows(), 0);
  EXPECT_EQ(table.to_tensor().shape(), Shape({0, 2}));
}

TEST(Csv, EveryFaultIsAnIoErrorNamingFileAndLine) {
  TempDir dir;
  struct Case {
    std::string text;
    CsvOptions options;
    std::vector<std::string> parts;
  };
  const std::vector<Case> cases = {
      {"", {}, {"line 1", "empty"}},
      {"# only a comment\n\n", {.header = false}, {"line 1", "empty"}},
      {"a,b\n1,2\n3\n", {}, {"line 3", "the row has 1 fields, the header has 2"}},
      {"a,b\n1,2,3\n", {}, {"line 2", "the row has 3 fields"}},
      {"a\n1\nx1\n", {}, {"line 3", "column 'a'", "'x1' is not a number"}},
      {"a\n1.5\n", {.dtype = kInt64}, {"line 2", "'1.5' is not an integer"}},
      {"a\n99999999999999999999\n", {.dtype = kInt64}, {"line 2", "fits int64"}},
      {"a,b\n\"1,2\n3,4\n", {}, {"line 2", "quoted field opened here is not closed"}},
      {"a\n\"1\"x\n", {}, {"line 2", "text after the closing quote"}},
      {"a\n1\"2\n", {}, {"line 2", "a quote inside an unquoted field"}},
      {"a,a\n1,2\n", {}, {"line 1", "'a' appears twice"}},
      {"a\n1\n", {.column_dtypes = {{"b", kFloat32}}}, {"line 1", "no column 'b'"}},
      {"a,b\n1,\"x\ny\"\n2,3\n4\n", {}, {"line 5", "the row has 1 fields"}},
      // A carriage return alone (classic Mac OS line ends) is not taken for text.
      {"a,b\r1,2\r3,4\r", {}, {"line 1", "a carriage return not followed by a line feed"}},
      {"a\n1\r2\n", {}, {"line 2", "carriage return"}},
      // Out of the dtype's range: named as such, not as text that is no number.
      {"a\n1e400\n", {}, {"line 2", "'1e400' is a number too large for float64"}},
      {"a\n1e39\n", {.dtype = kFloat32}, {"line 2", "'1e39' is a number too large for float32"}},
      // A NUL or other control byte quoted from the file does not cut the message short.
      {std::string("a\n1\0x\n", 7), {}, {"line 2", "'1\\x00x' is not a number"}},
      {"a,b,c\n1,2,3\n", {.max_columns = 2}, {"line 1", "3 fields, more than max_columns (2"}},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    expect_refused(dir, "CSV file", {"case" + std::to_string(i) + ".csv", c.text, c.parts},
                   [&](const std::string& path) { read_csv(path, c.options); });
  }
  expect_io_error([&] { read_csv(dir.file("absent.csv")); }, {"absent.csv", "cannot open"});
  expect_io_error([&] { read_csv(dir.file("")); }, {"cannot read"});  // a directory
  // Neither a device nor a FIFO is read: the one would never end, the other would wait for a
  // writer before the reader could refuse it.
  expect_io_error([&] { read_csv("/dev/zero"); }, {"'/dev/zero'", "is not a regular file"});
  const std::string fifo = dir.file("fifo.csv");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expect_io_error([&] { read_csv(fifo); }, {"fifo.csv", "is not a regular file"});
}

TEST(Csv, NumbersTooSmallForTheDtypeRoundToZero) {
  TempDir dir;
  const std::string path = dir.write("tiny.csv", "a\n1e-400\n-1e-400\n4e-320\n");
  const std::vector<double> a = read_csv(path)["a"].to_vector<double>();
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0], 0.0);
  EXPECT_EQ(a[1], 0.0);
  EXPECT_TRUE(std::signbit(a[1]));
  EXPECT_EQ(a[2], 4e-320);
  const std::vector<float> f = read_csv(path, {.dtype = kFloat32})["a"].to_vector<float>();
  EXPECT_EQ(f[2], 0.0f);  // below float32's smallest subnormal
}

TEST(Csv, AWideRowIsRefusedBeforeItsColumnsAreMade) {
  // A megabyte of delimiters would be a million columns, each a tensor of its own.
  TempDir dir;
  const std::string path = dir.write("wide.csv", std::string(1000000, ',') + "\n");
  expect_io_error([&] { read_csv(path, {.header = false, .missing = MissingValues::NaN}); },
                  {"wide.csv", "line 1", "1000001 fields, more than max_columns (65536"});
  // Up to the limit, and past it when asked for.
  const std::string ok = dir.write("ok.csv", std::string(99, ',') + "\n");
  EXPECT_EQ(
      read_csv(ok, {.header = false, .missing = MissingValues::NaN, .max_columns = 100}).cols(),
      100);
}

TEST(Csv, TableChecksItsArguments) {
  TempDir dir;
  const data::CsvTable table = read_csv(dir.write("t.csv", "a,b\n1,2\n"));
  EXPECT_THROW(table["c"], ValueError);
  EXPECT_THROW(read_csv(dir.file("t.csv"), {.dtype = kBool}), DTypeError);
  EXPECT_THROW(data::CsvTable({"a"}, {}), ValueError);
  EXPECT_THROW(data::CsvTable({"a", "b"}, {zeros({2}), zeros({3})}), ShapeError);
  EXPECT_THROW(data::CsvTable({}, {}).to_tensor(), ValueError);
  // Separators the tokenizer cannot tell from the text around them.
  for (const char bad : {'\n', '\r', '"', '\0'}) {
    SCOPED_TRACE(static_cast<int>(bad));
    EXPECT_THROW(read_csv(dir.file("t.csv"), {.delimiter = bad}), ValueError);
  }
  EXPECT_THROW(read_csv(dir.file("t.csv"), {.delimiter = ';', .comment = ';'}), ValueError);
  EXPECT_THROW(read_csv(dir.file("t.csv"), {.max_columns = 0}), ValueError);
  try {
    read_csv(dir.file("t.csv"), {.delimiter = '\n'});
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("t.csv"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ember::test
