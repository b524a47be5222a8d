// PNG images written from tensors, and grids of images laid out for one picture (as
// torchvision's make_grid), for examples that show samples, reconstructions and plots.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "ember/tensor.hpp"

namespace ember::data {

struct PngOptions {
  // tEXt chunks as (keyword, text), e.g. {"Title", "VAE samples"}: a keyword of 1 to 79
  // printable Latin-1 characters, a text without NUL bytes.
  std::vector<std::pair<std::string, std::string>> text;
};

// Writes `image` as an 8-bit, non-interlaced PNG file: shape (H, W) is grayscale, (H, W, 3)
// RGB. Float32 and float64 values map [0, 1] onto 0..255 (values outside are clamped, a NaN
// is a ValueError naming the pixel); bool is black (false) or white (true). Any device: the
// image is copied to the host. The file is written beside `path` and renamed onto it, so a
// failure never leaves a half-written file there; a file that cannot be written is an IoError.
void write_png(const std::filesystem::path& path, const Tensor& image,
               const PngOptions& options = {});

// The images (N, H, W) or (N, H, W, 3), float32 or float64 on any device, laid out in rows of
// `columns` images with `padding` pixels around and between them: image i at grid row
// i / columns and column i % columns. The result, of the images' dtype and device, has shape
// (rows * (H + padding) + padding, columns * (W + padding) + padding[, 3]) with
// rows = ceil(N / columns); padding and empty cells hold pad_value.
Tensor image_grid(const Tensor& images, std::int64_t columns, std::int64_t padding = 2,
                  double pad_value = 1.0);

}  // namespace ember::data
