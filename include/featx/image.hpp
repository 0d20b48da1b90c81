// featx/image.hpp: decode an image file and prepare it the way TF does.
//
//   decode_image_file / decode_image_memory   JPEG, PNG, BMP, GIF (first
//       frame), TGA via stb_image, binary PNM (P5/P6) by featx itself
//       -> float RGB in [0, 1], HWC.
//   central_crop       tf.image.central_crop.
//   resize_bilinear    tf.image.resize (TF2 default: bilinear, half-pixel
//                      centres, no antialias).
//   load_image         decode -> optional central crop -> resize.
//
// Pixel conversion follows tf.image.convert_image_dtype: 8-bit x -> x * (1/255)
// and 16-bit x (PNG) -> x * (1/65535), the scale rounded to float32 first and
// the product taken in float32, as TF's multiply does; PNM uses 1/maxval.
// Grey becomes R=G=B. An alpha channel is dropped, not composited onto any
// background (as tf.io.decode_png(channels=3) does).
//
// Untrusted input: stb_image is not hardened against malicious files. featx
// reads the header first (stbi_info) and refuses images wider or taller than
// FEATX_MAX_IMAGE_SIDE or with more than FEATX_MAX_IMAGE_PIXELS pixels before
// stb allocates anything, rejects truncated files that stb would pad
// silently (detail/image_completeness.hpp), and never lets stb open files.
// Still, decode images from hostile sources in a sandboxed process.
//
// How stb_image is compiled in (and how to supply your own copy): see
// featx/detail/stb_image.hpp.
#pragma once

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "featx/detail/image_completeness.hpp"
#include "featx/detail/pnm.hpp"
#include "featx/detail/stb_image.hpp"
#include "featx/file.hpp"
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

