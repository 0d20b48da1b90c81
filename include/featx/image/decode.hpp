// featx/image/decode.hpp: an image file -> float RGB in [0, 1], HWC.
//
//   JPEG   libjpeg-turbo as TensorFlow uses it (featx/image/jpeg_turbo.hpp)
//          when FEATX_WITH_LIBJPEG is defined, otherwise stb_image;
//   PNG, BMP, GIF (first frame), TGA   stb_image;
//   binary PNM (P5/P6)                 featx itself (detail/pnm.hpp).
//
// Pixel conversion follows tf.image.convert_image_dtype: 8-bit x -> x * (1/255),
// the scale rounded to float32 first and the product taken in float32, as
// TF's multiply does; 16-bit PNGs keep their high byte, as tf.io.decode_png's
// default dtype=uint8 does (see decode_stb); PNM uses 1/maxval.
// DecodeStyle::keras divides instead (x / 255 in float32, what Keras users
// write after load_img). Grey becomes R=G=B. An alpha channel is dropped,
// not composited onto any background (as tf.io.decode_png(channels=3) does).
// These formats are lossless: stb, TF and PIL give the same samples.
//
// Untrusted input: stb_image is not hardened against malicious files. featx
// reads the header first and refuses images larger than DecodeOptions::limits
// (at most FEATX_MAX_IMAGE_SIDE a side and FEATX_MAX_IMAGE_PIXELS pixels,
// core.hpp) before any decoder allocates pixels, rejects truncated files that
// stb would pad silently (detail/image_completeness.hpp), refuses the JPEG
// structures stb_image reads out of bounds on (detail/stb_jpeg_check.hpp),
// and never lets stb open files.
// Still, decode images from hostile sources in a sandboxed process.
//
// How stb_image is compiled in (and how to supply your own copy): see
// featx/detail/stb_image.hpp.
#pragma once

#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "featx/detail/allocator_hooks.hpp"
#include "featx/detail/image_completeness.hpp"
#include "featx/detail/pnm.hpp"
#include "featx/detail/stb_image.hpp"
#include "featx/detail/stb_jpeg_check.hpp"
#include "featx/file.hpp"
#include "featx/image/core.hpp"
#include "featx/image/jpeg_turbo.hpp"
#include "featx/image/pixel_view.hpp"
#include "featx/status.hpp"

