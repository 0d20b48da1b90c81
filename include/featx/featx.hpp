// featx.hpp: TensorFlow Hub MobileNetV2 image feature vectors in plain C++17.
//
// One include, no ML runtime. Weights come from a .featx file made once by
// tools/export_weights.py (from a .tflite, a Keras .h5, a SavedModel or Hub).
//
//   #include <featx/featx.hpp>
//
//   std::shared_ptr<const featx::Model> model;
//   featx::Status st = featx::Model::load("mobilenet_v2.featx", &model);
//   if (!st) { fprintf(stderr, "%s\n", st.message().c_str()); return 1; }
//   featx::Image img;
//   st = featx::load_image("cat.jpg", {model->resolution(), model->resolution()}, &img);
//   featx::Extractor ex(model);              // one per thread; the Model is shared
//   featx::Tensor features;                  // (1, 1280)
//   st = ex.extract(img.rgb.data(), 1, img.height, img.width, &features);
//
// What matches TensorFlow (tested against ONNX Runtime on the same weights):
// TF SAME padding (extra row/column bottom/right), batch norm folded at load,
// ReLU6, residual adds, mean over H and W; for images tf.io.decode_jpeg's
// pixels (with libjpeg) and tf.image.resize bilinear with half-pixel centres,
// no antialias (other presets: featx/image/preprocess.hpp).
//
// Build: header-only, nothing to compile separately. Every featx function is
// inline, a template or defined in its class, and stb_image is compiled
// static into each translation unit, so any number of TUs may include featx
// and link together: there is no FEATX_IMPLEMENTATION macro to define in one
// of them (the price is compile time in each TU that includes it).
// single_include/featx/featx.hpp is this header with every featx header, the
// FlatBuffers runtime and stb_image inlined (tools/make_single_header.py).
//
// Configuration macros: define them before the first featx include, and the
// same in every TU of a program (they change inline functions):
//   FEATX_NO_EXCEPTIONS       drop the throwing convenience layer below; it is
//                             also left out when exceptions are off
//                             (-fno-exceptions). The Status API never throws;
//                             out of memory featx's allocator throws
//                             std::bad_alloc, or without exceptions prints one
//                             line and aborts (as libstdc++'s containers do).
//   FEATX_NO_IMAGE            leave out image decoding (no stb_image at all)
//   FEATX_WITH_LIBJPEG        decode JPEG with libjpeg-turbo as TF does: includes
//                             the system's <jpeglib.h> (the only header outside
//                             the compiler, libc and featx), link -ljpeg
//   FEATX_STB_IMAGE_EXTERNAL  you compile stb_image yourself; featx only declares
//                             it (also FEATX_STB_IMAGE_PATH: featx/detail/stb_image.hpp)
//   FEATX_NO_OPENMP           featx's parallel regions stay single-threaded even
//                             when the TU is built with -fopenmp (without
//                             -fopenmp they are off anyway); results do not change
//   FEATX_NO_SIMD             scalar reference kernels only: no <immintrin.h> or
//                             <arm_neon.h>, no run-time ISA choice
//   FEATX_ALIGNED_ALLOC(alignment, bytes), FEATX_FREE(ptr)
//                             allocator hooks for featx's aligned buffers and
//                             weight arena, both or neither; FEATX_MALLOC(bytes)
//                             and FEATX_REALLOC(ptr, bytes) also route stb_image
//                             (featx/detail/allocator_hooks.hpp)
//   FEATX_MAX_IMAGE_SIDE, FEATX_MAX_IMAGE_PIXELS, FEATX_MAX_JPEG_SCANS
//                             limits on untrusted images (featx/image/core.hpp,
//                             featx/image/jpeg_turbo.hpp)
//   FEATX_MAX_MODEL_BYTES, FEATX_MAX_MODEL_LAYERS
//                             defaults of ModelLimits, the bounds on untrusted
//                             model files (1 GiB, 256 layers; featx/model.hpp)
// Run-time: FEATX_ISA=scalar|avx2|avx512|neon in the environment picks the kernels.
//
// Dependencies: the compiler and its standard library; POSIX (mmap) on Linux.
// The multi-header tree also needs the FlatBuffers 2.0.8 headers (the
// generated schema header checks the version) and stb_image unless
// FEATX_NO_IMAGE; the single header carries both. Optional: libjpeg-turbo
// (TF's JPEG pixels; without it stb_image decodes JPEG), OpenMP (without it,
// one thread).
#pragma once

#include "featx/cpu_info.hpp"
#include "featx/extractor.hpp"
#include "featx/head.hpp"
#include "featx/labels.hpp"
#include "featx/layer_names.hpp"
#include "featx/model.hpp"
#include "featx/npy.hpp"
#include "featx/plan.hpp"
#include "featx/run.hpp"
#include "featx/status.hpp"
#ifndef FEATX_NO_IMAGE
#include "featx/image.hpp"
#endif

// The throwing convenience layer: only where exceptions exist.
#if defined(__cpp_exceptions) && !defined(FEATX_NO_EXCEPTIONS)
#include <stdexcept>

namespace featx {

// Thrown by the convenience layer; carries the Status.
class Error : public std::runtime_error {
 public:
  explicit Error(Status s) : std::runtime_error(s.message()), status_(std::move(s)) {}
  const Status& status() const { return status_; }

 private:
  Status status_;
};

inline void throw_if_error(const Status& s) {
  if (!s.ok()) throw Error(s);
}

// Loads a model or throws featx::Error.
inline std::shared_ptr<const Model> load_model(const std::string& path) {
  std::shared_ptr<const Model> model;
  throw_if_error(Model::load(path, &model));
  return model;
}

#ifndef FEATX_NO_IMAGE
// Decodes, resizes to the model's resolution and extracts the feature vector.
inline std::vector<float> extract_file(Extractor& extractor, const std::string& image_path) {
  Image img;
  PreprocessOptions pre;
  pre.height = pre.width = extractor.model().resolution();
  throw_if_error(load_image(image_path, pre, &img));
  Tensor t;
  throw_if_error(extractor.extract(img.rgb.data(), 1, img.height, img.width, &t));
  return t.data;
}
#endif

}  // namespace featx
#endif
