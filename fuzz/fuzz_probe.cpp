// libFuzzer harness: Probe::from_memory on the bytes (a whole .fxp file),
// then logits and probabilities of one zero row.
#include <vector>

#include "featx/probe.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return featx_fuzz::guarded([&] {
    featx::Probe probe;
    if (!featx_fuzz::check(featx::Probe::from_memory(data, size, "fuzz.fxp", &probe), "Probe::from_memory")) return;
    if (probe.classes() < 1 || probe.dims() < 1) featx_fuzz::fail("Probe::from_memory", "success with no classes or dims");
    const std::vector<float> row(probe.dims(), 0.0f);
    std::vector<float> p(size_t(probe.classes()));
    std::vector<double> logits(size_t(probe.classes()));
    featx_fuzz::check(probe.predict(row.data(), 1, row.size(), p.data(), p.size()), "Probe::predict");
    featx_fuzz::check(probe.logits(row.data(), 1, row.size(), logits.data(), logits.size()), "Probe::logits");
  });
}
