// Sizes that wrap a 32-bit size_t are refused with a message, never
// allocated wrapped (docs/targets.md). The same checks run natively, where
// the sizes fit and must come out exact, and under qemu-arm, where they do
// not (tests/cross_test.sh builds this file into the kernel tests).
#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include "doctest/doctest.h"
#include "featx/detail/checked_size.hpp"
#include "featx/image/central_crop.hpp"
#include "featx/image/resize_antialias.hpp"
#include "featx/image/resize_bilinear.hpp"
#include "featx/image/resize_nearest_pil.hpp"
#include "featx/model.hpp"
#include "featx/npy.hpp"
#include "featx/npy_writer.hpp"
#include "featx/plan.hpp"
#include "featx/search.hpp"

namespace {

namespace fb = featx::fb;

enum class Top { none, dense, classifier };

// A model with no blocks: a 3x3 stride-2 stem 3 -> `channels`, then a 1x1
// head `channels` -> `head_out` whose kernel has `head_kernel` values; on
// top, with `top`, a Dense layer or a classifier of `top_out` outputs
// whose weights are missing (an empty vector).
std::vector<uint8_t> tiny_model(int channels, int head_out, size_t head_kernel, Top top = Top::none,
                                int top_out = 0) {
  flatbuffers::FlatBufferBuilder net;
  auto conv = [&](const char* name, int kh, int stride, int in, int out, size_t values) {
    const std::vector<float> kernel(values, 0.01f);
    return fb::CreateConvLayer(net, net.CreateString(name), fb::ConvKind::FULL, kh, kh, stride, in, out,
                               net.CreateVector(kernel), 0, 0, fb::Activation::RELU6);
  };
  auto stem = conv("Conv", 3, 2, 3, channels, size_t(9) * 3 * size_t(channels));
  auto head = conv("Conv_1", 1, 1, channels, head_out, head_kernel);
  auto norm = fb::CreateInputNormalization(net, 2.0f, -1.0f);
  auto blocks = net.CreateVector(std::vector<flatbuffers::Offset<fb::Block>>{});
  auto architecture = net.CreateString("mobilenet_v2");
  const auto no_weights = net.CreateVector(std::vector<float>{});
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::DenseLayer>>> dense;
  flatbuffers::Offset<fb::Classifier> classifier;
  if (top == Top::dense)
    dense = net.CreateVector(std::vector<flatbuffers::Offset<fb::DenseLayer>>{
        fb::CreateDenseLayer(net, net.CreateString("dense"), head_out, top_out, no_weights)});
  if (top == Top::classifier) classifier = fb::CreateClassifier(net, top_out, no_weights);
  fb::NetworkBuilder b(net);
  if (top == Top::dense) b.add_dense_head(dense);
  if (top == Top::classifier) b.add_classifier(classifier);
  b.add_architecture(architecture);
  b.add_input_normalization(norm);
  b.add_stem(stem);
  b.add_blocks(blocks);
  b.add_head(head);
  b.add_feature_dim(head_out);
  net.Finish(b.Finish());

  flatbuffers::FlatBufferBuilder file;
  file.ForceVectorAlignment(net.GetSize(), 1, 16);
  auto payload = file.CreateVector(net.GetBufferPointer(), net.GetSize());
  file.Finish(fb::CreateModelFile(file, 1, featx::crc32c(net.GetBufferPointer(), net.GetSize()), payload),
              fb::ModelFileIdentifier());
  return std::vector<uint8_t>(file.GetBufferPointer(), file.GetBufferPointer() + file.GetSize());
}

std::shared_ptr<const featx::Model> load(const std::vector<uint8_t>& bytes) {
  std::shared_ptr<const featx::Model> m;
  const featx::Status st = featx::Model::from_memory(bytes.data(), bytes.size(), "tiny.featx", &m);
  CAPTURE(st.message());
  REQUIRE(st.ok());
  return m;
}

constexpr bool k32Bit = sizeof(size_t) < 8;
constexpr uint64_t k2to32 = uint64_t(1) << 32;

// A refusal: not ok, one line that starts with the input's name.
void check_refused(const featx::Status& st, const std::string& name, const std::string& needle) {
  CAPTURE(st.message());
  REQUIRE_FALSE(st.ok());
  CHECK(st.message().rfind(name + ": ", 0) == 0);
  CHECK(st.message().find('\n') == std::string::npos);
  CHECK(st.message().find(needle) != std::string::npos);
}

std::string temp_path(const std::string& leaf) {
  return "/tmp/featx_test_sizes_" + std::to_string(::getpid()) + "_" + leaf;
}

bool file_exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// A valid .fxi of one row of `dims` floats named "a", its count field then
// set to `count` (the rows and names stay those of one row).
std::vector<uint8_t> index_claiming(uint32_t dims, uint64_t count) {
  const size_t stride = featx::search_detail::stride_for(dims);
  std::vector<uint8_t> b(featx::kIndexHeaderBytes + stride * 4, 0);
  featx::search_detail::make_header(b.data(), dims, 1, 2);
  const float one = 1.0f;
  std::memcpy(b.data() + featx::kIndexHeaderBytes, &one, 4);
  b.push_back('a');
  b.push_back('\n');
  featx::detail::put_u64(b.data() + 24, count);
  return b;
}

}  // namespace

