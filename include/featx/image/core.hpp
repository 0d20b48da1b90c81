// featx/image/core.hpp: the decoded image type, the size limits every
// decoder checks on the header, and the 8/16-bit -> float conversions.
#pragma once

#include <climits>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "featx/detail/checked_size.hpp"
#include "featx/status.hpp"

// Size limits checked on the header, before any pixel memory is allocated.
// Largest accepted width or height:
#ifndef FEATX_MAX_IMAGE_SIDE
#define FEATX_MAX_IMAGE_SIDE (1 << 14)
#endif
// Largest accepted pixel count (width * height). 2^26 = 67 M pixels covers
// 8K video frames and 50 MP photos; its float RGB copy takes 768 MiB.
#ifndef FEATX_MAX_IMAGE_PIXELS
#define FEATX_MAX_IMAGE_PIXELS (int64_t(1) << 26)
#endif
// Largest number of progressive JPEG scans libjpeg may read (each scan
// re-reads the coefficients: many tiny scans are a decompression-time bomb).
#ifndef FEATX_MAX_JPEG_SCANS
#define FEATX_MAX_JPEG_SCANS 1000
#endif
// What makes the decoders' and resizes' size arithmetic (w * h * 3 after
// check_size, a target's h * w * 3) safe: the float RGB copy of the largest
// image and of the largest target (a side squared) fit this target's size_t
// (12 bytes a pixel, the most any of them holds). On 32-bit targets that is
// 357 M pixels, a side of 18918.
static_assert(FEATX_MAX_IMAGE_SIDE >= 1 && FEATX_MAX_IMAGE_SIDE <= (1 << 30), "FEATX_MAX_IMAGE_SIDE: 1 to 2^30");
static_assert(FEATX_MAX_IMAGE_PIXELS >= 1 && uint64_t(FEATX_MAX_IMAGE_PIXELS) <= uint64_t(SIZE_MAX) / 12,
              "FEATX_MAX_IMAGE_PIXELS: its float RGB copy would not fit this target's size_t");
static_assert(uint64_t(FEATX_MAX_IMAGE_SIDE) * uint64_t(FEATX_MAX_IMAGE_SIDE) <= uint64_t(SIZE_MAX) / 12,
              "FEATX_MAX_IMAGE_SIDE: a target of that side squared would not fit this target's size_t");

namespace featx {

// An image as float RGB in [0, 1], height x width x 3, row-major (HWC).
struct Image {
  int height = 0, width = 0;
  std::vector<float> rgb;
  // Which decoder made the pixels, e.g. "libjpeg-turbo 2.1.5 (JDCT_IFAST,
  // fancy upsampling)", "stb_image", "featx-pnm"; a static string.
  const char* decoder = "";
  // Corrupt-data warnings libjpeg raised while decoding (the image was
  // decoded anyway, as TensorFlow does); 0 for other decoders.
  int jpeg_warnings = 0;
};

// Whose decoding conventions to follow where they differ:
//   tensorflow  tf.io.decode_image / decode_jpeg (JPEG: libjpeg JDCT_IFAST,
//               TF's CMYK formula), then tf.image.convert_image_dtype:
//               x * float32(1 / 255).
//   keras       keras.utils.load_img (PIL; JPEG: libjpeg JDCT_ISLOW, PIL's
//               CMYK conversion), then the user's x / 255 in float32.
// The two conversions differ in the last bit for about half of the 256 values.
enum class DecodeStyle { tensorflow, keras };

// Limits a caller sets per decode (DecodeOptions / PreprocessOptions::limits),
// e.g. lower for a service taking uploads. The defaults are the compile-time
// macros above, which stay the ceiling: a larger value means the macro's.
struct ImageLimits {
  int64_t max_side = FEATX_MAX_IMAGE_SIDE;      // width and height, checked on the header
  int64_t max_pixels = FEATX_MAX_IMAGE_PIXELS;  // width * height, checked on the header
  uint64_t max_file_bytes = INT_MAX;            // file size (stb_image takes an int length)
  int max_jpeg_scans = FEATX_MAX_JPEG_SCANS;    // progressive scans, libjpeg only

