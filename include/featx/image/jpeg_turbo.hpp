// featx/image/jpeg_turbo.hpp: JPEG decoding through libjpeg(-turbo), the way
// TensorFlow's tf.io.decode_jpeg / decode_image(channels=3) does it
// (tensorflow/core/lib/jpeg/jpeg_mem.cc, jpeg_handle.cc).
//
// Compiled in when FEATX_WITH_LIBJPEG is defined (link -ljpeg; CMake's
// featx target does both when it finds libjpeg). Without it featx decodes
// JPEG with stb_image, whose pixels differ from TF's.
//
// What is matched, per TensorFlow's defaults:
//   - dct_method '' = JDCT_IFAST (the Keras/PIL path uses JDCT_ISLOW),
//     do_fancy_upsampling = TRUE, output JCS_RGB: libjpeg converts YCbCr
//     and replicates greyscale itself;
//   - CMYK and YCCK files are decoded as JCS_CMYK, then TF's integer formula
//     r = c * k / 255 (Adobe marker: values stored inverted) or
//     r = (255 - c) * (255 - k) / 255 (no marker), truncating;
//   - progressive and arithmetic-coded files decode; EXIF orientation is
//     ignored (libjpeg does not read it, neither does TF);
//   - reading past the end of the data is an error (TF's
//     try_recover_truncated = false, acceptable_fraction = 1): a file cut
//     anywhere, even just its EOI marker, is refused, where libjpeg's own
//     jpeg_mem_src would pad it with a fake EOI and decode grey rows;
//   - data libjpeg only warns about ("Corrupt JPEG data: N extraneous bytes
//     before marker", a premature end of an entropy segment) decodes anyway,
//     as in TF; the count lands in Image::jpeg_warnings, nothing is printed.
// Beyond TF: the size limits of featx/image/core.hpp are checked on the
// header before libjpeg allocates anything, and a progressive file with more
// than ImageLimits::max_jpeg_scans scans is refused (a decompression-time bomb).
//
// libjpeg reports fatal errors through a callback that must not return; it
// longjmps back to run_decode(), which owns no C++ object with a destructor,
// and all libjpeg state lives in a DecodeJob outside that frame (locals
// changed after setjmp are indeterminate after the longjmp). No exceptions.
#pragma once

#ifdef FEATX_WITH_LIBJPEG

#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <cstdio>  // jpeglib.h uses FILE and size_t without including them
#include <cstdlib>
#include <string>
#include <vector>

#include <jpeglib.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "featx/detail/allocator_hooks.hpp"
#include "featx/image/core.hpp"
#include "featx/image/pixel_view.hpp"
#include "featx/status.hpp"

// Progressive JPEGs may hold any number of scans, each a full pass over the
// coefficients; legitimate files have about 10.

#define FEATX_JPEG_STRINGIFY2(x) #x
#define FEATX_JPEG_STRINGIFY(x) FEATX_JPEG_STRINGIFY2(x)
#ifdef LIBJPEG_TURBO_VERSION
#define FEATX_LIBJPEG_NAME "libjpeg-turbo " FEATX_JPEG_STRINGIFY(LIBJPEG_TURBO_VERSION)
#else
// IJG libjpeg: its IFAST IDCT and upsampling differ from libjpeg-turbo's, so
// pixels will not match TF's exactly.
#define FEATX_LIBJPEG_NAME "libjpeg " FEATX_JPEG_STRINGIFY(JPEG_LIB_VERSION) " (not libjpeg-turbo)"
#endif

namespace featx {
namespace jpeg_detail {

enum class JobResult { ok, libjpeg_error, truncated, no_image, too_large, too_many_scans, out_of_memory };

struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
};

// One decode: inputs, libjpeg's state and the results, in the caller's frame.
struct DecodeJob {
  const unsigned char* data = nullptr;
  size_t size = 0;
  J_DCT_METHOD dct_method = JDCT_IFAST;
  unsigned scale_denom = 1;  // 1, 2, 4 or 8: DCT-domain downscaling
  bool header_only = false;
  ImageLimits limits;