TEST_CASE("a layer shape with 2^32 weights is refused, not matched by a wrapped count") {
  // 65536 -> 65536: 2^32 weights, which a 32-bit size_t holds as 0; the
  // file's empty kernel then passed and the fold wrote past its slice.
  const auto bytes = tiny_model(65536, 65536, 0);
  std::shared_ptr<const featx::Model> m;
  const featx::Status st = featx::Model::from_memory(bytes.data(), bytes.size(), "tiny.featx", &m);
  CAPTURE(st.message());
  CHECK_FALSE(st.ok());
  CHECK(bool(m) == false);
  CHECK(st.message().find("tiny.featx") != std::string::npos);
  CHECK(st.message().find("Conv_1") != std::string::npos);
  CHECK(st.message().find("shape needs 4294967296") != std::string::npos);
}

TEST_CASE("a workspace past 4 GiB is exact on 64-bit targets and refused on 32-bit ones") {
  // 16384 x 4096 input, stem to 8192 x 2048 x 256: 2^32 floats in one slot.
  const auto model = load(tiny_model(256, 8, size_t(256) * 8));
  featx::PlanOptions o;
  o.height = 16384;
  o.width = 4096;
  o.threads = 1;
  featx::Plan plan;
  const featx::Status st = featx::Plan::make(model, o, &plan);
  CAPTURE(st.message());
  if (k32Bit) {
    CHECK_FALSE(st.ok());
    CHECK(st.message().find("tiny.featx") != std::string::npos);
    CHECK(st.message().find("more workspace than this target can address") != std::string::npos);
  } else {
    REQUIRE(st.ok());
    // The input slot and the stem's output are both live: at least their sum.
    const uint64_t input_bytes = uint64_t(16384) * 4096 * 3 * 4;
    const uint64_t stem_bytes = uint64_t(8192) * 2048 * 256 * 4;
    CHECK(uint64_t(plan.workspace_bytes()) >= input_bytes + stem_bytes);
  }
}

TEST_CASE("an output past 4 GiB is counted exactly on 64-bit targets and refused on 32-bit ones") {
  // Maps of 112 x 112 x 8 floats, a batch of 2^20: 4.2e11 bytes.
  const auto model = load(tiny_model(8, 8, 64));
  featx::PlanOptions o;
  o.height = o.width = 224;
  o.batch = 1 << 20;
  o.pool = featx::Pool::none;
  o.threads = 1;
  featx::Plan plan;
  const featx::Status st = featx::Plan::make(model, o, &plan);
  CAPTURE(st.message());
  if (k32Bit) {
    CHECK_FALSE(st.ok());
    CHECK(st.message().find("needs more memory than this target can address") != std::string::npos);
  } else {
    REQUIRE(st.ok());
    CHECK(plan.output_elements_per_image() == size_t(112) * 112 * 8);
    CHECK(uint64_t(plan.output_elements()) == (uint64_t(1) << 20) * 112 * 112 * 8);
  }
}

