// Prepacked models (format version 3): weights folded and packed by the
// exporter, used in place from the mapped file or the caller's array. The
// normal file of the same network is the reference: the runtime folds it at
// load, so identical bits here mean the exporter's fold is the runtime's.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

// featx's raw allocations, counted (featx/detail/allocator_hooks.hpp): this
// program's only featx translation unit, so the hooks are the same everywhere.
namespace hooks {
inline size_t allocations = 0, bytes = 0, frees = 0;
inline void* aligned_alloc(size_t alignment, size_t n) {
  ++allocations;
  bytes += n;
  return std::aligned_alloc(alignment, n);
}
inline void free(void* p) {
  frees += p != nullptr;
  std::free(p);
}
}  // namespace hooks
#define FEATX_ALIGNED_ALLOC(alignment, n) hooks::aligned_alloc((alignment), (n))
#define FEATX_FREE(p) hooks::free(p)

#include "featx/featx.hpp"
#include "test_support.hpp"

namespace {

using ModelPtr = std::shared_ptr<const featx::Model>;

struct Pair {
  std::string normal, prepacked;
  bool needs_shared;
};

// The models make_test_models.py writes both ways (its PREPACKED list).
std::vector<Pair> pairs() {
  const std::string d = test_support::models_dir() + "/";
  std::vector<Pair> out;
  for (const char* id : {"random_a0.35_r96_s1_c0", "random_a1.0_r224_s1_c10",
                         "tflite_tf2_mobilenet_v2_1.0_224_ptq"})
    out.push_back({d + id + ".featx", d + id + "_prepacked.featx", id[0] == 't'});
  return out;
}

bool skip_without_shared(const Pair& p) {
  if (!p.needs_shared || test_support::have_shared()) return false;
  MESSAGE("SKIPPED (shared folder not found at " << test_support::shared_dir() << "): " << p.prepacked);
  return true;
}

ModelPtr load(const std::string& path) {
  ModelPtr m;
  const featx::Status st = featx::Model::load(path, &m);
  REQUIRE_MESSAGE(st.ok(), st.message());
  return m;
}

std::string small_prepacked_path() {
  return test_support::models_dir() + "/random_a0.35_r96_s1_c0_prepacked.featx";
}

bool same_bits(featx::FloatSpan a, featx::FloatSpan b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// 64-byte aligned bytes with the model starting `offset` bytes in.
struct Buffer {
  struct alignas(64) Line { uint8_t b[64]; };
  std::vector<Line> storage;
  uint8_t* data = nullptr;
  Buffer(const std::vector<uint8_t>& bytes, size_t offset) : storage(bytes.size() / 64 + offset / 64 + 2) {
    data = storage.front().b + offset;
    std::memcpy(data, bytes.data(), bytes.size());
  }
};

// Edits a copy of a file: `field` of the table at `table` gets `value`; the
// payload CRC is then recomputed, so only the loader's own checks can catch it.
class Patch {
 public:
  explicit Patch(std::vector<uint8_t> bytes) : buf_(bytes, 0), size_(bytes.size()) {}
  const featx::fb::ModelFile* file() const { return featx::fb::GetModelFile(buf_.data); }
  const featx::fb::Network* network() const { return file()->payload_nested_root(); }
  template <typename T>
  void set(const void* table, flatbuffers::voffset_t field, T value) {
    const uint8_t* at = reinterpret_cast<const flatbuffers::Table*>(table)->GetAddressOf(field);
    REQUIRE(at != nullptr);
    std::memcpy(const_cast<uint8_t*>(at), &value, sizeof value);
  }
  // The length prefix of a vector.
  void set_size(const flatbuffers::Vector<float>* v, uint32_t n) {
    std::memcpy(const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(v)), &n, 4);
  }
  void set_float(const flatbuffers::Vector<float>* v, size_t i, float x) {
    std::memcpy(const_cast<float*>(v->data() + i), &x, 4);
  }
  featx::Status load(ModelPtr* m) {
    const auto* payload = file()->payload();
    set(file(), featx::fb::ModelFile::VT_PAYLOAD_CRC32C, featx::crc32c(payload->data(), payload->size()));
    return featx::Model::from_memory(buf_.data, size_, "patched.featx", m);
  }

 private:
  Buffer buf_;
  size_t size_;
};

const featx::fb::ConvLayer* find_conv(const featx::fb::Network* net, const std::string& name) {
  if (net->stem()->name()->str() == name) return net->stem();
  if (net->head()->name()->str() == name) return net->head();
  for (const auto* b : *net->blocks())
    for (const auto* c : {b->expand(), b->depthwise(), b->project()})
      if (c && c->name()->str() == name) return c;
  FAIL("no conv layer " << name);
  return nullptr;
}

featx::Status load_patched_expect_failure(Patch& p, ModelPtr* m) {
  const featx::Status st = p.load(m);
  CAPTURE(st.message());
  CHECK_FALSE(st.ok());
  CHECK(*m == nullptr);
  CHECK(st.message().rfind("patched.featx: ", 0) == 0);
  CHECK(st.message().find('\n') == std::string::npos);
  return st;
}

}  // namespace

