// featx/detail/pnm.hpp: the header of binary PNM images (P5 grey, P6 RGB).
//
// featx decodes PNM itself rather than through stb_image 2.27, whose reader
// (a) ignores a short read and returns uninitialised pixels for truncated
// files, (b) returns 16-bit samples in host byte order although PNM stores
// them big-endian, and (c) does not scale by maxval (a maxval of 1023 comes
// back as raw 0..1023). The format is simple enough to own (netpbm's ppm(5)
// and pgm(5)): "P6", whitespace, width, whitespace, height, whitespace,
// maxval, exactly one whitespace character, then rows of samples, one byte
// each if maxval < 256, else two bytes most significant first. '#' starts a
// comment running to the end of the line anywhere before the maxval.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace featx {
namespace image_detail {

struct PnmHeader {
  int width = 0, height = 0;
  int channels = 0;       // 1 (P5) or 3 (P6)
  uint32_t maxval = 0;    // 1..65535
  size_t data_offset = 0; // first byte of the raster
};

inline bool is_pnm(const uint8_t* d, size_t n) {
  return n >= 2 && d[0] == 'P' && (d[1] == '5' || d[1] == '6');
}

// Parses the header of a file for which is_pnm() holds. On failure returns
// false with a short phrase in *error.
inline bool parse_pnm_header(const uint8_t* d, size_t n, PnmHeader* h, std::string* error) {
  auto is_space = [](uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
  size_t pos = 2;
  // Reads whitespace/comments then a decimal number no larger than `limit`.
  auto number = [&](uint64_t limit, const char* what, uint64_t* value) {
    bool separated = false;
    for (;;) {
      if (pos >= n) {
        *error = std::string("header ends before the ") + what;
        return false;
      }
      if (is_space(d[pos])) {
        ++pos;
        separated = true;
      } else if (d[pos] == '#') {
        while (pos < n && d[pos] != '\n' && d[pos] != '\r') ++pos;
        separated = true;
      } else {
        break;
      }
    }
    if (!separated || d[pos] < '0' || d[pos] > '9') {
      *error = std::string("expected the ") + what + " as a number";
      return false;
    }
    uint64_t v = 0;
    while (pos < n && d[pos] >= '0' && d[pos] <= '9') {
      v = v * 10 + uint64_t(d[pos] - '0');
      if (v > limit) {
        *error = std::string("absurd ") + what;
        return false;
      }
      ++pos;
    }
    *value = v;
    return true;
  };
  uint64_t w = 0, ht = 0, maxval = 0;
  if (!number(uint64_t(1) << 30, "width", &w) || !number(uint64_t(1) << 30, "height", &ht) ||
      !number(65535, "maxval", &maxval))
    return false;
  if (maxval == 0) {
    *error = "maxval is 0";
    return false;
  }
  if (pos >= n || !is_space(d[pos])) {
    *error = "no whitespace after maxval";
    return false;
  }
  h->width = static_cast<int>(w);
  h->height = static_cast<int>(ht);
  h->channels = d[1] == '6' ? 3 : 1;
  h->maxval = static_cast<uint32_t>(maxval);
  h->data_offset = pos + 1;
  return true;
}

}  // namespace image_detail
}  // namespace featx