namespace featx {

// An image as float RGB in [0, 1], height x width x 3, row-major (HWC).
struct Image {
  int height = 0, width = 0;
  std::vector<float> rgb;
};

namespace image_detail {

constexpr int64_t kMaxPixels = FEATX_MAX_IMAGE_PIXELS;

inline bool well_formed(const Image& im) {
  return im.height > 0 && im.width > 0 &&
         im.rgb.size() == static_cast<size_t>(im.height) * static_cast<size_t>(im.width) * 3;
}

inline std::string stb_reason() {
  const char* r = stbi_failure_reason();
  return r != nullptr ? r : "unknown error";
}

// Rejects zero-size and oversized images by their header.
inline Status check_size(const std::string& name, int64_t w, int64_t h) {
  if (w <= 0 || h <= 0)
    return corrupt(name + ": zero-size image (" + std::to_string(w) + "x" + std::to_string(h) + ")");
  if (w > FEATX_MAX_IMAGE_SIDE || h > FEATX_MAX_IMAGE_SIDE || w * h > kMaxPixels)
    return unsupported(name + ": image too large (" + std::to_string(w) + "x" + std::to_string(h) +
                       "; limits " + std::to_string(FEATX_MAX_IMAGE_SIDE) + " per side, " +
                       std::to_string(kMaxPixels) + " pixels)");
  return Status::Ok();
}

// tf.image.convert_image_dtype: cast to float32, multiply by float32(1/max).
template <typename T>
inline void to_unit_float(const T* src, size_t count, double max_value, float* dst) {
  const float scale = static_cast<float>(1.0 / max_value);
  for (size_t i = 0; i < count; ++i) dst[i] = static_cast<float>(src[i]) * scale;
}

// Binary PNM (see detail/pnm.hpp), scaled by 1/maxval like the formats
// above are by 1/255 and 1/65535.
inline Status decode_pnm(const uint8_t* data, size_t size, const std::string& name, int* width,
                         int* height, std::vector<float>* rgb) {
  PnmHeader ph;
  std::string error;
  if (!parse_pnm_header(data, size, &ph, &error)) return corrupt(name + ": bad PNM header: " + error);
  FEATX_RETURN_IF_ERROR(check_size(name, ph.width, ph.height));
  const size_t bytes_per_sample = ph.maxval > 255 ? 2 : 1;
  const size_t pixels = size_t(ph.width) * size_t(ph.height);
  const size_t samples = pixels * size_t(ph.channels);
  if (size - ph.data_offset < samples * bytes_per_sample)
    return corrupt(name + ": truncated PNM (pixel data cut short)");
  const uint8_t* p = data + ph.data_offset;
  const float scale = static_cast<float>(1.0 / ph.maxval);
  rgb->resize(pixels * 3);
  for (size_t i = 0; i < samples; ++i) {
    const uint32_t v = bytes_per_sample == 2 ? (uint32_t(p[2 * i]) << 8 | p[2 * i + 1]) : p[i];
    if (v > ph.maxval) {
      rgb->clear();
      return corrupt(name + ": PNM sample " + std::to_string(v) + " exceeds maxval " +
                     std::to_string(ph.maxval));
    }
    const float f = static_cast<float>(v) * scale;
    if (ph.channels == 3) {
      (*rgb)[i] = f;
    } else {
      float* o = rgb->data() + 3 * i;
      o[0] = o[1] = o[2] = f;
    }
  }
  *width = ph.width;
  *height = ph.height;
  return Status::Ok();
}

}  // namespace image_detail

// Decodes an image held in memory. `name` labels error messages.
inline Status decode_image_memory(const uint8_t* data, size_t size, const std::string& name,
                                  Image* out) {
  using namespace image_detail;
  out->height = out->width = 0;
  out->rgb.clear();
  if (data == nullptr && size != 0) return invalid_argument(name + ": null data pointer");
  if (size == 0) return corrupt(name + ": empty file");
  if (size > static_cast<size_t>(INT_MAX))  // stb takes an int length
    return unsupported(name + ": file too large to decode (" + std::to_string(size) + " bytes)");
  const int len = static_cast<int>(size);

  if (is_pnm(data, size)) {
    int w = 0, h = 0;
    std::vector<float> rgb;
    FEATX_RETURN_IF_ERROR(decode_pnm(data, size, name, &w, &h, &rgb));
    out->height = h;
    out->width = w;
    out->rgb = std::move(rgb);
    return Status::Ok();
  }

  // Header only: validate the size before stb allocates the pixels.
  int w = 0, h = 0, channels = 0;
  if (!stbi_info_from_memory(data, len, &w, &h, &channels))
    return corrupt(name + ": not a supported image (stb_image: " + stb_reason() + ")");
  FEATX_RETURN_IF_ERROR(check_size(name, w, h));
  if (const char* format = truncated_format(data, size))
    return corrupt(name + ": truncated " + format + " (data cut short)");

  // 3 channels requested: grey is replicated, alpha dropped (see top).
  int dw = 0, dh = 0, file_channels = 0;
  std::vector<float> rgb;
  if (stbi_is_16_bit_from_memory(data, len)) {
    stbi_us* px = stbi_load_16_from_memory(data, len, &dw, &dh, &file_channels, 3);
    if (px == nullptr) return corrupt(name + ": cannot decode (stb_image: " + stb_reason() + ")");
    if (dw == w && dh == h) {
      rgb.resize(size_t(w) * size_t(h) * 3);
      to_unit_float(px, rgb.size(), 65535.0, rgb.data());
    }
    stbi_image_free(px);
  } else {
    stbi_uc* px = stbi_load_from_memory(data, len, &dw, &dh, &file_channels, 3);
    if (px == nullptr) return corrupt(name + ": cannot decode (stb_image: " + stb_reason() + ")");
    if (dw == w && dh == h) {
      rgb.resize(size_t(w) * size_t(h) * 3);
      to_unit_float(px, rgb.size(), 255.0, rgb.data());
    }
    stbi_image_free(px);
  }
  // The header and the decoder must agree, or the limits above meant nothing.
  if (dw != w || dh != h)
    return corrupt(name + ": decoded size " + std::to_string(dw) + "x" + std::to_string(dh) +
                   " differs from the header's " + std::to_string(w) + "x" + std::to_string(h));
  out->height = h;
  out->width = w;
  out->rgb = std::move(rgb);
  return Status::Ok();
}

// Reads and decodes an image file (featx reads the bytes; stb never opens files).
inline Status decode_image_file(const std::string& path, Image* out) {
  out->height = out->width = 0;
  out->rgb.clear();
  std::vector<uint8_t> bytes;
  FEATX_RETURN_IF_ERROR(read_file(path, &bytes, static_cast<uint64_t>(INT_MAX)));
  return decode_image_memory(bytes.data(), bytes.size(), path, out);
}

namespace image_detail {

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

// One output coordinate's source rows (or columns) and blend weight.
struct Interp {
  int64_t lower, upper;
  float lerp;
};

// Mirrors TF's compute_interpolation_weights with HalfPixelScaler
// (tensorflow/core/kernels/image/resize_bilinear_op.cc, image_resizer_state.h):
//   scale = float(in_size) / float(out_size)
//   in    = (float(i) + 0.5f) * scale - 0.5f
//   lower = max(floor(in), 0), upper = min(ceil(in), in_size - 1),
//   lerp  = in - floor(in)
// all in float32. Where in < 0 (or beyond the last pixel) lower == upper, so
// the lerp value is irrelevant: this is the same as clamping in to >= 0 first.
inline std::vector<Interp> interpolation(int out_size, int in_size) {
  std::vector<Interp> v(static_cast<size_t>(out_size));
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  for (int i = 0; i < out_size; ++i) {
    const float in = rounded((static_cast<float>(i) + 0.5f) * scale) - 0.5f;
    const float in_f = std::floor(in);
    const int64_t last = in_size - 1;
    v[size_t(i)].lower = std::min(std::max(static_cast<int64_t>(in_f), int64_t(0)), last);
    v[size_t(i)].upper = std::min(static_cast<int64_t>(std::ceil(in)), last);
    v[size_t(i)].lerp = in - in_f;
  }
  return v;
}

// TF's compute_lerp, same operation order so results match bit for bit
// when neither side contracts the expressions into FMAs (TF's own build
// flags decide that for TF; within 1 ulp either way).
inline float lerp2d(float tl, float tr, float bl, float br, float xl, float yl) {
  const float top = tl + (tr - tl) * xl;
  const float bottom = bl + (br - bl) * xl;
  return top + (bottom - top) * yl;
}

}  // namespace image_detail

// Resizes like TF2's tf.image.resize(images, [out_h, out_w]) with its
// defaults (method=bilinear, antialias=False, i.e. ResizeBilinear with
// half_pixel_centers=True): up, down, any aspect. Computed in float32 like
// TF's CPU kernel, which also computes source coordinates in float32, so
// this matches TF more closely than a double-precision version would.
// Same size returns an exact copy. `out` may alias `in`. If `in` is
// malformed or out_h/out_w < 1, *out becomes an empty 0x0 image.
inline void resize_bilinear(const Image& in, int out_h, int out_w, Image* out) {
  using namespace image_detail;
  if (!well_formed(in) || out_h < 1 || out_w < 1) {
    out->height = out->width = 0;
    out->rgb.clear();
    return;
  }
  if (out_h == in.height && out_w == in.width) {
    if (out != &in) *out = in;
    return;
  }
  const std::vector<Interp> ys = interpolation(out_h, in.height);
  const std::vector<Interp> xs = interpolation(out_w, in.width);
  std::vector<float> dst(size_t(out_h) * size_t(out_w) * 3);
  const size_t row = size_t(in.width) * 3;
  float* o = dst.data();
  for (int y = 0; y < out_h; ++y) {
    const Interp& iy = ys[size_t(y)];
    const float* top = in.rgb.data() + size_t(iy.lower) * row;
    const float* bot = in.rgb.data() + size_t(iy.upper) * row;
    for (int x = 0; x < out_w; ++x) {
      const Interp& ix = xs[size_t(x)];
      const size_t l = size_t(ix.lower) * 3, u = size_t(ix.upper) * 3;
      for (size_t c = 0; c < 3; ++c)
        *o++ = lerp2d(top[l + c], top[u + c], bot[l + c], bot[u + c], ix.lerp, iy.lerp);
    }
  }
  out->height = out_h;
  out->width = out_w;
  out->rgb = std::move(dst);
}

namespace image_detail {

inline int crop_start(int size, double fraction) {
  const double s = size;
  return static_cast<int>((s - rounded(s * fraction)) / 2);
}

}  // namespace image_detail

// tf.image.central_crop(image, fraction) for fraction in (0, 1]. TF
// (python/ops/image_ops_impl.py) computes, for static shapes in Python floats
// (float64) and for dynamic ones in float64 tensors:
//   start = int((size - size * fraction) / 2)    (truncation; the value is >= 0)
//   crop  = size - 2 * start                      (not round(size * fraction))
// and returns the image unchanged when fraction == 1. fraction is a double
// here because TF's arithmetic is float64: 0.8 and 0.8f give different crops
// of a 10-pixel side (start 1 vs 0). `out` may alias `in`.
inline Status central_crop(const Image& in, double fraction, Image* out) {
  using namespace image_detail;
  if (!(fraction > 0.0 && fraction <= 1.0))  // also rejects NaN
    return invalid_argument("central_crop: fraction " + std::to_string(fraction) +
                            " is outside (0, 1]");
  if (!well_formed(in)) return invalid_argument("central_crop: empty or malformed image");
  if (fraction == 1.0) {
    if (out != &in) *out = in;
    return Status::Ok();
  }
  const int top = crop_start(in.height, fraction);
  const int left = crop_start(in.width, fraction);
  const int h = in.height - 2 * top, w = in.width - 2 * left;  // >= 1 since start < size / 2
  std::vector<float> dst(size_t(h) * size_t(w) * 3);
  for (int y = 0; y < h; ++y) {
    const float* src = in.rgb.data() + (size_t(top + y) * size_t(in.width) + size_t(left)) * 3;
    std::memcpy(dst.data() + size_t(y) * size_t(w) * 3, src, size_t(w) * 3 * sizeof(float));
  }
  out->height = h;
  out->width = w;
  out->rgb = std::move(dst);
  return Status::Ok();
}

struct PreprocessOptions {
  int height = 224, width = 224;  // network input size
  // tf.image.central_crop fraction applied before resizing; 1 = no crop.
  // (Some TF-slim evaluation pipelines use 0.875.) double: see central_crop.
  double central_crop = 1.0;
};

// decode -> central crop (if < 1) -> resize_bilinear to height x width.
inline Status load_image(const std::string& path, const PreprocessOptions& opt, Image* out) {
  out->height = out->width = 0;
  out->rgb.clear();
  if (opt.height < 1 || opt.width < 1 || opt.height > FEATX_MAX_IMAGE_SIDE ||
      opt.width > FEATX_MAX_IMAGE_SIDE)
    return invalid_argument(path + ": bad target size " + std::to_string(opt.height) + "x" +
                            std::to_string(opt.width));
  if (!(opt.central_crop > 0.0 && opt.central_crop <= 1.0))
    return invalid_argument(path + ": central crop fraction " + std::to_string(opt.central_crop) +
                            " is outside (0, 1]");
  Image img;
  FEATX_RETURN_IF_ERROR(decode_image_file(path, &img));
  if (opt.central_crop < 1.0) FEATX_RETURN_IF_ERROR(central_crop(img, opt.central_crop, &img));
  resize_bilinear(img, opt.height, opt.width, out);
  return Status::Ok();
}

}  // namespace featx
