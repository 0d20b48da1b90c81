// run() allocates nothing: every operator new/delete and malloc-family call
// of the process is counted (the program replaces them), and the count
// inside run() must be zero for every ISA, batch size, thread count and
// output kind tried, from the first run of a plan on. Also: the workspace
// size is exact (a buffer of workspace_bytes() at any alignment, fenced by
// canaries, is enough and is never overrun) and run() refuses one byte less.
//
// Its own program: the replacements are global. Not built under the
// sanitizers, which replace malloc themselves.
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include <doctest/doctest.h>
#include <malloc.h>

#include "featx/extractor.hpp"
#include "featx/plan.hpp"
#include "featx/run.hpp"
#include "test_support.hpp"

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);
}

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_calls{0};
inline void count() {
  if (g_counting.load(std::memory_order_relaxed)) g_calls.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

// The C allocator: glibc exports its implementation as __libc_*, so the
// replacements forward there.
extern "C" {
void* malloc(size_t n) {
  count();
  return __libc_malloc(n);
}
void* calloc(size_t a, size_t b) {
  count();
  return __libc_calloc(a, b);
}
void* realloc(void* p, size_t n) {
  count();
  return __libc_realloc(p, n);
}
void free(void* p) {
  if (p) count();
  __libc_free(p);
}
void* memalign(size_t align, size_t n) {
  count();
  return __libc_memalign(align, n);
}
void* aligned_alloc(size_t align, size_t n) {
  count();
  return __libc_memalign(align, n);
}
int posix_memalign(void** out, size_t align, size_t n) {
  count();
  void* p = __libc_memalign(align, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
}

// C++: every form, each counted once (they do not go through malloc above).
void* operator new(size_t n) {
  count();
  if (void* p = __libc_malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) { return operator new(n); }
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  count();
  return __libc_malloc(n ? n : 1);
}
void* operator new[](size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void* operator new(size_t n, std::align_val_t a) {
  count();
  if (void* p = __libc_memalign(size_t(a), n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n, std::align_val_t a) { return operator new(n, a); }
void operator delete(void* p) noexcept {
  if (p) count();
  __libc_free(p);
}
void operator delete[](void* p) noexcept { operator delete(p); }
void operator delete(void* p, size_t) noexcept { operator delete(p); }
void operator delete[](void* p, size_t) noexcept { operator delete(p); }
void operator delete(void* p, std::align_val_t) noexcept { operator delete(p); }
void operator delete[](void* p, std::align_val_t) noexcept { operator delete(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { operator delete(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { operator delete(p); }

namespace {

std::vector<float> test_images(int n, int h, int w) {
  std::vector<float> v(size_t(n) * size_t(h) * size_t(w) * 3);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float((i * 2654435761u) % 1000u) / 999.0f;
  return v;
}

// Calls made by fn() (on any thread).
template <typename Fn>
long calls_in(Fn fn) {
  g_calls = 0;
  g_counting = true;
  fn();
  g_counting = false;
  return g_calls.load();
}

std::vector<featx::Isa> isas_here() {
  std::vector<featx::Isa> out;
  for (featx::Isa isa : {featx::Isa::scalar, featx::Isa::avx2, featx::Isa::avx512, featx::Isa::neon})
    if (featx::isa_supported(isa)) out.push_back(isa);
  return out;
}

// Starts OpenMP's thread pool for `threads` (the runtime allocates its
// threads and team on the first region of a size, which is not featx's).
void warm_openmp(int threads) {
  std::atomic<int> sink{0};
  FEATX_OMP(parallel num_threads(threads))
  { sink += 1; }
  (void)threads;
}

struct Case {
  const char* layer;
  featx::Pool pool;
  featx::Output output;
};

}  // namespace

TEST_CASE("the replacement allocator counts (or the test below proves nothing)") {
  const long calls = calls_in([] {
    std::vector<float>* v = new std::vector<float>(100);
    void* p = std::malloc(10);
    std::free(p);
    delete v;
  });
  CHECK(calls == 6);  // new vector, its buffer, malloc, free, the buffer's and the vector's deletes
}

TEST_CASE("run allocates nothing, for every ISA, batch, thread count and output") {
  struct ModelCase {
    std::string path;
    std::vector<Case> cases;
  };
  const std::vector<ModelCase> models = {
      {test_support::small_model_path(),
       {{"", featx::Pool::avg, featx::Output::features},
        {"", featx::Pool::max, featx::Output::features},
        {"expanded_conv_6", featx::Pool::none, featx::Output::features},
        {"expanded_conv_16/expand", featx::Pool::none, featx::Output::features}}},
      {test_support::models_dir() + "/random_a1.0_r224_s1_c10.featx",
       {{"", featx::Pool::avg, featx::Output::logits}, {"", featx::Pool::avg, featx::Output::probabilities}}},
  };
  const int h = 67, w = 61;
  int runs_checked = 0;
  for (const ModelCase& mc : models) {
    std::shared_ptr<const featx::Model> model;
    REQUIRE(featx::Model::load(mc.path, &model).ok());
    for (featx::Isa isa : isas_here()) {
      for (int threads : {1, 2, 3}) {
        warm_openmp(threads);
        for (int batch : {1, 2, 5}) {
          for (const Case& c : mc.cases) {
            CAPTURE(mc.path);
            CAPTURE(featx::isa_name(isa));
            CAPTURE(threads);
            CAPTURE(batch);
            CAPTURE(std::string(c.layer));
            featx::PlanOptions o;
            o.height = h;
            o.width = w;
            o.batch = batch;
            o.threads = threads;
            o.isa = featx::isa_name(isa);
            o.layer = c.layer;
            o.pool = c.pool;
            o.output = c.output;
            featx::Plan plan;
            REQUIRE(featx::Plan::make(model, o, &plan).ok());
            REQUIRE(plan.isa() == isa);
            const std::vector<float> images = test_images(batch, h, w);
            // Exactly workspace_bytes() at an odd alignment, with canaries
            // on both sides.
            const size_t bytes = plan.workspace_bytes(), fence = 256, offset = 1 + size_t(batch) * 7;
            std::vector<unsigned char> buffer(bytes + 2 * fence + offset, 0xA5);
            unsigned char* workspace = buffer.data() + fence + offset;
            std::vector<float> out(plan.output_elements(), -1.0f);
            for (int n : {batch, 1}) {
              featx::Status st;
              const long calls = calls_in([&] {
                st = featx::run(plan, images.data(), n, workspace, bytes, out.data(), out.size());
              });
              REQUIRE(st.ok());
              CHECK(calls == 0);
              ++runs_checked;
            }
            bool fences_intact = true;
            for (size_t i = 0; i < fence + offset; ++i) fences_intact &= buffer[i] == 0xA5;
            for (size_t i = fence + offset + bytes; i < buffer.size(); ++i) fences_intact &= buffer[i] == 0xA5;
            CHECK(fences_intact);
            // One byte less is refused, without allocating either.
            featx::Status refused;
            const long calls = calls_in([&] {
              refused = featx::run(plan, images.data(), batch, workspace, bytes - 1, out.data(), out.size());
            });
            CHECK_FALSE(refused.ok());
            CHECK(calls == 0);
            // And the values are the Extractor's.
            featx::ExtractorOptions eo;
            eo.threads = threads;
            eo.isa = featx::isa_name(isa);
            eo.layer = c.layer;
            eo.pool = c.pool;
            featx::Extractor ex(model, eo);
            featx::Tensor want;
            if (c.output == featx::Output::logits) REQUIRE(ex.logits(images.data(), batch, h, w, &want).ok());
            else if (c.output == featx::Output::probabilities)
              REQUIRE(ex.probabilities(images.data(), batch, h, w, &want).ok());
            else REQUIRE(ex.extract(images.data(), batch, h, w, &want).ok());
            REQUIRE(featx::run(plan, images.data(), batch, workspace, bytes, out.data(), out.size()).ok());
            CHECK(want.data == out);
          }
        }
      }
    }
  }
  CHECK(runs_checked > 0);
}