TEST_CASE("SizeCheck: sums and products near SIZE_MAX are exact or flagged") {
  using featx::detail::SizeCheck;
  {
    SizeCheck s;
    CHECK(s.mul(SIZE_MAX, 1) == SIZE_MAX);
    CHECK(s.mul(SIZE_MAX / 2, 2) == SIZE_MAX - 1);
    CHECK(s.mul(0, SIZE_MAX) == 0);
    CHECK(s.mul(SIZE_MAX, 0) == 0);
    CHECK(s.add(SIZE_MAX - 1, 1) == SIZE_MAX);
    CHECK(s.round_up(SIZE_MAX - 63, 64) == SIZE_MAX - 63);
    CHECK(s.fit(uint64_t(SIZE_MAX)) == SIZE_MAX);
    CHECK(s.product({}) == 1);
    CHECK(s.product({0, int64_t(1) << 31}) == 0);
    CHECK(s.product({65535, 65537}) == size_t(65535) * 65537);  // 2^32 - 1: fits everywhere
    CHECK_FALSE(s.overflow);
  }
  auto flags = [](auto&& f) {
    SizeCheck s;
    CHECK(f(s) == 0);  // an overflow gives 0, never a wrapped value
    return s.overflow;
  };
  CHECK(flags([](SizeCheck& s) { return s.mul(SIZE_MAX / 2 + 1, 2); }));
  CHECK(flags([](SizeCheck& s) { return s.mul(SIZE_MAX, SIZE_MAX); }));
  CHECK(flags([](SizeCheck& s) { return s.mul(SIZE_MAX / 3 + 1, 1, 3); }));
  CHECK(flags([](SizeCheck& s) { return s.add(SIZE_MAX, 1); }));
  CHECK(flags([](SizeCheck& s) { return s.add(1, SIZE_MAX); }));
  CHECK(flags([](SizeCheck& s) { return s.round_up(SIZE_MAX - 62, 64); }));
  CHECK(flags([](SizeCheck& s) { return s.product({-1}); }));
  CHECK(flags([](SizeCheck& s) { return s.product({int64_t(1) << 32, int64_t(1) << 32}); }));  // 2^64: 0 if wrapped
  CHECK(flags([](SizeCheck& s) { return s.product({3, INT64_MAX}); }));
  // Sticky: a later fine operation keeps the flag.
  SizeCheck s;
  s.add(SIZE_MAX, SIZE_MAX);
  CHECK(s.mul(2, 3) == 6);
  CHECK(s.overflow);
  // Near 2^32: exact on 64-bit targets, flagged on 32-bit ones.
  SizeCheck m;
  const size_t p = m.mul(65536, 65536);
  CHECK(m.overflow == k32Bit);
  if (!k32Bit) CHECK(uint64_t(p) == k2to32);
  SizeCheck f;
  f.fit(k2to32);
  CHECK(f.overflow == k32Bit);
  SizeCheck q;
  q.product({65536, 65536});
  CHECK(q.overflow == k32Bit);
  SizeCheck top;
  CHECK(top.fit(UINT64_MAX) == (k32Bit ? 0 : SIZE_MAX));
  CHECK(top.overflow == k32Bit);
}

