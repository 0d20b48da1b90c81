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
// Configuration macros (define before including):
//   FEATX_NO_EXCEPTIONS       drop the throwing convenience layer below
//   FEATX_STB_IMAGE_EXTERNAL  you compile stb_image yourself; featx only declares it
//   FEATX_NO_IMAGE            leave out image decoding (no stb_image at all)
//   FEATX_WITH_LIBJPEG        decode JPEG with libjpeg-turbo as TF does (link -ljpeg)
//
// Dependencies: FlatBuffers 2.0.8 headers (the generated schema header checks
// the version), stb_image (images), libjpeg-turbo (optional: TF's JPEG
// pixels; without it stb_image decodes JPEG), OpenMP (optional: without it,
// one thread).
#pragma once

#include "featx/extractor.hpp"
#include "featx/head.hpp"
#include "featx/labels.hpp"
#include "featx/layer_names.hpp"
#include "featx/model.hpp"
#include "featx/npy.hpp"
#include "featx/plan.hpp"
#include "featx/status.hpp"
#ifndef FEATX_NO_IMAGE
#include "featx/image.hpp"
#endif

#ifndef FEATX_NO_EXCEPTIONS
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
