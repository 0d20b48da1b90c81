// Model loading: a valid file loads and folds; every kind of bad file gets a
// non-ok Status naming the file and the problem, never a crash.
#include <algorithm>
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "featx/featx.hpp"
#include "test_support.hpp"

namespace {

std::vector<uint8_t> valid_bytes() { return test_support::read_bytes(test_support::small_model_path()); }

featx::Status load_bytes(const std::vector<uint8_t>& bytes, const std::string& name) {
  std::shared_ptr<const featx::Model> m;
  return featx::Model::from_memory(bytes.data(), bytes.size(), name, &m);
}

}  // namespace

TEST_CASE("a valid model loads from a file, from memory and from an embedded array") {
  const std::string path = test_support::small_model_path();
  std::shared_ptr<const featx::Model> a, b, c;
  REQUIRE_MESSAGE(featx::Model::load(path, &a).ok(), path);
  auto bytes = valid_bytes();
  REQUIRE(featx::Model::from_memory(bytes.data(), bytes.size(), "mem", &b).ok());
  // An embedded array: 16-byte aligned storage used in place.
  std::vector<test_support::Aligned16> storage((bytes.size() + 15) / 16);
  std::memcpy(storage.data(), bytes.data(), bytes.size());
  REQUIRE(featx::Model::from_embedded(storage.data(), bytes.size(), "embedded", &c).ok());
  CHECK(a->feature_dim() == 1280);
  CHECK(a->layers().size() == 52);
  CHECK(a->blocks().size() == 17);
  CHECK(a->layers() .front().name == "Conv");
  CHECK(a->feature_layer() == "Conv_1");
  CHECK(a->memory_mapped());
  const featx::FloatSpan wa = a->layers()[3].weights, wb = b->layers()[3].weights;
  CHECK(wa.size() == wb.size());
  CHECK(std::equal(wa.begin(), wa.end(), wb.begin()));
  // Each layer's slice of the weight arena is 64-byte aligned for the kernels.
  for (const auto& layer : a->layers()) CHECK(reinterpret_cast<uintptr_t>(layer.weights.data()) % 64 == 0);
  CHECK(std::equal(c->layers()[7].bias.begin(), c->layers()[7].bias.end(), a->layers()[7].bias.begin()));
  CHECK(a->folded_bytes() > 0);
}

TEST_CASE("batch norm is folded as gamma * (x - mean) / sqrt(var + eps) + beta") {
  // Load the raw parameters straight from the FlatBuffer and compare with the fold.
  auto bytes = valid_bytes();
  std::shared_ptr<const featx::Model> m;
  REQUIRE(featx::Model::from_memory(bytes.data(), bytes.size(), "mem", &m).ok());
  const auto* net = featx::fb::GetModelFile(bytes.data())->payload_nested_root();
  const featx::fb::ConvLayer* stem = net->stem();
  REQUIRE(stem->batch_norm() != nullptr);
  const auto* bn = stem->batch_norm();
  const int cout = stem->out_channels();
  const auto& folded = m->layers()[0];
  for (int c = 0; c < cout; ++c) {
    const double s = double(bn->gamma()->Get(c)) / std::sqrt(double(bn->moving_variance()->Get(c)) + double(bn->epsilon()));
    const double conv_bias = stem->bias() ? double(stem->bias()->Get(c)) : 0.0;
    const double b = double(bn->beta()->Get(c)) + (conv_bias - double(bn->moving_mean()->Get(c))) * s;
    CHECK(double(folded.bias[size_t(c)]) == doctest::Approx(b).epsilon(1e-6));
    // weight of tap (0,0), input channel 1, output c
    const double w = double(stem->kernel()->Get(size_t(1) * cout + size_t(c))) * s;
    CHECK(double(folded.kernel_value(0, 0, 1, c)) == doctest::Approx(w).epsilon(1e-6));
  }
}

TEST_CASE("bad model files give one-line errors naming the file") {
  const std::string dir = test_support::temp_dir();
  auto check_fails = [](const std::string& path, const char* must_contain) {
    std::shared_ptr<const featx::Model> m;
    featx::Status st = featx::Model::load(path, &m);
    CAPTURE(st.message());
    CHECK_FALSE(st.ok());
    CHECK(m == nullptr);
    CHECK(st.message().find(path) != std::string::npos);
    CHECK(st.message().find('\n') == std::string::npos);
    CHECK(st.message().find(must_contain) != std::string::npos);
  };
  check_fails(dir + "/does_not_exist.featx", "no such file");

  auto bytes = valid_bytes();
  test_support::write_bytes(dir + "/empty.featx", {});
  check_fails(dir + "/empty.featx", "empty");

  test_support::write_bytes(dir + "/truncated.featx", std::vector<uint8_t>(bytes.begin(), bytes.begin() + std::ptrdiff_t(bytes.size() / 2)));
  check_fails(dir + "/truncated.featx", "truncated or corrupt");

  std::mt19937 rng(5);
  std::vector<uint8_t> noise(4096);
  for (auto& b : noise) b = uint8_t(rng());
  test_support::write_bytes(dir + "/noise.featx", noise);
  check_fails(dir + "/noise.featx", "not a featx model");

  auto wrong_id = bytes;
  std::memcpy(wrong_id.data() + 4, "TFL3", 4);
  test_support::write_bytes(dir + "/wrong_id.featx", wrong_id);
  check_fails(dir + "/wrong_id.featx", "wrong file identifier 'TFL3'");

  auto flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x10;  // inside the weights of the payload
  test_support::write_bytes(dir + "/flipped.featx", flipped);
  check_fails(dir + "/flipped.featx", "checksum mismatch");

  // Same payload, a format version newer than this runtime reads.
  const auto* file = featx::fb::GetModelFile(bytes.data());
  flatbuffers::FlatBufferBuilder fbb;
  fbb.ForceVectorAlignment(file->payload()->size(), 1, 16);
  auto payload = fbb.CreateVector(file->payload()->data(), file->payload()->size());
  fbb.Finish(featx::fb::CreateModelFile(fbb, featx::kFormatVersion + 1, file->payload_crc32c(), payload), featx::fb::ModelFileIdentifier());
  test_support::write_bytes(dir + "/v3.featx", std::vector<uint8_t>(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()));
  check_fails(dir + "/v3.featx", "format version 4 is not supported (this featx reads versions 1 to 3)");

  // A directory is not a model.
  check_fails(dir, "not a regular file");
}

