// libFuzzer harness: decode_image_memory with stb_image for JPEG (and every
// other format stb or featx decodes). See fuzz_image.hpp for the input layout.
#undef FEATX_WITH_LIBJPEG
#include "fuzz_image.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return featx_fuzz::fuzz_image(data, size);
}