  jpeg_decompress_struct cinfo;
  ErrorManager err;
  jpeg_source_mgr source;
  jpeg_progress_mgr progress;

  JobResult result = JobResult::ok;
  char message[JMSG_LENGTH_MAX] = {};
  unsigned image_width = 0, image_height = 0;    // from the header
  unsigned width = 0, height = 0, channels = 0;  // decoded; channels 3 (RGB) or 4 (CMYK)
  bool adobe_marker = false;
  long warnings = 0;
  unsigned char* pixels = nullptr;  // rows from detail::allocate_bytes; the caller frees
};

inline DecodeJob* job_of(j_common_ptr cinfo) { return static_cast<DecodeJob*>(cinfo->client_data); }

// libjpeg's error_exit: keep the first reason, unwind to run_decode's setjmp.
inline void on_error(j_common_ptr cinfo) {
  DecodeJob* job = job_of(cinfo);
  if (job->result == JobResult::ok) {
    job->result = JobResult::libjpeg_error;
    (*cinfo->err->format_message)(cinfo, job->message);
  }
  std::longjmp(job->err.jump, 1);
}

inline void fail(j_common_ptr cinfo, JobResult why) {
  DecodeJob* job = job_of(cinfo);
  if (job->result == JobResult::ok) job->result = why;
  (*cinfo->err->error_exit)(cinfo);
}

// Warnings are counted in num_warnings by libjpeg; a library prints nothing.
inline void on_output_message(j_common_ptr) {}

inline void on_progress(j_common_ptr cinfo) {
  if (reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number > job_of(cinfo)->limits.jpeg_scans())
    fail(cinfo, JobResult::too_many_scans);
}

// The source is the whole file in memory: libjpeg asks for more only when it
// needs bytes past the end, which TF treats as an error.
inline void source_init(j_decompress_ptr) {}
inline void source_term(j_decompress_ptr) {}
inline boolean source_fill(j_decompress_ptr cinfo) {
  fail(reinterpret_cast<j_common_ptr>(cinfo), JobResult::truncated);
  return FALSE;
}
inline void source_skip(j_decompress_ptr cinfo, long count) {
  jpeg_source_mgr* src = cinfo->src;
  if (count <= 0) return;
  if (static_cast<unsigned long>(count) > src->bytes_in_buffer) {
    src->next_input_byte += src->bytes_in_buffer;
    src->bytes_in_buffer = 0;
    source_fill(cinfo);
    return;
  }
  src->next_input_byte += count;
  src->bytes_in_buffer -= static_cast<size_t>(count);
}

// The decoded rows' buffer (freed with detail::free_bytes). Large ones are 2 MiB
// aligned and marked for transparent huge pages: first-touch page faults
// were most of the time of a 12 MP decode on a VM.
inline unsigned char* allocate_pixels(size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr size_t kHuge = size_t(2) << 20;
  if (bytes >= 4 * kHuge) {
    const size_t whole = (bytes + kHuge - 1) / kHuge * kHuge;
    if (void* p = detail::allocate_bytes(whole, kHuge)) {
      (void)madvise(p, whole, MADV_HUGEPAGE);  // advice only: fine if refused
      return static_cast<unsigned char*>(p);
    }
  }
#endif
  return static_cast<unsigned char*>(detail::allocate_bytes(bytes));
}

// Runs libjpeg on job->data. Returns false with job->result set on failure.
inline bool run_decode(DecodeJob* job) {
  jpeg_decompress_struct* const cinfo = &job->cinfo;
  cinfo->err = jpeg_std_error(&job->err.pub);
  job->err.pub.error_exit = on_error;  // the default calls exit()
  job->err.pub.output_message = on_output_message;
  cinfo->client_data = job;
  if (setjmp(job->err.jump)) {
    jpeg_destroy_decompress(cinfo);
    detail::free_bytes(job->pixels);
    job->pixels = nullptr;
    return false;
  }
  jpeg_create_decompress(cinfo);  // keeps err and client_data
  job->source.next_input_byte = job->data;
  job->source.bytes_in_buffer = job->size;
  job->source.init_source = source_init;
  job->source.fill_input_buffer = source_fill;
  job->source.skip_input_data = source_skip;
  job->source.resync_to_restart = jpeg_resync_to_restart;
  job->source.term_source = source_term;
  cinfo->src = &job->source;

  if (jpeg_read_header(cinfo, TRUE) != JPEG_HEADER_OK) {  // tables only, no image
    job->result = JobResult::no_image;
    jpeg_destroy_decompress(cinfo);
    return false;
  }
  job->image_width = cinfo->image_width;
  job->image_height = cinfo->image_height;
  const int64_t w = cinfo->image_width, h = cinfo->image_height;
  if (!job->limits.allows(w, h)) {
    job->result = JobResult::too_large;
    jpeg_destroy_decompress(cinfo);
    return false;
  }
  if (job->header_only) {
    jpeg_destroy_decompress(cinfo);
    return true;
  }

  // TF: 4-channel files come out as CMYK and are converted by the caller.
  cinfo->out_color_space =
      cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK ? JCS_CMYK : JCS_RGB;
  cinfo->dct_method = job->dct_method;
  cinfo->do_fancy_upsampling = TRUE;
  cinfo->scale_num = 1;
  cinfo->scale_denom = job->scale_denom;
  job->progress.progress_monitor = on_progress;
  cinfo->progress = &job->progress;

  jpeg_start_decompress(cinfo);  // progressive files are read whole here
  job->width = cinfo->output_width;
  job->height = cinfo->output_height;
  job->channels = static_cast<unsigned>(cinfo->output_components);
  const size_t row_bytes = size_t(job->width) * job->channels;
  job->pixels = allocate_pixels(row_bytes * job->height);
  if (job->pixels == nullptr) {
    job->result = JobResult::out_of_memory;
    jpeg_destroy_decompress(cinfo);
    return false;
  }
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW rows[4];
    const JDIMENSION first = cinfo->output_scanline;
    const JDIMENSION n = cinfo->output_height - first < 4 ? cinfo->output_height - first : 4;
    for (JDIMENSION i = 0; i < n; ++i) rows[i] = job->pixels + size_t(first + i) * row_bytes;
    if (jpeg_read_scanlines(cinfo, rows, n) == 0) fail(reinterpret_cast<j_common_ptr>(cinfo), JobResult::truncated);
  }
  job->adobe_marker = cinfo->saw_Adobe_marker != FALSE;
  jpeg_finish_decompress(cinfo);  // reads on to EOI: a missing EOI fails here, as in TF
  job->warnings = job->err.pub.num_warnings;
  jpeg_destroy_decompress(cinfo);
  return true;
}

