// The PNG writer (the W3C PNG specification: a signature, then IHDR, tEXt, IDAT and IEND
// chunks, each with its CRC-32; the scanlines deflated by zlib) and image_grid.
#include "ember/data/image.hpp"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "ember/error.hpp"
#include "engine/data/file_writer.hpp"

namespace ember::data {
namespace {

constexpr unsigned char kSignature[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
// PNG stores lengths, widths and heights in 31 bits.
constexpr std::int64_t kMaxPngInt = 0x7FFFFFFF;
// The compressed scanlines go into IDAT chunks of at most this size (decoders join them);
// one chunk per megabyte keeps every chunk far below the 31-bit limit.
constexpr std::size_t kIdatBytes = std::size_t{1} << 20;
constexpr unsigned char kGray = 0, kRgb = 2;  // IHDR colour types

using Bytes = std::vector<unsigned char>;

void put_be32(Bytes& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<unsigned char>(v >> shift));
}

// A chunk: its length, type and data, then the CRC-32 of the type and data.
void put_chunk(Bytes& out, const char (&type)[5], const unsigned char* data, std::size_t n) {
  put_be32(out, static_cast<std::uint32_t>(n));
  const std::size_t type_at = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data, data + n);
  put_be32(out, static_cast<std::uint32_t>(
                    crc32(0, out.data() + type_at, static_cast<uInt>(out.size() - type_at))));
}

unsigned char paeth(int a, int b, int c) {
  const int p = a + b - c;
  const int pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  return static_cast<unsigned char>(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
}

// The scanlines, each led by its filter type. Each row takes the filter (None, Sub, Up,
// Average, Paeth) whose output has the least sum of absolute values as signed bytes, libpng's
// heuristic: smooth gradients turn into runs of small values that deflate compresses well.
Bytes filter_rows(const Bytes& pixels, std::size_t height, std::size_t row_bytes, std::size_t bpp) {
  Bytes out(height * (row_bytes + 1));
  const Bytes zero_row(row_bytes, 0);
  Bytes trial(row_bytes);
  for (std::size_t r = 0; r < height; ++r) {
    const unsigned char* cur = pixels.data() + r * row_bytes;
    const unsigned char* up = r > 0 ? cur - row_bytes : zero_row.data();
    unsigned char* best = out.data() + r * (row_bytes + 1);
    std::uint64_t best_cost = std::numeric_limits<std::uint64_t>::max();
    for (unsigned char type = 0; type < 5; ++type) {
      std::uint64_t cost = 0;
      for (std::size_t i = 0; i < row_bytes; ++i) {
        const int a = i >= bpp ? cur[i - bpp] : 0, b = up[i], c = i >= bpp ? up[i - bpp] : 0;
        const int predicted = type == 0   ? 0
                              : type == 1 ? a
                              : type == 2 ? b
                              : type == 3 ? (a + b) / 2
                                          : paeth(a, b, c);
        trial[i] = static_cast<unsigned char>(cur[i] - predicted);
        cost += static_cast<std::uint64_t>(std::abs(static_cast<signed char>(trial[i])));
      }
      if (cost < best_cost) {
        best_cost = cost;
        best[0] = type;
        std::copy(trial.begin(), trial.end(), best + 1);
      }
    }
  }
  return out;
}

// "pixel (row r, column c[, channel k])" of the sample at `index` of a row-major image.
std::string pixel_name(std::int64_t index, std::int64_t width, std::int64_t channels) {
  const std::int64_t pixel = index / channels;
  std::string name =
      "pixel (row " + std::to_string(pixel / width) + ", column " + std::to_string(pixel % width);
  if (channels > 1) name += ", channel " + std::to_string(index % channels);
  return name + ")";
}

// The pixels as 8-bit samples, row-major, checked for NaN.
Bytes samples_of(const Tensor& image, const std::string& where) {
  const std::vector<double> values = image.to_vector<double>();
  const std::int64_t width = image.shape()[1];
  const std::int64_t channels = image.dim() == 3 ? 3 : 1;
  Bytes out(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    EMBER_CHECK(!std::isnan(values[i]), "write_png: the image for ", where, " is NaN at ",
                pixel_name(static_cast<std::int64_t>(i), width, channels));
    out[i] = static_cast<unsigned char>(std::lround(std::clamp(values[i], 0.0, 1.0) * 255.0));
  }
  return out;
}

void check_text(const std::string& keyword, const std::string& text, const std::string& where) {
  EMBER_CHECK(!keyword.empty() && keyword.size() <= 79, "write_png: the tEXt keyword '", keyword,
              "' for ", where, " has ", keyword.size(), " characters; it must have 1 to 79");
  for (const char ch : keyword) {
    const auto u = static_cast<unsigned char>(ch);
    EMBER_CHECK((u >= 32 && u <= 126) || u >= 161, "write_png: the tEXt keyword '", keyword,
                "' for ", where, " holds character code ", static_cast<int>(u),
                "; keywords are printable Latin-1");
  }
  EMBER_CHECK(text.find('\0') == std::string::npos, "write_png: the tEXt text of '", keyword,
              "' for ", where, " holds a NUL byte");
  EMBER_CHECK(keyword.size() + 1 + text.size() <= static_cast<std::size_t>(kMaxPngInt),
              "write_png: the tEXt text of '", keyword, "' for ", where,
              " is too long for a chunk");
}

}  // namespace

void write_png(const std::filesystem::path& path, const Tensor& image, const PngOptions& options) {
  const std::string where = "PNG file '" + path.string() + "'";
  EMBER_CHECK(image.defined(), "write_png: the image for ", where, " is an undefined tensor");
  EMBER_CHECK_DTYPE(is_floating(image.dtype()) || image.dtype() == kBool,
                    "write_png: the image for ", where, " has dtype ", image.dtype(),
                    "; expected float32, float64 or bool");
  const Shape& shape = image.shape();
  EMBER_CHECK_SHAPE(image.dim() == 2 || (image.dim() == 3 && shape[2] == 3),
                    "write_png: the image for ", where, " has shape ", shape,
                    "; expected (H, W) for grayscale or (H, W, 3) for RGB");
  EMBER_CHECK_SHAPE(
      shape[0] > 0 && shape[1] > 0 && shape[0] <= kMaxPngInt && shape[1] <= kMaxPngInt,
      "write_png: the image for ", where, " has shape ", shape,
      "; a PNG image has 1 to 2^31 - 1 rows and columns");
  for (const auto& [keyword, text] : options.text) check_text(keyword, text, where);

  const auto height = static_cast<std::size_t>(shape[0]);
  const auto width = static_cast<std::size_t>(shape[1]);
  const std::size_t channels = image.dim() == 3 ? 3 : 1;
  const Bytes scanlines = filter_rows(samples_of(image, where), height, width * channels, channels);
  uLongf deflated_size = compressBound(scanlines.size());
  Bytes deflated(deflated_size);
  const int status = compress2(deflated.data(), &deflated_size, scanlines.data(), scanlines.size(),
                               Z_DEFAULT_COMPRESSION);
  EMBER_CHECK_T(IoError, status == Z_OK, where, ": zlib failed to compress the image (",
                zError(status), ")");

  Bytes png(std::begin(kSignature), std::end(kSignature));
  Bytes header;
  put_be32(header, static_cast<std::uint32_t>(width));
  put_be32(header, static_cast<std::uint32_t>(height));
  // Bit depth 8, the colour type, deflate, adaptive filtering, no interlace.
  header.insert(header.end(), {8, channels == 3 ? kRgb : kGray, 0, 0, 0});
  put_chunk(png, "IHDR", header.data(), header.size());
  for (const auto& [keyword, text] : options.text) {
    Bytes body(keyword.begin(), keyword.end());
    body.push_back(0);
    body.insert(body.end(), text.begin(), text.end());
    put_chunk(png, "tEXt", body.data(), body.size());
  }
  for (std::size_t at = 0; at < deflated_size; at += kIdatBytes) {
    put_chunk(png, "IDAT", deflated.data() + at,
              std::min<std::size_t>(kIdatBytes, deflated_size - at));
  }
  put_chunk(png, "IEND", nullptr, 0);

  detail::AtomicFileWriter out(path.string(), where);
  out.write(png.data(), png.size());
  out.commit();
}

Tensor image_grid(const Tensor& images, std::int64_t columns, std::int64_t padding,
                  double pad_value) {
  EMBER_CHECK(images.defined(), "image_grid: the images are an undefined tensor");
  EMBER_CHECK_DTYPE(is_floating(images.dtype()), "image_grid: images of dtype ", images.dtype(),
                    "; expected float32 or float64");
  const Shape& shape = images.shape();
  EMBER_CHECK_SHAPE(images.dim() == 3 || (images.dim() == 4 && shape[3] == 3),
                    "image_grid: images of shape ", shape, "; expected (N, H, W) or (N, H, W, 3)");
  EMBER_CHECK(shape[0] > 0, "image_grid: no images to lay out (shape ", shape, ")");
  EMBER_CHECK(columns > 0, "image_grid: columns is ", columns, "; it must be positive");
  EMBER_CHECK(padding >= 0, "image_grid: padding is ", padding, "; it must be non-negative");
  const std::int64_t n = shape[0], h = shape[1], w = shape[2];
  const std::int64_t channels = images.dim() == 4 ? 3 : 1;
  const std::int64_t rows = (n - 1) / columns + 1;
  // Checked in floating point first: huge paddings or column counts overflow int64.
  const double pixels =
      (static_cast<double>(rows) * (static_cast<double>(h) + padding) + padding) *
      (static_cast<double>(columns) * (static_cast<double>(w) + padding) + padding);
  EMBER_CHECK(pixels <= static_cast<double>(std::int64_t{1} << 40), "image_grid: ", rows,
              " rows of ", columns, " columns of ", h, " x ", w, " images with padding ", padding,
              " make a grid too large to allocate");
  const std::int64_t grid_h = rows * (h + padding) + padding;
  const std::int64_t grid_w = columns * (w + padding) + padding;

  const std::vector<double> src = images.to_vector<double>();
  std::vector<double> grid(static_cast<std::size_t>(grid_h * grid_w * channels), pad_value);
  const std::int64_t row_values = w * channels;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t top = padding + i / columns * (h + padding);
    const std::int64_t left = padding + i % columns * (w + padding);
    for (std::int64_t y = 0; y < h; ++y) {
      std::copy_n(src.begin() + (i * h + y) * row_values, row_values,
                  grid.begin() + ((top + y) * grid_w + left) * channels);
    }
  }
  const Shape grid_shape = channels == 3 ? Shape{grid_h, grid_w, 3} : Shape{grid_h, grid_w};
  return from_vector(grid, grid_shape,
                     TensorOptions{}.with_dtype(images.dtype()).with_device(images.device()));
}

}  // namespace ember::data