TEST_CASE("a prepacked file holds bit for bit the weights the runtime folds from the normal file") {
  for (const Pair& p : pairs()) {
    if (skip_without_shared(p)) continue;
    CAPTURE(p.prepacked);
    const ModelPtr normal = load(p.normal), packed = load(p.prepacked);
    CHECK_FALSE(normal->prepacked());
    CHECK(packed->prepacked());
    CHECK(packed->format_version() == 3);
    CHECK(normal->folded_bytes() > 0);
    CHECK(packed->folded_bytes() == 0);
    CHECK(packed->memory_mapped());
    CHECK(packed->parameter_count() == normal->parameter_count());
    REQUIRE(packed->layers().size() == normal->layers().size());
    for (size_t i = 0; i < normal->layers().size(); ++i) {
      const featx::ConvLayer &a = normal->layers()[i], &b = packed->layers()[i];
      CAPTURE(a.name);
      CHECK(a.name == b.name);
      CHECK(same_bits(a.weights, b.weights));
      CHECK(same_bits(a.bias, b.bias));
      // In place from the mapped file, on the alignment the arena gives.
      CHECK(reinterpret_cast<uintptr_t>(b.weights.data()) % 64 == 0);
      CHECK(reinterpret_cast<uintptr_t>(b.bias.data()) % 64 == 0);
    }
    REQUIRE(packed->head().size() == normal->head().size());
    for (size_t i = 0; i < normal->head().size(); ++i) {
      CHECK(same_bits(normal->head()[i].weights, packed->head()[i].weights));
      const featx::FloatSpan nb = normal->head()[i].bias, pb = packed->head()[i].bias;
      CHECK(std::equal(pb.begin(), pb.end(), nb.begin(), nb.end()));
    }
  }
}

TEST_CASE("prepacked and normal files give identical features on every ISA of this machine") {
  for (const Pair& p : pairs()) {
    if (skip_without_shared(p)) continue;
    CAPTURE(p.prepacked);
    const ModelPtr normal = load(p.normal), packed = load(p.prepacked);
    const auto goldens = packed->goldens();
    REQUIRE(!goldens.empty());
    const featx::GoldenView& g = goldens.front();
    int isas = 0;
    for (featx::Isa isa : {featx::Isa::scalar, featx::Isa::avx2, featx::Isa::avx512, featx::Isa::neon}) {
      if (!featx::isa_supported(isa)) continue;
      CAPTURE(featx::isa_name(isa));
      ++isas;
      featx::ExtractorOptions opt;
      opt.isa = featx::isa_name(isa);
      featx::Extractor a(normal, opt), b(packed, opt);
      REQUIRE(a.isa() == isa);
      REQUIRE(b.isa() == isa);
      featx::Tensor ta, tb;
      REQUIRE(a.extract(g.input, 1, g.height, g.width, &ta).ok());
      REQUIRE(b.extract(g.input, 1, g.height, g.width, &tb).ok());
      CHECK(ta.shape == tb.shape);
      CHECK(same_bits(ta.data, tb.data));
      if (normal->has_classifier()) {
        REQUIRE(a.logits(g.input, 1, g.height, g.width, &ta).ok());
        REQUIRE(b.logits(g.input, 1, g.height, g.width, &tb).ok());
        CHECK(same_bits(ta.data, tb.data));
      }
    }
    MESSAGE(p.prepacked << ": " << isas << " ISAs compared");
    CHECK(isas >= 1);
  }
}