inline Status job_status(const DecodeJob& job, const std::string& name) {
  switch (job.result) {
    case JobResult::ok:
      return Status::Ok();
    case JobResult::truncated:
      return corrupt(name + ": truncated JPEG (data cut short)");
    case JobResult::no_image:
      return corrupt(name + ": JPEG holds no image (tables only)");
    case JobResult::too_large:
      return image_detail::check_size(name, job.image_width, job.image_height, job.limits);
    case JobResult::too_many_scans:
      return unsupported(name + ": JPEG has more than " + std::to_string(job.limits.jpeg_scans()) +
                         " progressive scans (ImageLimits::max_jpeg_scans)");
    case JobResult::out_of_memory:
      return Status(StatusCode::internal, name + ": out of memory decoding the JPEG");
    case JobResult::libjpeg_error:
      break;
  }
  return corrupt(name + ": cannot decode JPEG (libjpeg: " + job.message + ")");
}

// TF's CMYK -> RGB (jpeg_mem.cc): integer arithmetic, truncating.
inline uint8_t tf_cmyk_channel(unsigned v, unsigned k, bool adobe) {
  return static_cast<uint8_t>(adobe ? (k * v) / 255 : (255 - k) * (255 - v) / 255);
}

// PIL's: it reads every CMYK JPEG as Adobe-inverted ("CMYK;I") and converts
// with nk = 255 - k, r = nk - nk * c / 255 (rounded by its MULDIV255).
inline uint8_t pil_cmyk_channel(unsigned v, unsigned k) {
  const unsigned c = 255 - v, nk = k;  // k is stored inverted: 255 - (255 - k)
  const unsigned t = c * nk + 128;
  const unsigned m = ((t >> 8) + t) >> 8;
  return static_cast<uint8_t>(nk - m);  // m <= nk
}

}  // namespace jpeg_detail