namespace featx {

struct DecodeOptions {
  DecodeStyle style = DecodeStyle::tensorflow;
  // JPEG through libjpeg only: decode at 1/1, 1/2, 1/4 or 1/8 of the size in
  // the DCT (tf.io.decode_jpeg's `ratio`). stb and other formats ignore it.
  int jpeg_scale_denom = 1;
  // Checked on the header before any decoder allocates pixels (core.hpp).
  ImageLimits limits;
};

// The JPEG decoder compiled in, as it runs for the default (tf) preset.
inline const char* jpeg_decoder_name() {
#ifdef FEATX_WITH_LIBJPEG
  return libjpeg_decoder_name(DecodeStyle::tensorflow);
#else
  return "stb_image";
#endif
}

namespace image_detail {

inline std::string stb_reason() {
  const char* r = stbi_failure_reason();
  return r != nullptr ? r : "unknown error";
}

inline bool is_jpeg(const uint8_t* d, size_t n) { return n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF; }

// Binary PNM (see detail/pnm.hpp), scaled by maxval like the formats
// above are by 255 and 65535.
inline Status decode_pnm(const uint8_t* data, size_t size, const std::string& name, DecodeStyle style,
                         const ImageLimits& limits, int* width, int* height, std::vector<float>* rgb) {
  PnmHeader ph;
  std::string error;
  if (!parse_pnm_header(data, size, &ph, &error)) return corrupt(name + ": bad PNM header: " + error);
  FEATX_RETURN_IF_ERROR(check_size(name, ph.width, ph.height, limits));
  const size_t bytes_per_sample = ph.maxval > 255 ? 2 : 1;
  const size_t pixels = size_t(ph.width) * size_t(ph.height);
  const size_t samples = pixels * size_t(ph.channels);
  if (size - ph.data_offset < samples * bytes_per_sample)
    return corrupt(name + ": truncated PNM (pixel data cut short)");
  const uint8_t* p = data + ph.data_offset;
  rgb->resize(pixels * 3);
  for (size_t i = 0; i < samples; ++i) {
    const uint32_t v = bytes_per_sample == 2 ? (uint32_t(p[2 * i]) << 8 | p[2 * i + 1]) : p[i];
    if (v > ph.maxval) {
      rgb->clear();
      return corrupt(name + ": PNM sample " + std::to_string(v) + " exceeds maxval " +
                     std::to_string(ph.maxval));
    }
    const float f = unit_float(v, ph.maxval, style);
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

// Into *px: stb's own buffer (8-bit files) or the high bytes of a 16-bit PNG.
inline Status decode_stb(const uint8_t* data, size_t size, const std::string& name, DecodeStyle style,
                         const ImageLimits& limits, Pixels8* px, Image* flt) {
  if (size > static_cast<size_t>(INT_MAX))  // stb takes an int length
    return unsupported(name + ": file too large to decode (" + std::to_string(size) + " bytes)");
  const int len = static_cast<int>(size);
  // JPEGs this stb_image would read or write out of bounds on
  // (detail/stb_jpeg_check.hpp); its header reader too.
  if (const char* why = detail::stb_jpeg_refusal(data, size))
    return corrupt(name + ": corrupt JPEG: " + why + " (refused before stb_image decodes it)");
  // Header only: validate the size before stb allocates the pixels.
  int w = 0, h = 0, channels = 0;
  if (!stbi_info_from_memory(data, len, &w, &h, &channels)) {
    // stb refuses a PNG whose header states more than it decodes (2^30
    // bytes) as "not of any known type": say what the header states.
    if (size >= 24 && std::memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0 && std::memcmp(data + 12, "IHDR", 4) == 0) {
      FEATX_RETURN_IF_ERROR(check_size(name, get_be32(data + 16), get_be32(data + 20), limits));
    }
    return corrupt(name + ": not a supported image (stb_image: " + stb_reason() + ")");
  }
  FEATX_RETURN_IF_ERROR(check_size(name, w, h, limits));
  if (const char* format = truncated_format(data, size))
    return corrupt(name + ": truncated " + format + " (data cut short)");

  // 3 channels requested: grey is replicated, alpha dropped (see top).
  int dw = 0, dh = 0, file_channels = 0;
  if (stbi_is_16_bit_from_memory(data, len)) {
    // tf.io.decode_png / decode_image default to dtype=uint8, which keeps
    // each sample's high byte (libpng's png_set_strip_16); PIL (the keras
    // style) keeps the high byte of 16-bit RGB too, but opens 16-bit grey as
    // 32-bit integers that load_img's convert('RGB') clips at 255.
    stbi_us* samples = stbi_load_16_from_memory(data, len, &dw, &dh, &file_channels, 3);
    if (samples == nullptr) return corrupt(name + ": cannot decode (stb_image: " + stb_reason() + ")");
    if (dw == w && dh == h) {
      const size_t n = size_t(w) * size_t(h) * 3;
      uint8_t* bytes = static_cast<uint8_t*>(detail::allocate_bytes(n));
      if (bytes == nullptr) {
        stbi_image_free(samples);
        return Status(StatusCode::internal, name + ": out of memory decoding the 16-bit PNG");
      }
      const bool clip_grey = style == DecodeStyle::keras && file_channels == 1;
      for (size_t i = 0; i < n; ++i)
        bytes[i] = clip_grey ? uint8_t(samples[i] < 255 ? samples[i] : 255) : uint8_t(samples[i] >> 8);
      px->reset(bytes, detail::free_bytes, dh, dw);
      px->decoder = clip_grey ? "stb_image (16-bit grey clipped at 255, as PIL)"
                              : "stb_image (16-bit, high byte, as tf.io.decode_png)";
    }
    stbi_image_free(samples);
  } else {
    stbi_uc* samples = stbi_load_from_memory(data, len, &dw, &dh, &file_channels, 3);
    if (samples == nullptr) return corrupt(name + ": cannot decode (stb_image: " + stb_reason() + ")");
    px->reset(samples, stbi_image_free, dh, dw);
    px->decoder = "stb_image";
  }
  // The header and the decoder must agree, or the limits above meant nothing.
  if (dw != w || dh != h) {
    px->reset();
    clear(flt);
    return corrupt(name + ": decoded size " + std::to_string(dw) + "x" + std::to_string(dh) +
                   " differs from the header's " + std::to_string(w) + "x" + std::to_string(h));
  }
  return Status::Ok();
}

// Decodes to 8-bit samples where the decoder makes them (*px: JPEG, 8-bit
// PNG, BMP, GIF, TGA) and straight to float otherwise (*flt: 16-bit PNG,
// PNM); exactly one of the two is filled on success.
inline Status decode_samples(const uint8_t* data, size_t size, const std::string& name,
                             const DecodeOptions& options, Pixels8* px, Image* flt) {
  px->reset();
  clear(flt);
  if (data == nullptr && size != 0) return invalid_argument(name + ": null data pointer");
  if (size == 0) return corrupt(name + ": empty file");
  if (size > options.limits.file_bytes())
    return unsupported(name + ": file too large to decode (" + std::to_string(size) + " bytes; limit " +
                       std::to_string(options.limits.file_bytes()) + ")");
  if (is_pnm(data, size)) {
    int w = 0, h = 0;
    FEATX_RETURN_IF_ERROR(decode_pnm(data, size, name, options.style, options.limits, &w, &h, &flt->rgb));
    flt->height = h;
    flt->width = w;
    flt->decoder = "featx-pnm";
    return Status::Ok();
  }
  // Refused in every build: otherwise a libjpeg build would hand this JPEG
  // to stb after all (is_jpeg wants FF D8 FF).
  if (detail::stb_jpeg_fill_bytes_before_soi(data, size))
    return corrupt(name + ": not a JPEG TensorFlow reads: 0xFF fill bytes before the SOI marker");
#ifdef FEATX_WITH_LIBJPEG
  // Files TF's decode_image takes for JPEG (by the same three bytes).
  if (is_jpeg(data, size))
    return decode_jpeg_pixels(data, size, name, options.style, static_cast<unsigned>(options.jpeg_scale_denom), px,
                              options.limits);
#endif
  return decode_stb(data, size, name, options.style, options.limits, px, flt);
}

}  // namespace image_detail

// Decodes an image held in memory. `name` labels error messages.
inline Status decode_image_memory(const uint8_t* data, size_t size, const std::string& name,
                                  const DecodeOptions& options, Image* out) {
  using namespace image_detail;
  Pixels8 px;
  FEATX_RETURN_IF_ERROR(decode_samples(data, size, name, options, &px, out));
  if (px.data() == nullptr) return Status::Ok();  // decoded to float already
  const float* unit = unit_table(options.style);
  out->rgb.resize(size_t(px.height()) * size_t(px.width()) * 3);
  for (size_t i = 0; i < out->rgb.size(); ++i) out->rgb[i] = unit[px.data()[i]];
  out->height = px.height();
  out->width = px.width();
  out->decoder = px.decoder;
  out->jpeg_warnings = px.jpeg_warnings;
  return Status::Ok();
}

inline Status decode_image_memory(const uint8_t* data, size_t size, const std::string& name, Image* out) {
  return decode_image_memory(data, size, name, DecodeOptions{}, out);
}

// Reads and decodes an image file (featx reads the bytes; stb never opens files).
inline Status decode_image_file(const std::string& path, const DecodeOptions& options, Image* out) {
  image_detail::clear(out);
  std::vector<uint8_t> bytes;
  FEATX_RETURN_IF_ERROR(read_file(path, &bytes, options.limits.file_bytes()));
  return decode_image_memory(bytes.data(), bytes.size(), path, options, out);
}

inline Status decode_image_file(const std::string& path, Image* out) {
  return decode_image_file(path, DecodeOptions{}, out);
}

}  // namespace featx
