// libFuzzer harness: Model::from_memory on the bytes (a whole .featx file).
// Most mutations stop at the payload's CRC-32C; fuzz_model_crc.cpp gets past it.
#include "featx/model.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return featx_fuzz::guarded([&] {
    std::shared_ptr<const featx::Model> model;
    featx_fuzz::check(featx::Model::from_memory(data, size, "fuzz.featx", &model), "Model::from_memory");
  });
}