// The name Image::decoder gets for a JPEG decoded by libjpeg in `style` at
// 1/scale_denom (1, 2, 4, 8).
inline const char* libjpeg_decoder_name(DecodeStyle style, unsigned scale_denom = 1) {
  if (style == DecodeStyle::keras) return FEATX_LIBJPEG_NAME " (JDCT_ISLOW, fancy upsampling)";
  switch (scale_denom) {
    case 2:
      return FEATX_LIBJPEG_NAME " (JDCT_IFAST, fancy upsampling, DCT scaled 1/2)";
    case 4:
      return FEATX_LIBJPEG_NAME " (JDCT_IFAST, fancy upsampling, DCT scaled 1/4)";
    case 8:
      return FEATX_LIBJPEG_NAME " (JDCT_IFAST, fancy upsampling, DCT scaled 1/8)";
    default:
      return FEATX_LIBJPEG_NAME " (JDCT_IFAST, fancy upsampling)";
  }
}

// Width and height from a JPEG's header (frame header parsed by libjpeg).
inline Status read_jpeg_size(const uint8_t* data, size_t size, const std::string& name, int* width,
                             int* height, const ImageLimits& limits = {}) {
  jpeg_detail::DecodeJob job;
  job.data = data;
  job.size = size;
  job.limits = limits;
  job.header_only = true;
  if (!jpeg_detail::run_decode(&job)) return jpeg_detail::job_status(job, name);
  *width = static_cast<int>(job.image_width);
  *height = static_cast<int>(job.image_height);
  return Status::Ok();
}

// Decodes a JPEG held in memory to 8-bit RGB with `style`'s IDCT and CMYK
// conversion (see featx/image/core.hpp), at 1/scale_denom of its size (1, 2,
// 4 or 8; libjpeg rounds sizes up).
inline Status decode_jpeg_pixels(const uint8_t* data, size_t size, const std::string& name, DecodeStyle style,
                                 unsigned scale_denom, image_detail::Pixels8* out, const ImageLimits& limits = {}) {
  out->reset();
  if (scale_denom != 1 && scale_denom != 2 && scale_denom != 4 && scale_denom != 8)
    return invalid_argument(name + ": JPEG scale 1/" + std::to_string(scale_denom) +
                            " is not one of 1/1, 1/2, 1/4, 1/8");
  jpeg_detail::DecodeJob job;
  job.data = data;
  job.size = size;
  job.dct_method = style == DecodeStyle::keras ? JDCT_ISLOW : JDCT_IFAST;
  job.scale_denom = scale_denom;
  job.limits = limits;
  if (!jpeg_detail::run_decode(&job)) return jpeg_detail::job_status(job, name);
  if (job.channels == 4) {  // CMYK -> RGB in place: pixel i's 3 bytes never pass pixel i's 4
    const size_t pixels = size_t(job.width) * size_t(job.height);
    unsigned char* p = job.pixels;
    for (size_t i = 0; i < pixels; ++i) {
      const unsigned char* cmyk = p + 4 * i;
      uint8_t rgb[3];
      for (int c = 0; c < 3; ++c)
        rgb[c] = style == DecodeStyle::keras ? jpeg_detail::pil_cmyk_channel(cmyk[c], cmyk[3])
                                             : jpeg_detail::tf_cmyk_channel(cmyk[c], cmyk[3], job.adobe_marker);
      p[3 * i] = rgb[0];
      p[3 * i + 1] = rgb[1];
      p[3 * i + 2] = rgb[2];
    }
  }
  out->reset(job.pixels, detail::free_bytes, static_cast<int>(job.height), static_cast<int>(job.width));
  out->decoder = libjpeg_decoder_name(style, scale_denom);
  out->jpeg_warnings = static_cast<int>(job.warnings);
  return Status::Ok();
}

}  // namespace featx

#endif  // FEATX_WITH_LIBJPEG
