// tests/allocator_hooks.cpp: FEATX_ALIGNED_ALLOC / FEATX_FREE reach featx's
// aligned buffers and FEATX_MALLOC / FEATX_REALLOC stb_image's, every block
// is released through FEATX_FREE, and the features are still the model's
// golden outputs. Built by tests/single_header_test.sh against the single
// header: ./allocator_hooks MODEL.featx
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace hooks {
std::atomic<long> aligned_calls{0}, malloc_calls{0}, live_blocks{0};
inline void* aligned(std::size_t alignment, std::size_t bytes) {
  ++aligned_calls;
  void* p = std::aligned_alloc(alignment, bytes);
  if (p) ++live_blocks;
  return p;
}
inline void* allocate(std::size_t bytes) {
  ++malloc_calls;
  void* p = std::malloc(bytes);
  if (p) ++live_blocks;
  return p;
}
inline void* reallocate(void* old, std::size_t bytes) {
  void* p = std::realloc(old, bytes);
  if (!old && p) {
    ++malloc_calls;
    ++live_blocks;
  }
  return p;
}
inline void release(void* p) {
  if (p) --live_blocks;
  std::free(p);
}
}  // namespace hooks

#define FEATX_ALIGNED_ALLOC(alignment, bytes) hooks::aligned(alignment, bytes)
#define FEATX_MALLOC(bytes) hooks::allocate(bytes)
#define FEATX_REALLOC(ptr, bytes) hooks::reallocate(ptr, bytes)
#define FEATX_FREE(ptr) hooks::release(ptr)
#include "featx.hpp"

#include <algorithm>
#include <cmath>

namespace {

int fail(const char* what) {
  std::fprintf(stderr, "allocator hooks: %s\n", what);
  return 1;
}

// A 4x2 24-bit BMP: stb_image decodes it into memory from FEATX_MALLOC.
std::vector<uint8_t> small_bmp() {
  const int w = 4, h = 2, row = w * 3;  // 12 bytes: already a multiple of 4
  const uint32_t pixels = uint32_t(row * h), file = 54 + pixels;
  std::vector<uint8_t> b(file, 0);
  auto put32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) b[at + size_t(i)] = uint8_t(v >> (8 * i));
  };
  b[0] = 'B';
  b[1] = 'M';
  put32(2, file);
  put32(10, 54);  // pixel data offset
  put32(14, 40);  // BITMAPINFOHEADER
  put32(18, uint32_t(w));
  put32(22, uint32_t(h));
  b[26] = 1;   // planes
  b[28] = 24;  // bits per pixel
  put32(34, pixels);
  for (uint32_t i = 0; i < pixels; ++i) b[54 + i] = uint8_t(i * 19);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return fail("usage: allocator_hooks MODEL.featx");
  {
    std::shared_ptr<const featx::Model> model;
    featx::Status st = featx::Model::load(argv[1], &model);
    if (!st.ok()) return fail(st.message().c_str());
    const std::vector<featx::GoldenView> goldens = model->goldens();
    if (goldens.empty()) return fail("the model stores no goldens");
    const featx::GoldenView& g = goldens[0];
    // A batch: its grouped tail runs in chunks, whose weights are aligned buffers.
    const int batch = 4;
    const size_t pixels = size_t(g.height) * size_t(g.width) * 3;
    std::vector<float> images(pixels * batch);
    for (int i = 0; i < batch; ++i) std::copy(g.input, g.input + pixels, images.begin() + long(pixels) * i);
    featx::Extractor extractor(model);
    featx::Tensor features;
    st = extractor.extract(images.data(), batch, g.height, g.width, &features);
    if (!st.ok()) return fail(st.message().c_str());
    if (features.data.size() != g.output_size * batch) return fail("feature size differs from the golden's");
    for (size_t i = 0; i < features.data.size(); ++i)
      if (!(std::fabs(double(features.data[i]) - double(g.output[i % g.output_size])) <=
            double(g.max_abs_tolerance)))
        return fail("features differ from the golden beyond its tolerance");
    if (hooks::aligned_calls == 0) return fail("FEATX_ALIGNED_ALLOC was never called");

    const std::vector<uint8_t> bmp = small_bmp();
    featx::PreprocessOptions pre;
    pre.height = pre.width = 8;
    featx::Image image;
    st = featx::load_image_memory(bmp.data(), bmp.size(), "small.bmp", pre, &image);
    if (!st.ok()) return fail(st.message().c_str());
    if (hooks::malloc_calls == 0) return fail("stb_image did not allocate through FEATX_MALLOC");
  }
  if (hooks::live_blocks != 0) {
    std::fprintf(stderr, "allocator hooks: %ld blocks not released through FEATX_FREE\n",
                 long(hooks::live_blocks));
    return 1;
  }
  std::printf("allocator hooks: %ld aligned and %ld malloc'd blocks, all released through FEATX_FREE\n",
              long(hooks::aligned_calls), long(hooks::malloc_calls));
  return 0;
}
