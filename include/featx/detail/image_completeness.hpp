// featx/detail/image_completeness.hpp: is an encoded image file complete?
//
// stb_image reads past the end of its input as zeros (stbi__get8 returns 0
// at EOF), so a JPEG, BMP, GIF or TGA cut short decodes "successfully" with
// black or grey where the data was missing. featx refuses such files, as
// libjpeg/libpng-based decoders such as TensorFlow's do, by walking just
// enough of each container to know how long it must be. Each check only
// reports truncation when it understands the header; anything else is left
// to the decoder, which validates the rest.
#pragma once

#include <cstddef>
#include <cstdint>

namespace featx {
namespace image_detail {

inline uint32_t get_le32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
inline uint32_t get_le16(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8; }
inline uint32_t get_be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

// A complete JPEG has an EOI marker (FF D9) after its last start-of-scan
// (FF DA). Markers cannot occur inside entropy-coded data (FF is stuffed as
// FF 00), and an embedded EXIF thumbnail's markers come before the main
// image's scans, so comparing the last positions of both is enough. (A file
// that lacks only its EOI is rejected too; libjpeg warns about it.)
inline bool jpeg_truncated(const uint8_t* d, size_t n) {
  size_t last_sos = 0, last_eoi = 0;
  bool have_sos = false, have_eoi = false;
  for (size_t i = 0; i + 1 < n; ++i) {
    if (d[i] != 0xFF) continue;
    if (d[i + 1] == 0xDA) {
      last_sos = i;
      have_sos = true;
    } else if (d[i + 1] == 0xD9) {
      last_eoi = i;
      have_eoi = true;
    }
  }
  return !have_sos || !have_eoi || last_eoi < last_sos;
}

// PNG: walk the chunks up to a complete IEND (stb stops at the IEND type
// and ignores CRCs, so a cut inside the last chunk would go unnoticed).
inline bool png_truncated(const uint8_t* d, size_t n) {
  size_t pos = 8;  // after the signature
  for (;;) {
    if (n - pos < 12) return true;  // length + type + CRC at least
    const uint64_t len = get_be32(d + pos);
    if (len > n - pos - 12) return true;
    const bool iend = d[pos + 4] == 'I' && d[pos + 5] == 'E' && d[pos + 6] == 'N' && d[pos + 7] == 'D';
    pos += 12 + static_cast<size_t>(len);
    if (iend) return false;
  }
}

// BMP: uncompressed layouts have a known size: pixel data offset plus
// |height| rows of 4-byte-aligned width * bpp bits. RLE sizes cannot be
// predicted and are left to stb.
inline bool bmp_truncated(const uint8_t* d, size_t n) {
  if (n < 26) return true;
  const uint64_t offset = get_le32(d + 10);
  const uint32_t dib = get_le32(d + 14);
  int64_t w = 0, h = 0;
  uint32_t bpp = 0, compression = 0;
  if (dib == 12) {  // BITMAPCOREHEADER
    w = get_le16(d + 18);
    h = get_le16(d + 20);
    bpp = get_le16(d + 24);
  } else if (dib >= 40) {  // BITMAPINFOHEADER and later
    if (n < 34) return true;
    w = static_cast<int32_t>(get_le32(d + 18));
    h = static_cast<int32_t>(get_le32(d + 22));
    bpp = get_le16(d + 28);
    compression = get_le32(d + 30);
  } else {
    return false;
  }
  if (compression != 0 && compression != 3) return false;  // 0 = BI_RGB, 3 = BI_BITFIELDS
  if (h < 0) h = -h;                                         // negative height = top-down rows
  if (w <= 0 || w > (1 << 24) || h > (1 << 24) || bpp == 0 || bpp > 32)
    return false;  // stb rejects these (and the bound keeps the product below in range)
  const uint64_t stride = ((static_cast<uint64_t>(w) * bpp + 31) / 32) * 4;
  return n < offset + stride * static_cast<uint64_t>(h);
}

// GIF: walk blocks up to the end of the first image's data sub-blocks
// (featx decodes the first frame only, so a missing trailer is fine).
inline bool gif_truncated(const uint8_t* d, size_t n) {
  auto skip_sub_blocks = [&](size_t* pos) {
    for (;;) {
      if (*pos >= n) return false;
      const size_t len = d[(*pos)++];
      if (len == 0) return true;
      *pos += len;
    }
  };
  if (n < 13) return true;
  size_t pos = 13;
  if (d[10] & 0x80) pos += 3 * (size_t(2) << (d[10] & 7));  // global colour table
  for (;;) {
    if (pos >= n) return true;
    const uint8_t block = d[pos++];
    if (block == 0x21) {  // extension: label, then sub-blocks
      ++pos;
      if (!skip_sub_blocks(&pos)) return true;
    } else if (block == 0x2C) {  // image descriptor
      if (n - pos < 9) return true;
      const uint8_t flags = d[pos + 8];
      pos += 9;
      if (flags & 0x80) pos += 3 * (size_t(2) << (flags & 7));  // local colour table
      ++pos;                                                     // LZW minimum code size
      return !skip_sub_blocks(&pos);
    } else {
      return block == 0x3B;  // trailer before any image: nothing to decode
    }
  }
}

// TGA: raw types have a computable size; RLE types (9-11) are walked packet
// by packet until width * height pixels are covered.
inline bool tga_truncated(const uint8_t* d, size_t n) {
  if (n < 18) return true;
  const uint32_t id_len = d[0], cmap_type = d[1], type = d[2];
  const uint32_t cmap_len = get_le16(d + 5), cmap_bits = d[7];
  const uint64_t w = get_le16(d + 12), h = get_le16(d + 14);
  const uint32_t bpp = d[16];
  if (bpp == 0 || bpp > 32) return false;  // stb rejects these
  const uint64_t pixel_bytes = (bpp + 7) / 8;
  uint64_t pos = 18 + id_len;
  if (cmap_type == 1) pos += uint64_t(cmap_len) * ((cmap_bits + 7) / 8);
  const uint64_t pixels = w * h;
  if (type == 1 || type == 2 || type == 3) return n < pos + pixels * pixel_bytes;
  if (type == 9 || type == 10 || type == 11) {
    uint64_t covered = 0;
    while (covered < pixels) {
      if (pos >= n) return true;
      const uint8_t packet = d[pos++];
      const uint64_t count = uint64_t(packet & 0x7F) + 1;
      pos += (packet & 0x80) ? pixel_bytes : count * pixel_bytes;
      covered += count;
    }
    return pos > n;
  }
  return false;
}

// For a file stb_image's header probe accepted: returns a short format name
// if it is a truncated file of that format, nullptr otherwise. TGA has no
// magic number; stb tries it last, so an accepted file without any other
// known signature is a TGA. (PNM is decoded by featx and checks itself.)
inline const char* truncated_format(const uint8_t* d, size_t n) {
  if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return jpeg_truncated(d, n) ? "JPEG" : nullptr;
  if (n >= 8 && d[0] == 0x89 && d[1] == 'P' && d[2] == 'N' && d[3] == 'G') return png_truncated(d, n) ? "PNG" : nullptr;
  if (n >= 2 && d[0] == 'B' && d[1] == 'M') return bmp_truncated(d, n) ? "BMP" : nullptr;
  if (n >= 6 && d[0] == 'G' && d[1] == 'I' && d[2] == 'F') return gif_truncated(d, n) ? "GIF" : nullptr;
  const bool psd = n >= 4 && d[0] == '8' && d[1] == 'B' && d[2] == 'P' && d[3] == 'S';
  const bool pic = n >= 4 && d[0] == 0x53 && d[1] == 0x80 && d[2] == 0xF6 && d[3] == 0x34;
  const bool pnm = n >= 2 && d[0] == 'P' && (d[1] == '5' || d[1] == '6');
  if (!psd && !pic && !pnm) return tga_truncated(d, n) ? "TGA" : nullptr;
  return nullptr;
}

}  // namespace image_detail
}  // namespace featx