TEST_CASE("the goldens stored in a prepacked file pass") {
  for (const Pair& p : pairs()) {
    if (skip_without_shared(p)) continue;
    CAPTURE(p.prepacked);
    const ModelPtr packed = load(p.prepacked);
    const auto goldens = packed->goldens();
    REQUIRE(!goldens.empty());
    for (const featx::GoldenView& g : goldens) {
      CAPTURE(g.name);
      featx::Extractor ex(packed);
      featx::Tensor t;
      REQUIRE(ex.extract(g.input, 1, g.height, g.width, &t).ok());
      REQUIRE(t.data.size() == g.output_size);
      double worst = 0;
      for (size_t i = 0; i < t.data.size(); ++i)
        worst = std::max(worst, std::fabs(double(t.data[i]) - double(g.output[i])));
      CHECK(worst <= double(g.max_abs_tolerance));
    }
  }
}

TEST_CASE("from_embedded uses a 64-byte aligned prepacked array in place") {
  const auto bytes = test_support::read_bytes(small_prepacked_path());
  REQUIRE(!bytes.empty());
  const Buffer buf(bytes, 0);
  ModelPtr m;
  const featx::Status st = featx::Model::from_embedded(buf.data, bytes.size(), "rom", &m);
  REQUIRE_MESSAGE(st.ok(), st.message());
  CHECK(m->prepacked());
  CHECK(m->folded_bytes() == 0);
  CHECK_FALSE(m->memory_mapped());
  const uint8_t *begin = buf.data, *end = buf.data + bytes.size();
  for (const auto& layer : m->layers()) {
    CAPTURE(layer.name);
    for (featx::FloatSpan s : {layer.weights, layer.bias}) {
      const auto* p = reinterpret_cast<const uint8_t*>(s.data());
      CHECK((p >= begin && p + s.size() * sizeof(float) <= end));  // inside the caller's array
    }
  }
}

TEST_CASE("from_embedded refuses a prepacked array that is not 64-byte aligned") {
  const auto bytes = test_support::read_bytes(small_prepacked_path());
  REQUIRE(!bytes.empty());
  for (size_t offset : {4u, 8u, 16u, 32u, 48u}) {
    CAPTURE(offset);
    const Buffer buf(bytes, offset);
    ModelPtr m;
    const featx::Status st = featx::Model::from_embedded(buf.data, bytes.size(), "model_rom", &m);
    CAPTURE(st.message());
    CHECK_FALSE(st.ok());
    CHECK(m == nullptr);
    CHECK(st.message().rfind("model_rom: ", 0) == 0);
    CHECK(st.message().find("not 64-byte aligned") != std::string::npos);
    CHECK(st.message().find("alignas(64)") != std::string::npos);
    CHECK(st.message().find(".balign 64") != std::string::npos);
    // from_memory copies into aligned storage and runs from the copy.
    REQUIRE(featx::Model::from_memory(buf.data, bytes.size(), "copy", &m).ok());
    CHECK(m->prepacked());
    CHECK(m->folded_bytes() == 0);
    CHECK(reinterpret_cast<uintptr_t>(m->layers()[1].weights.data()) % 64 == 0);
  }
  // A normal file at 16 bytes is still borrowed, and at 4 copied, as before.
  const auto normal = test_support::read_bytes(test_support::small_model_path());
  for (size_t offset : {16u, 4u}) {
    const Buffer buf(normal, offset);
    ModelPtr m;
    REQUIRE(featx::Model::from_embedded(buf.data, normal.size(), "raw", &m).ok());
    CHECK_FALSE(m->prepacked());
    CHECK(m->folded_bytes() > 0);
  }
}