TEST_CASE(".npy shapes whose size wraps size_t are refused before any allocation") {
  struct Case {
    std::vector<int64_t> shape;
    bool wraps_64;  // also on 64-bit targets
    const char* bytes_64;  // else: what 64-bit targets say the shape needs
  };
  const int64_t e30 = int64_t(1) << 30, e31 = int64_t(1) << 31, e32 = int64_t(1) << 32;
  for (const Case& c : {Case{{e32, e32}, true, ""},               // 2^64 values: 0 when wrapped
                        Case{{int64_t(1) << 61, 2}, true, ""},    // 2^62 values, 2^64 bytes
                        Case{{INT64_MAX}, true, ""},
                        Case{{e30, 4}, false, "needs 17179869184 bytes"},  // 2^32 values: 0 on 32-bit
                        Case{{e31, 2, 1}, false, "needs 17179869184 bytes"},
                        Case{{e32 + 1}, false, "needs 17179869188 bytes"}}) {  // 1 value when truncated
    const std::string shape = featx::npy_detail::shape_string(c.shape);
    CAPTURE(shape);
    const std::string header = featx::npy_detail::header_bytes(c.shape);
    REQUIRE_FALSE(header.empty());
    std::vector<uint8_t> bytes(header.begin(), header.end());
    bytes.resize(bytes.size() + 4, 0);  // one float: what a truncated count would accept
    featx::NpyArray a;
    const featx::Status st = featx::read_npy_memory(bytes.data(), bytes.size(), "huge.npy", &a);
    if (c.wraps_64 || k32Bit) check_refused(st, "huge.npy", "absurd shape " + shape + " (size overflows)");
    else check_refused(st, "huge.npy", std::string("truncated data (shape ") + shape + " " + c.bytes_64);
    CHECK(a.shape.empty());
    CHECK(a.data.capacity() == 0);

    if (!c.wraps_64 && !k32Bit) continue;  // a real 16 GB array: not written here
    // Writing one is refused too, and no file appears.
    const std::string out = temp_path("huge.npy");
    const float one = 1.0f;
    check_refused(featx::write_npy(out, c.shape, &one), out, "overflowing size");
    CHECK_FALSE(file_exists(out));
    // A streamed file of such rows is refused at create, before the file is made.
    featx::NpyRowWriter rows;
    check_refused(featx::NpyRowWriter::create(out, c.shape, &rows), out, "more than this target can address");
    CHECK_FALSE(file_exists(out));
  }
}

TEST_CASE("a streamed .npy is never cut or grown to a wrapped size") {
  const std::string out = temp_path("rows.npy");
  featx::NpyRowWriter w;
  REQUIRE(featx::NpyRowWriter::create(out, {1280}, &w).ok());
  const std::vector<float> row(1280, 0.5f);
  REQUIRE(w.append(row.data(), 1).ok());
  // 5120-byte rows: SIZE_MAX / 4096 of them pass size_t (and off_t).
  check_refused(w.truncate_to(SIZE_MAX / 4096), out, "larger file than this target can address");
  CHECK(w.rows() == 1);
  REQUIRE(w.finish().ok());
  featx::NpyArray a;
  REQUIRE(featx::read_npy(out, &a).ok());
  CHECK(a.shape == std::vector<int64_t>{1, 1280});
  std::remove(out.c_str());
}

TEST_CASE("an .fxi header whose count x stride wraps size_t is refused") {
  {
    featx::VectorIndex ix;
    const std::vector<uint8_t> good = index_claiming(16, 1);
    REQUIRE(featx::VectorIndex::from_memory(good.data(), good.size(), "huge.fxi", &ix).ok());
  }
  struct Case {
    uint32_t dims;
    uint64_t count;
    const char* says_64;  // what 64-bit targets say (32-bit ones: absurd vector count)
  };
  // 16 dims: 64-byte rows. 2^26 + 1 of them are 2^32 + 64 bytes, which a
  // 32-bit size_t holds as 64: the one row the file has.
  for (const Case& c : {Case{16, (uint64_t(1) << 26) + 1, "need 4294967424 bytes"},
                        Case{65536, uint64_t(1) << 16, "need 17179869248 bytes"},
                        Case{16, uint64_t(1) << 40, "need 70368744177728 bytes"},
                        Case{16, UINT64_MAX / 64 + 2, "absurd vector count"},
                        Case{16, UINT64_MAX, "absurd vector count"}}) {
    CAPTURE(c.count);
    std::vector<uint8_t> b = index_claiming(c.dims, 1);
    featx::detail::put_u64(b.data() + 24, c.count);
    if (c.dims != 16) {  // dims and stride fields for a wide row, the same bytes
      featx::detail::put_u32(b.data() + 16, c.dims);
      featx::detail::put_u32(b.data() + 20, uint32_t(featx::search_detail::stride_for(c.dims)));
    }
    featx::VectorIndex ix;
    const featx::Status st = featx::VectorIndex::from_memory(b.data(), b.size(), "huge.fxi", &ix);
    check_refused(st, "huge.fxi", k32Bit ? "absurd vector count" : c.says_64);
    CHECK(ix.size() == 0);
  }
}

