// libFuzzer harness: Pca::from_memory on the bytes (a whole .pca file), then
// transform one row and take it back.
#include <vector>

#include "featx/pca.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return featx_fuzz::guarded([&] {
    featx::Pca pca;
    if (!featx_fuzz::check(featx::Pca::from_memory(data, size, "fuzz.pca", &pca), "Pca::from_memory")) return;
    if (pca.dims() < 1 || pca.components() < 1) featx_fuzz::fail("Pca::from_memory", "success with no dims or components");
    std::vector<float> row(pca.dims());
    for (size_t i = 0; i < row.size(); ++i) row[i] = 0.25f * float(i % 7);
    std::vector<float> y(pca.components()), back(pca.dims());
    if (featx_fuzz::check(pca.transform(row.data(), 1, row.size(), y.data(), y.size()), "Pca::transform"))
      featx_fuzz::check(pca.inverse_transform(y.data(), 1, y.size(), back.data(), back.size()),
                        "Pca::inverse_transform");
  });
}
