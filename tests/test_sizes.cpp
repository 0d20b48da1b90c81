// Sizes that wrap a 32-bit size_t are refused with a message, never
// allocated wrapped (docs/targets.md). The same checks run natively, where
// the sizes fit and must come out exact, and under qemu-arm, where they do
// not (tests/cross_test.sh builds this file into the kernel tests).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "doctest/doctest.h"
#include "featx/model.hpp"
#include "featx/plan.hpp"

namespace {

namespace fb = featx::fb;

// A model with no blocks: a 3x3 stride-2 stem 3 -> `channels`, then a 1x1
// head `channels` -> `head_out` whose kernel has `head_kernel` values.
std::vector<uint8_t> tiny_model(int channels, int head_out, size_t head_kernel) {
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
  fb::NetworkBuilder b(net);
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
