// featx/image.hpp: decode an image file and prepare it the way TF (or Keras)
// does. Umbrella over featx/image/, one concept per header:
//
//   core.hpp               Image (float RGB in [0, 1], HWC), size limits,
//                          DecodeStyle (TF's or Keras's conventions)
//   decode.hpp             decode_image_file / decode_image_memory: JPEG via
//                          libjpeg-turbo like TF (FEATX_WITH_LIBJPEG) or
//                          stb_image; PNG, BMP, GIF, TGA via stb_image; PNM
//   jpeg_turbo.hpp         the libjpeg decoder (TF's flags, CMYK, truncation)
//   pixel_view.hpp         8-bit decoded pixels and windows on them (load_image
//                          resizes from 8-bit samples; internal)
//   central_crop.hpp       tf.image.central_crop
//   resize_bilinear.hpp    tf.image.resize (bilinear, half-pixel, no antialias)
//   resize_antialias.hpp   tf.image.resize(antialias=True) (ScaleAndTranslate)
//   resize_nearest_pil.hpp PIL's resize NEAREST (keras.utils.load_img)
//   preprocess.hpp         Preset (tf, tf-antialias, keras, fast),
//                          PreprocessOptions, load_image
#pragma once

#include "featx/image/central_crop.hpp"
#include "featx/image/core.hpp"
#include "featx/image/decode.hpp"
#include "featx/image/jpeg_turbo.hpp"
#include "featx/image/pixel_view.hpp"
#include "featx/image/preprocess.hpp"
#include "featx/image/resize_antialias.hpp"
#include "featx/image/resize_bilinear.hpp"
#include "featx/image/resize_nearest_pil.hpp"
