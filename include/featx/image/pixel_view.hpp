// featx/image/pixel_view.hpp: decoded 8-bit pixels, and windows on RGB
// samples (8-bit or float) that the resizers read.
//
// load_image keeps what a decoder produced as 8-bit and resizes from it,
// mapping each sample to its float through a 256-entry table: the same
// floats as converting the whole image first (the conversion is per value),
// but a 12 MP photo occupies 36 MB instead of 144 MB, most of whose cost is
// page faults. A crop is a window on the same samples: nothing is copied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "featx/image/core.hpp"

namespace featx {
namespace image_detail {

// 8-bit RGB, height x width x 3, in a buffer a decoder allocated; `release`
// frees it (std::free, stbi_image_free).
class Pixels8 {
 public:
  Pixels8() = default;
  Pixels8(const Pixels8&) = delete;
  Pixels8& operator=(const Pixels8&) = delete;
  ~Pixels8() { reset(); }

  void reset(uint8_t* data = nullptr, void (*release)(void*) = nullptr, int height = 0, int width = 0) {
    if (release_ != nullptr) release_(data_);
    data_ = data;
    release_ = release;
    height_ = height;
    width_ = width;
  }
  const uint8_t* data() const { return data_; }
  int height() const { return height_; }
  int width() const { return width_; }

  const char* decoder = "";
  int jpeg_warnings = 0;

 private:
  uint8_t* data_ = nullptr;
  void (*release_)(void*) = nullptr;
  int height_ = 0, width_ = 0;
};

// A read-only window on interleaved RGB samples. For 8-bit samples `unit`
// gives each value's float.
template <typename T>
struct RgbView {
  const T* data = nullptr;  // the window's first pixel
  int height = 0, width = 0;
  size_t stride = 0;  // samples from a row to the next
  const float* unit = nullptr;

  const T* row(int y) const { return data + size_t(y) * stride; }
};

inline float value(const RgbView<float>&, const float* p) { return *p; }
inline float value(const RgbView<uint8_t>& v, const uint8_t* p) { return v.unit[*p]; }

inline RgbView<float> view_of(const Image& im) {
  return RgbView<float>{im.rgb.data(), im.height, im.width, size_t(im.width) * 3, nullptr};
}

// Moves a finished image into *out (which may be the image it came from).
inline void set_image(Image* out, int height, int width, std::vector<float>&& rgb, const char* decoder,
                      int jpeg_warnings) {
  out->height = height;
  out->width = width;
  out->rgb = std::move(rgb);
  out->decoder = decoder;
  out->jpeg_warnings = jpeg_warnings;
}

// The float of each 8-bit value under `style` (see core.hpp), built once.
inline const float* unit_table(DecodeStyle style) {
  struct Tables {
    float tf[256], keras[256];
    Tables() {
      for (uint32_t v = 0; v < 256; ++v) {
        tf[v] = unit_float(v, 255.0, DecodeStyle::tensorflow);
        keras[v] = unit_float(v, 255.0, DecodeStyle::keras);
      }
    }
  };
  static const Tables tables;
  return style == DecodeStyle::keras ? tables.keras : tables.tf;
}

}  // namespace image_detail
}  // namespace featx
