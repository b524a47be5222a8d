// A PNG decoder for the image and plot tests, written from the specification and apart from
// the writer: it checks the signature, every chunk's CRC-32 (zlib's crc32), the IHDR fields
// and the chunk order, inflates the IDAT stream (zlib's uncompress) and undoes the filters.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "engine/data/data_test_util.hpp"

namespace ember::test {

struct DecodedPng {
  std::uint32_t width = 0, height = 0;
  int bit_depth = 0, color_type = 0, compression = 0, filter_method = 0, interlace = 0;
  int channels = 0;
  std::vector<std::string> chunk_types;  // in the file's order
  std::vector<std::pair<std::string, std::string>> text;
  std::vector<int> row_filters;  // the filter type of each scanline
  std::vector<std::uint8_t> samples;

  std::uint8_t at(std::uint32_t row, std::uint32_t column, int channel = 0) const {
    return samples[(static_cast<std::size_t>(row) * width + column) * channels + channel];
  }
};

// Throws std::runtime_error (which fails the test) for anything that is not a well-formed
// 8-bit, non-interlaced grayscale or RGB PNG.
inline DecodedPng decode_png(const std::string& path) {
  const std::string file = read_bytes(path);
  auto fail = [&](const std::string& what) { throw std::runtime_error(path + ": " + what); };
  auto be32 = [&](std::size_t at) {
    if (at + 4 > file.size()) fail("truncated");
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = v << 8 | static_cast<unsigned char>(file[at + i]);
    return v;
  };
  if (file.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) fail("bad signature");

  DecodedPng png;
  std::string idat;
  for (std::size_t at = 8; at < file.size();) {
    const std::uint32_t length = be32(at);
    if (at + 12 + length > file.size()) fail("a chunk runs past the end");
    const std::string type = file.substr(at + 4, 4);
    const std::string data = file.substr(at + 8, length);
    const auto* typed = reinterpret_cast<const Bytef*>(file.data() + at + 4);
    if (crc32(0, typed, 4 + length) != be32(at + 8 + length)) fail("bad CRC of " + type);
    png.chunk_types.push_back(type);
    if (type == "IHDR") {
      if (length != 13 || png.chunk_types.size() != 1) fail("IHDR is not first or not 13 bytes");
      png.width = be32(at + 8);
      png.height = be32(at + 12);
      png.bit_depth = static_cast<unsigned char>(data[8]);
      png.color_type = static_cast<unsigned char>(data[9]);
      png.compression = static_cast<unsigned char>(data[10]);
      png.filter_method = static_cast<unsigned char>(data[11]);
      png.interlace = static_cast<unsigned char>(data[12]);
    } else if (type == "IDAT") {
      idat += data;
    } else if (type == "tEXt") {
      const std::size_t nul = data.find('\0');
      if (nul == std::string::npos) fail("a tEXt chunk without its NUL separator");
      png.text.emplace_back(data.substr(0, nul), data.substr(nul + 1));
    } else if (type == "IEND") {
      if (length != 0 || at + 12 != file.size()) fail("IEND is not empty or not last");
    }
    at += 12 + length;
  }
  if (png.chunk_types.empty() || png.chunk_types.back() != "IEND") fail("no IEND");
  if (png.bit_depth != 8 || png.interlace != 0 || png.compression != 0 || png.filter_method != 0)
    fail("not 8-bit, deflated, non-interlaced");
  if (png.color_type != 0 && png.color_type != 2) fail("not grayscale or RGB");
  png.channels = png.color_type == 2 ? 3 : 1;

  const std::size_t stride = std::size_t{png.width} * png.channels;
  std::vector<std::uint8_t> raw((stride + 1) * png.height);
  uLongf raw_size = raw.size();
  if (uncompress(raw.data(), &raw_size, reinterpret_cast<const Bytef*>(idat.data()), idat.size()) !=
          Z_OK ||
      raw_size != raw.size()) {
    fail("IDAT does not inflate to the scanlines' size");
  }
  png.samples.resize(stride * png.height);
  const int bpp = png.channels;
  for (std::size_t r = 0; r < png.height; ++r) {
    const int type = raw[r * (stride + 1)];
    png.row_filters.push_back(type);
    const std::uint8_t* in = raw.data() + r * (stride + 1) + 1;
    std::uint8_t* out = png.samples.data() + r * stride;
    const std::uint8_t* up = r > 0 ? out - stride : nullptr;
    for (std::size_t i = 0; i < stride; ++i) {
      const int a = i >= static_cast<std::size_t>(bpp) ? out[i - bpp] : 0;
      const int b = up ? up[i] : 0;
      const int c = up && i >= static_cast<std::size_t>(bpp) ? up[i - bpp] : 0;
      int predicted = 0;
      switch (type) {
        case 0:
          break;
        case 1:
          predicted = a;
          break;
        case 2:
          predicted = b;
          break;
        case 3:
          predicted = (a + b) / 2;
          break;
        case 4: {
          const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
          predicted = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default:
          fail("unknown filter type " + std::to_string(type));
      }
      out[i] = static_cast<std::uint8_t>(in[i] + predicted);
    }
  }
  return png;
}

}  // namespace ember::test