  int64_t side() const { return max_side < FEATX_MAX_IMAGE_SIDE ? max_side : FEATX_MAX_IMAGE_SIDE; }
  int64_t pixels() const { return max_pixels < FEATX_MAX_IMAGE_PIXELS ? max_pixels : FEATX_MAX_IMAGE_PIXELS; }
  uint64_t file_bytes() const { return max_file_bytes < uint64_t(INT_MAX) ? max_file_bytes : uint64_t(INT_MAX); }
  int jpeg_scans() const { return max_jpeg_scans < FEATX_MAX_JPEG_SCANS ? max_jpeg_scans : FEATX_MAX_JPEG_SCANS; }
  // The sides are checked first, so w * h cannot overflow.
  bool allows(int64_t w, int64_t h) const { return w <= side() && h <= side() && w * h <= pixels(); }
};

namespace image_detail {

// h x w x 3 floats, or 0 when that is not a size this target can hold.
inline size_t rgb_floats(int height, int width) {
  detail::SizeCheck size;
  const size_t floats = size.mul(static_cast<size_t>(height), static_cast<size_t>(width), 3);
  size.mul(floats, sizeof(float));
  return height > 0 && width > 0 && !size.overflow ? floats : 0;
}

// A caller's image: its sides and its pixels agree (a product that wraps
// size_t does not match a short buffer).
inline bool well_formed(const Image& im) {
  const size_t floats = rgb_floats(im.height, im.width);
  return floats != 0 && im.rgb.size() == floats;
}

// A caller's image and resize target (resize_*): the output can be held.
inline bool can_resize(const Image& in, int out_h, int out_w) {
  return well_formed(in) && rgb_floats(out_h, out_w) != 0;
}

// Stops the compiler from fusing a multiply and an add into one FMA (GCC
// does so by default in C++ when the target has FMA, e.g. -march=native):
// TF rounds the product first, and these few values decide indices. Only
// used outside pixel loops; lerp2d below may still be fused, which changes
// results in the last bit only.
template <typename T>
inline T rounded(T x) {
  volatile T v = x;
  return v;
}

inline void clear(Image* im) {
  im->height = im->width = 0;
  im->rgb.clear();
  im->decoder = "";
  im->jpeg_warnings = 0;
}

// Rejects zero-size and oversized images by their header.
inline Status check_size(const std::string& name, int64_t w, int64_t h, const ImageLimits& limits = {}) {
  if (w <= 0 || h <= 0)
    return corrupt(name + ": zero-size image (" + std::to_string(w) + "x" + std::to_string(h) + ")");
  if (!limits.allows(w, h))
    return unsupported(name + ": image too large (" + std::to_string(w) + "x" + std::to_string(h) +
                       "; limits " + std::to_string(limits.side()) + " per side, " +
                       std::to_string(limits.pixels()) + " pixels)");
  return Status::Ok();
}

// Sample -> [0, 1] in float32: TF multiplies by float32(1 / max) (its
// convert_image_dtype), Keras users divide by max.
template <typename T>
inline void to_unit_float(const T* src, size_t count, double max_value, DecodeStyle style, float* dst) {
  if (style == DecodeStyle::keras) {
    const float divisor = static_cast<float>(max_value);
    for (size_t i = 0; i < count; ++i) dst[i] = static_cast<float>(src[i]) / divisor;
  } else {
    const float scale = static_cast<float>(1.0 / max_value);
    for (size_t i = 0; i < count; ++i) dst[i] = static_cast<float>(src[i]) * scale;
  }
}

inline float unit_float(uint32_t v, double max_value, DecodeStyle style) {
  return style == DecodeStyle::keras ? static_cast<float>(v) / static_cast<float>(max_value)
                                     : static_cast<float>(v) * static_cast<float>(1.0 / max_value);
}

}  // namespace image_detail
}  // namespace featx
