// libFuzzer harness: decode_image_memory with libjpeg-turbo for JPEG (link
// -ljpeg). See fuzz_image.hpp for the input layout.
#ifndef FEATX_WITH_LIBJPEG
#define FEATX_WITH_LIBJPEG 1
#endif
#include "fuzz_image.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return featx_fuzz::fuzz_image(data, size);
}
