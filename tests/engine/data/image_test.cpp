// write_png and image_grid: written files decoded here (CRCs, IHDR, inflate, filters) and
// compared sample by sample with the tensors, the faults each call names, and grid layouts.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>

#include "engine/data/png_test_util.hpp"
#include "test_util.hpp"

namespace ember::test {
namespace {

using data::image_grid;
using data::write_png;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// What write_png promises for a float sample: [0, 1] clamped and rounded onto 0..255.
std::uint8_t expected_sample(double v) {
  return static_cast<std::uint8_t>(std::lround(std::clamp(v, 0.0, 1.0) * 255.0));
}

void expect_samples(const DecodedPng& png, const Tensor& image) {
  const std::vector<double> values = image.to_vector<double>();
  ASSERT_EQ(png.samples.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(png.samples[i], expected_sample(values[i])) << "sample " << i << " of " << values[i];
  }
}

TEST(WritePng, GrayscaleFloatHasItsHeaderAndPixels) {
  TempDir dir;
  const Tensor image = tensor({{0.0, 0.25, 0.5, 1.0}, {0.1, 0.2, 0.3, 0.4}, {1.0, 0.0, 0.75, 0.9}},
                              TensorOptions{}.with_dtype(kFloat32));
  write_png(dir.file("gray.png"), image);
  const DecodedPng png = decode_png(dir.file("gray.png"));
  EXPECT_EQ(png.width, 4u);
  EXPECT_EQ(png.height, 3u);
  EXPECT_EQ(png.bit_depth, 8);
  EXPECT_EQ(png.color_type, 0);
  EXPECT_EQ(png.interlace, 0);
  EXPECT_EQ(png.chunk_types, (std::vector<std::string>{"IHDR", "IDAT", "IEND"}));
  expect_samples(png, image);
  EXPECT_EQ(png.at(0, 2), 128);  // 0.5 * 255 rounds up
  EXPECT_EQ(png.at(2, 0), 255);
}

TEST(WritePng, RgbFloat64InEveryChannel) {
  TempDir dir;
  const Tensor image = arange(18.0, f64()).reshape({2, 3, 3}) / 17.0;
  write_png(dir.file("rgb.png"), image);
  const DecodedPng png = decode_png(dir.file("rgb.png"));
  EXPECT_EQ(png.color_type, 2);
  EXPECT_EQ(png.width, 3u);
  EXPECT_EQ(png.height, 2u);
  expect_samples(png, image);
  EXPECT_EQ(png.at(1, 2, 2), 255);  // the last sample, 17 / 17
  EXPECT_EQ(png.at(0, 1, 0), expected_sample(3.0 / 17.0));
}

TEST(WritePng, ClampsValuesOutsideZeroToOne) {
  TempDir dir;
  write_png(dir.file("c.png"), tensor({{-0.5, 1.7, kInf, -kInf, 1e-9, 0.999999}}));
  EXPECT_EQ(decode_png(dir.file("c.png")).samples,
            (std::vector<std::uint8_t>{0, 255, 255, 0, 0, 255}));
}

TEST(WritePng, BoolIsBlackOrWhite) {
  TempDir dir;
  write_png(dir.file("b.png"), gt(tensor({{0.0, 1.0, 2.0}, {3.0, 0.5, -1.0}}), 0.75));
  const DecodedPng png = decode_png(dir.file("b.png"));
  EXPECT_EQ(png.color_type, 0);
  EXPECT_EQ(png.samples, (std::vector<std::uint8_t>{0, 255, 255, 255, 0, 0}));
}

TEST(WritePng, LargeImagesSpanSeveralIdatChunks) {
  TempDir dir;
  // Noise does not compress: its 1.3 MB of samples need two IDAT chunks.
  const Tensor noise = uniform({640, 700, 3}, -0.1, 1.1, false, kFloat32);
  write_png(dir.file("noise.png"), noise);
  const DecodedPng png = decode_png(dir.file("noise.png"));
  EXPECT_GE(std::count(png.chunk_types.begin(), png.chunk_types.end(), "IDAT"), 2);
  expect_samples(png, noise);
}

TEST(WritePng, EachRowTakesTheFilterThatSuitsIt) {
  TempDir dir;
  std::set<int> used;
  auto write_and_check = [&](const Tensor& image) {
    write_png(dir.file("f.png"), image);
    const DecodedPng png = decode_png(dir.file("f.png"));
    expect_samples(png, image);
    used.insert(png.row_filters.begin(), png.row_filters.end());
    return png.row_filters;
  };
  // A ramp, the same in every row: Sub suits the first row, Up the others.
  const std::vector<int> ramp =
      write_and_check((arange(200.0) / 199.0).unsqueeze(0).expand({50, 200}));
  EXPECT_EQ(ramp[0], 1);
  EXPECT_EQ(ramp[1], 2);
  // A black first row (None: every filter gives zeros, the first wins), then each sample the
  // mean of its left and upper neighbours (Average) but in the random first column.
  std::vector<int> bytes(40 * 40, 0);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int r = 1; r < 40; ++r) {
    bytes[r * 40] = byte(rng());
    for (int c = 1; c < 40; ++c)
      bytes[r * 40 + c] = (bytes[r * 40 + c - 1] + bytes[(r - 1) * 40 + c]) / 2;
  }
  const std::vector<double> averaged(bytes.begin(), bytes.end());
  const std::vector<int> mean = write_and_check(from_vector(averaged, {40, 40}) / 255.0);
  EXPECT_EQ(mean[0], 0);
  // Most rows: where the averages have evened out, Up or Sub may tie with it and win.
  EXPECT_GT(std::count(mean.begin(), mean.end(), 3), 20);
  // A smooth bump, whose gradients Paeth follows.
  const Tensor y = arange(64.0).reshape({64, 1}), x = arange(64.0).reshape({1, 64});
  write_and_check(exp(-(square(x - 30.0) + square(y - 20.0)) / 300.0));
  EXPECT_EQ(used, (std::set<int>{0, 1, 2, 3, 4}));
}

TEST(WritePng, WritesTextChunksBeforeTheData) {
  TempDir dir;
  write_png(dir.file("t.png"), zeros({2, 2}),
            {.text = {{"Title", "VAE samples, epoch 10"}, {"Software", "Ember"}}});
  const DecodedPng png = decode_png(dir.file("t.png"));
  EXPECT_EQ(png.chunk_types, (std::vector<std::string>{"IHDR", "tEXt", "tEXt", "IDAT", "IEND"}));
  EXPECT_EQ(png.text, (std::vector<std::pair<std::string, std::string>>{
                          {"Title", "VAE samples, epoch 10"}, {"Software", "Ember"}}));
}

TEST(WritePng, RefusesBadTextKeywords) {
  TempDir dir;
  const std::string path = dir.file("t.png");
  const Tensor image = zeros({2, 2});
  EMBER_EXPECT_THROW_WITH(write_png(path, image, {.text = {{"", "x"}}}), ValueError, "write_png",
                          "keyword ''", "1 to 79");
  EMBER_EXPECT_THROW_WITH(write_png(path, image, {.text = {{std::string(80, 'k'), "x"}}}),
                          ValueError, "write_png", "80 characters");
  EMBER_EXPECT_THROW_WITH(write_png(path, image, {.text = {{"Line\nbreak", "x"}}}), ValueError,
                          "keyword 'Line\nbreak'", "character code 10");
  EMBER_EXPECT_THROW_WITH(write_png(path, image, {.text = {{"Title", std::string("a\0b", 3)}}}),
                          ValueError, "tEXt text of 'Title'", "NUL");
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(WritePng, ANaNIsAnErrorNamingTheFileAndPixel) {
  TempDir dir;
  const std::string path = dir.file("nan.png");
  std::vector<double> gray(12, 0.5);
  gray[1 * 4 + 2] = kNaN;
  EMBER_EXPECT_THROW_WITH(write_png(path, from_vector(gray, {3, 4})), ValueError, "write_png",
                          "PNG file '" + path + "'", "NaN at pixel (row 1, column 2)");
  std::vector<double> rgb(2 * 3 * 3, 0.5);
  rgb[(0 * 3 + 1) * 3 + 2] = kNaN;
  EMBER_EXPECT_THROW_WITH(write_png(path, from_vector(rgb, {2, 3, 3})), ValueError,
                          "NaN at pixel (row 0, column 1, channel 2)");
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(WritePng, WrongShapesAndDtypesNameTheShape) {
  TempDir dir;
  const std::string path = dir.file("s.png");
  EMBER_EXPECT_THROW_WITH(write_png(path, zeros({5})), ShapeError, "write_png", "shape (5)",
                          "(H, W) for grayscale or (H, W, 3) for RGB");
  EMBER_EXPECT_THROW_WITH(write_png(path, zeros({2, 3, 4})), ShapeError, "shape (2, 3, 4)");
  EMBER_EXPECT_THROW_WITH(write_png(path, zeros({2, 3, 3, 1})), ShapeError, "shape (2, 3, 3, 1)");
  EMBER_EXPECT_THROW_WITH(write_png(path, zeros({0, 5})), ShapeError, "shape (0, 5)",
                          "1 to 2^31 - 1 rows and columns");
  EMBER_EXPECT_THROW_WITH(write_png(path, zeros({4, 0, 3})), ShapeError, "shape (4, 0, 3)");
  EMBER_EXPECT_THROW_WITH(write_png(path, zeros({2, 2}, TensorOptions{}.with_dtype(kInt64))),
                          DTypeError, "write_png", "dtype int64");
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(WritePng, AFileThatCannotBeWrittenIsAnIoErrorAndLeavesNothing) {
  TempDir dir;
  const std::string path = dir.file("missing/dir/x.png");
  expect_io_error([&] { write_png(path, zeros({2, 2})); }, {"PNG file '" + path + "'"});
  EXPECT_FALSE(std::filesystem::exists(dir.file("missing")));
}

TEST(WritePng, ReplacesAnExistingFileAndTakesNonContiguousTensors) {
  TempDir dir;
  const std::string path = dir.file("x.png");
  write_png(path, ones({4, 4}));
  const Tensor transposed = (arange(12.0) / 11.0).reshape({3, 4}).t();
  write_png(path, transposed);
  const DecodedPng png = decode_png(path);
  EXPECT_EQ(png.width, 3u);
  EXPECT_EQ(png.height, 4u);
  expect_samples(png, transposed.contiguous());
  // Only the file itself is left: the temporary one was renamed onto it.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.file("")),
                          std::filesystem::directory_iterator()),
            1);
}

// Five 2 x 3 images whose pixels are all different: pixel (y, x) of image i is i + (3y + x) / 10.
Tensor numbered_images() {
  return arange(5.0).reshape({5, 1, 1}) + (arange(6.0) / 10.0).reshape({1, 2, 3});
}

TEST(ImageGrid, LaysImagesOutInRowsWithPaddingAndEmptyCells) {
  const Tensor grid = image_grid(numbered_images(), 3, 1, -1.0);
  // Two rows of three cells: 2 * (2 + 1) + 1 rows, 3 * (3 + 1) + 1 columns.
  ASSERT_EQ(grid.shape(), Shape({7, 13}));
  EXPECT_EQ(grid.dtype(), kFloat32);
  const std::vector<double> v = grid.to_vector<double>();
  auto at = [&](int row, int column) { return v[row * 13 + column]; };
  // Image i's top-left pixel at row 1 + (i / 3) * 3, column 1 + (i % 3) * 4.
  EXPECT_DOUBLE_EQ(at(1, 1), 0.0);
  EXPECT_NEAR(at(2, 3), 0.5, 1e-6);   // image 0, pixel (1, 2)
  EXPECT_NEAR(at(1, 5), 1.0, 1e-6);   // image 1
  EXPECT_NEAR(at(2, 11), 2.5, 1e-6);  // image 2, pixel (1, 2)
  EXPECT_NEAR(at(4, 1), 3.0, 1e-6);   // image 3, second grid row
  EXPECT_NEAR(at(5, 6), 4.4, 1e-6);   // image 4, pixel (1, 1)
  // The padding: outer rows and columns, and the gaps between cells.
  for (int c = 0; c < 13; ++c) {
    EXPECT_EQ(at(0, c), -1.0);
    EXPECT_EQ(at(3, c), -1.0);
    EXPECT_EQ(at(6, c), -1.0);
  }
  for (int r = 0; r < 7; ++r) {
    for (int c : {0, 4, 8, 12}) EXPECT_EQ(at(r, c), -1.0);
  }
  // The empty sixth cell.
  for (int r = 4; r < 6; ++r) {
    for (int c = 9; c < 12; ++c) EXPECT_EQ(at(r, c), -1.0);
  }
}

TEST(ImageGrid, RgbWithoutPaddingAndMoreColumnsThanImages) {
  const Tensor images = arange(2.0 * 2 * 2 * 3, f64()).reshape({2, 2, 2, 3}) / 24.0;
  const Tensor grid = image_grid(images, 3, 0);
  ASSERT_EQ(grid.shape(), Shape({2, 6, 3}));
  EXPECT_EQ(grid.dtype(), kFloat64);
  // Cells side by side: image 1 starts at column 2; the third cell is pad_value (1.0).
  expect_close(grid.slice(1, 0, 2), images.select(0, 0));
  expect_close(grid.slice(1, 2, 4), images.select(0, 1));
  expect_close(grid.slice(1, 4, 6), ones({2, 2, 3}, f64()));
}

TEST(ImageGrid, WritesAsAPng) {
  TempDir dir;
  const Tensor grid = image_grid(numbered_images() / 5.0, 2);
  write_png(dir.file("grid.png"), grid);
  const DecodedPng png = decode_png(dir.file("grid.png"));
  EXPECT_EQ(png.height, 3u * (2 + 2) + 2);
  EXPECT_EQ(png.width, 2u * (3 + 2) + 2);
  expect_samples(png, grid);
}

TEST(ImageGrid, BadArgumentsSayWhatIsWrong) {
  EMBER_EXPECT_THROW_WITH(image_grid(zeros({0, 2, 2}), 2), ValueError, "image_grid", "no images",
                          "(0, 2, 2)");
  EMBER_EXPECT_THROW_WITH(image_grid(zeros({3, 2, 2}), 0), ValueError, "image_grid",
                          "columns is 0");
  EMBER_EXPECT_THROW_WITH(image_grid(zeros({3, 2, 2}), 2, -1), ValueError, "image_grid",
                          "padding is -1");
  EMBER_EXPECT_THROW_WITH(image_grid(zeros({2, 2}), 2), ShapeError, "image_grid", "shape (2, 2)",
                          "(N, H, W) or (N, H, W, 3)");
  EMBER_EXPECT_THROW_WITH(image_grid(zeros({2, 2, 2, 4}), 2), ShapeError, "shape (2, 2, 2, 4)");
  EMBER_EXPECT_THROW_WITH(image_grid(zeros({2, 2, 2}, TensorOptions{}.with_dtype(kInt64)), 2),
                          DTypeError, "image_grid", "dtype int64");
}

}  // namespace
}  // namespace ember::test
