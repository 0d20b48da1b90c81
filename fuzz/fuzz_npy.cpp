// libFuzzer harness: read_npy_memory on the bytes (a whole .npy file).
#include "featx/npy.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return featx_fuzz::guarded([&] {
    featx::NpyArray a;
    if (!featx_fuzz::check(featx::read_npy_memory(data, size, "fuzz.npy", &a), "read_npy_memory")) return;
    size_t n = 1;
    for (int64_t d : a.shape) {
      if (d < 0) featx_fuzz::fail("read_npy_memory", "success with a negative dimension");
      n *= size_t(d);
    }
    if (n != a.data.size()) featx_fuzz::fail("read_npy_memory", "success with data that does not fill the shape");
  });
}