TEST_CASE("from_memory of a prepacked model allocates its copy and nothing else") {
  const auto bytes = test_support::read_bytes(small_prepacked_path());
  REQUIRE(!bytes.empty());
  const size_t before = hooks::allocations, before_bytes = hooks::bytes, before_frees = hooks::frees;
  {
    ModelPtr m;
    REQUIRE(featx::Model::from_memory(bytes.data(), bytes.size(), "copy", &m).ok());
    CHECK(hooks::allocations - before == 1);
    CHECK(hooks::bytes - before_bytes >= bytes.size());
    CHECK(hooks::bytes - before_bytes < bytes.size() + 128);
    CHECK(hooks::frees == before_frees);
  }
  CHECK(hooks::frees - before_frees == 1);  // released with the Model
}

TEST_CASE("a prepacked file in a foreign layout is refused, naming the layer") {
  const auto bytes = test_support::read_bytes(small_prepacked_path());
  REQUIRE(!bytes.empty());
  ModelPtr m;
  {  // Before any change, the patched copy loads.
    Patch p(bytes);
    ModelPtr unchanged;
    REQUIRE(p.load(&unchanged).ok());
  }
  SUBCASE("panel width") {
    Patch p(bytes);
    p.set<int32_t>(find_conv(p.network(), "Conv")->packed(), featx::fb::PackedConv::VT_PANEL_WIDTH, 8);
    const featx::Status st = load_patched_expect_failure(p, &m);
    CHECK(st.message().find("Conv: weights packed in panels of 8 columns, this featx runs 16") !=
          std::string::npos);
  }
  SUBCASE("packed weights shorter than the shape's panels") {
    Patch p(bytes);
    const auto* w = find_conv(p.network(), "expanded_conv_3/project")->packed()->weights();
    p.set_size(w, w->size() - 16);
    const featx::Status st = load_patched_expect_failure(p, &m);
    CHECK(st.message().find("expanded_conv_3/project: prepacked weights have") != std::string::npos);
  }
  SUBCASE("depthwise weights of the wrong size") {
    Patch p(bytes);
    const auto* w = find_conv(p.network(), "expanded_conv_5/depthwise")->packed()->weights();
    p.set_size(w, w->size() - 1);
    const featx::Status st = load_patched_expect_failure(p, &m);
    CHECK(st.message().find("expanded_conv_5/depthwise: prepacked weights have") != std::string::npos);
  }
  SUBCASE("bias of the wrong size") {
    Patch p(bytes);
    const auto* b = find_conv(p.network(), "Conv_1")->packed()->bias();
    p.set_size(b, b->size() - 1);
    const featx::Status st = load_patched_expect_failure(p, &m);
    CHECK(st.message().find("Conv_1: prepacked bias has") != std::string::npos);
  }
  SUBCASE("non-zero panel padding") {
    // expanded_conv/project has 8 outputs at width 0.35: its one panel pads 8 columns.
    Patch p(bytes);
    const featx::fb::ConvLayer* conv = find_conv(p.network(), "expanded_conv/project");
    REQUIRE(conv->out_channels() % 16 != 0);
    p.set_float(conv->packed()->weights(), 15, 1.0f);
    const featx::Status st = load_patched_expect_failure(p, &m);
    CHECK(st.message().find("expanded_conv/project: prepacked panel padding is not zero") !=
          std::string::npos);
  }
  SUBCASE("a non-finite weight") {
    Patch p(bytes);
    p.set_float(find_conv(p.network(), "expanded_conv_2/expand")->packed()->weights(), 3, NAN);
    const featx::Status st = load_patched_expect_failure(p, &m);
    CHECK(st.message().find("expanded_conv_2/expand: non-finite prepacked weight") != std::string::npos);
  }
  SUBCASE("packed weights in a file that says version 2") {
    Patch p(bytes);
    p.set<uint32_t>(p.file(), featx::fb::ModelFile::VT_FORMAT_VERSION, 2);
    const featx::Status st = load_patched_expect_failure(p, &m);
    CHECK(st.message().find("Conv: prepacked weights in a version 2 file") != std::string::npos);
  }
  SUBCASE("a normal file that says version 3") {
    Patch p(test_support::read_bytes(test_support::small_model_path()));
    p.set<uint32_t>(p.file(), featx::fb::ModelFile::VT_FORMAT_VERSION, 3);
    const featx::Status st = load_patched_expect_failure(p, &m);
    CHECK(st.message().find("Conv: no prepacked weights in a prepacked (version 3) file") !=
          std::string::npos);
  }
}