TEST_CASE("a search whose nq x k results pass size_t is refused (32-bit targets)") {
  // 70000 queries x 70000 neighbours: 4.9e9 results, which wrap a 32-bit
  // size_t (on 64-bit ones they are 78 GB: nothing to test without it).
  if (!k32Bit) return;
  const size_t n = 70000;
  std::vector<float> rows(n, 1.0f);
  featx::VectorIndex ix;
  REQUIRE(featx::VectorIndex::build(rows.data(), n, 1, 0, {}, "wide.fxi", &ix).ok());
  featx::SearchOptions o;
  o.k = n;
  o.threads = 1;
  featx::SearchResults r;
  check_refused(ix.search(rows.data(), n, 1, o, &r), "wide.fxi", "need more memory than this target can address");
  CHECK(r.neighbors.capacity() == 0);
}

TEST_CASE("a Dense head or classifier of 2^32 weights is refused, not matched by a wrapped count") {
  // Features 65536 (a 1 -> 65536 head conv), then 65536 outputs with no
  // weights: 65536 x 65536 = 2^32, 0 in a 32-bit size_t.
  for (const Top top : {Top::dense, Top::classifier}) {
    const auto bytes = tiny_model(1, 65536, 65536, top, 65536);
    std::shared_ptr<const featx::Model> m;
    const featx::Status st = featx::Model::from_memory(bytes.data(), bytes.size(), "tiny.featx", &m);
    check_refused(st, "tiny.featx", top == Top::dense ? "weights have 0 values, shape needs 65536 x 65536"
                                                      : "classifier weights have 0 values, expected 65536 x 65536");
    CHECK(bool(m) == false);
  }
}

TEST_CASE("resizing to or from a size past size_t gives an empty image, not a wrapped buffer") {
  featx::Image small;
  small.height = small.width = 2;
  small.rgb.assign(12, 0.5f);
  // A caller's image of 65536 x 65536 with no pixels: 3 x 2^32 floats, which
  // a 32-bit size_t holds as 0, its buffer's size.
  featx::Image hollow;
  hollow.height = hollow.width = 65536;
  struct Case {
    const featx::Image* in;
    int h, w;
  };
  // INT_MAX x INT_MAX x 3 floats pass a 64-bit size_t too.
  for (const Case& c : {Case{&small, INT_MAX, INT_MAX}, Case{&small, INT_MAX, 3}, Case{&hollow, 2, 2}}) {
    if (c.in == &small && c.w == 3 && !k32Bit) continue;  // 2^31 x 3 x 3 floats fit 64 bits: a real 77 GB
    for (int kind = 0; kind < 3; ++kind) {
      CAPTURE(kind);
      featx::Image out;
      out.height = out.width = 1;
      out.rgb.assign(3, 1.0f);
      if (kind == 0) featx::resize_bilinear(*c.in, c.h, c.w, &out);
      if (kind == 1) featx::resize_antialias(*c.in, c.h, c.w, &out);
      if (kind == 2) featx::resize_nearest_pil(*c.in, c.h, c.w, &out);
      CHECK(out.height == 0);
      CHECK(out.width == 0);
      CHECK(out.rgb.empty());
    }
  }
  featx::Image out;
  CHECK_FALSE(featx::central_crop(hollow, 0.5, &out).ok());
}