TEST_CASE("ModelLimits: a file over the byte limit or with too many layers is refused before it is read") {
  const std::string path = test_support::small_model_path();
  const auto bytes = valid_bytes();
  std::shared_ptr<const featx::Model> m;
  featx::ModelLimits limits;
  CHECK(limits.max_file_bytes == FEATX_MAX_MODEL_BYTES);
  limits.max_file_bytes = bytes.size();  // exactly the file: allowed
  REQUIRE(featx::Model::load(path, limits, &m).ok());
  limits.max_file_bytes = bytes.size() - 1;
  for (int from_memory = 0; from_memory < 2; ++from_memory) {
    m.reset();
    const featx::Status st = from_memory ? featx::Model::from_memory(bytes.data(), bytes.size(), "mem.featx", limits, &m)
                                         : featx::Model::load(path, limits, &m);
    CAPTURE(st.message());
    CHECK(st.code() == featx::StatusCode::invalid_argument);
    CHECK(m == nullptr);
    CHECK(st.message().find(from_memory ? "mem.featx" : path) == 0);
    CHECK(st.message().find(std::to_string(bytes.size()) + " bytes, more than the limit of " +
                            std::to_string(bytes.size() - 1)) != std::string::npos);
  }
  // The small model has 17 blocks and no Dense head: 2 + 3 * 17 = 53 layers at most.
  limits = featx::ModelLimits();
  limits.max_layers = 53;
  CHECK(featx::Model::load(path, limits, &m).ok());
  limits.max_layers = 52;
  const featx::Status st = featx::Model::load(path, limits, &m);
  CAPTURE(st.message());
  CHECK(st.code() == featx::StatusCode::invalid_argument);
  CHECK(st.message().find(path + ": 17 blocks and 0 Dense layers, more than the limit of 52 layers") == 0);
}

TEST_CASE("no truncation or bit flip crashes the loader; payload flips are always caught") {
  auto bytes = valid_bytes();
  const auto* file = featx::fb::GetModelFile(bytes.data());
  const size_t payload_begin = size_t(file->payload()->data() - bytes.data());
  const size_t payload_end = payload_begin + file->payload()->size();
  std::mt19937 rng(17);
  for (int i = 0; i < 60; ++i) {
    const size_t cut = size_t(rng()) % bytes.size();
    CHECK_FALSE(load_bytes(std::vector<uint8_t>(bytes.begin(), bytes.begin() + std::ptrdiff_t(cut)), "cut").ok());
  }
  for (int i = 0; i < 60; ++i) {
    auto b = bytes;
    const size_t pos = i < 30 ? size_t(rng()) % 256 : payload_begin + size_t(rng()) % (payload_end - payload_begin);
    b[pos] ^= uint8_t(1u << (rng() % 8));
    featx::Status st = load_bytes(b, "flip");  // header flips may land in padding: only no crash
    if (pos >= payload_begin && pos < payload_end) CHECK_FALSE(st.ok());
  }
}

TEST_CASE("CRC-32C: check value, and the hardware and table paths agree") {
  const char* check = "123456789";
  CHECK(featx::crc32c(check, 9) == 0xE3069283u);
  CHECK(featx::crc32c_table(check, 9) == 0xE3069283u);
  std::mt19937 rng(5);
  std::vector<unsigned char> bytes(40099);
  for (auto& b : bytes) b = static_cast<unsigned char>(rng());
  // 12288 bytes and up run as three combined chains on the hardware path.
  for (size_t offset : {0u, 1u, 3u, 7u})
    for (size_t size : {0u, 1u, 7u, 8u, 9u, 63u, 4000u, 12287u, 12288u, 12289u, 12311u, 40000u}) {
      CAPTURE(offset); CAPTURE(size);
      const uint32_t want = featx::crc32c_table(bytes.data() + offset, size);
      CHECK(featx::crc32c(bytes.data() + offset, size) == want);
      // Extending a checksum equals checksumming the concatenation.
      const uint32_t first = featx::crc32c(bytes.data() + offset, size / 2);
      CHECK(featx::crc32c(bytes.data() + offset + size / 2, size - size / 2, first) == want);
    }
}
