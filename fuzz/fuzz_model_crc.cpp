// libFuzzer harness: Model::from_memory past the checksum. When the bytes
// pass the FlatBuffers verifier, the payload's CRC-32C is recomputed and
// written into the file before loading, so mutations of the network itself
// reach read_network() (fuzz_model.cpp sees them refused at the checksum).
// A model that loads is planned at 17x13 (odd: SAME padding's extra row and
// column) and run once, single-threaded, when it is small enough to be cheap.
#include <vector>

#include "featx/model.hpp"
#include "featx/plan.hpp"
#include "featx/run.hpp"
#include "fuzz_common.hpp"

namespace {

// Recomputes the stored payload CRC-32C of a verified file in place; false
// when the bytes are not a verifiable ModelFile or the field is absent.
bool fix_crc(std::vector<uint8_t>* bytes) {
  namespace fb = featx::fb;
  const uint8_t* p = bytes->data();
  if (bytes->size() < 8 || std::memcmp(p + 4, fb::ModelFileIdentifier(), 4) != 0) return false;
  flatbuffers::Verifier verifier(p, bytes->size());
  if (!fb::VerifyModelFileBuffer(verifier)) return false;
  const fb::ModelFile* file = fb::GetModelFile(p);
  const uint32_t crc = featx::crc32c(file->payload()->data(), file->payload()->size());
  // The generated ModelFile is a flatbuffers::Table (privately derived, no
  // members of its own): its field lookup finds where the scalar lives.
  const auto* table = reinterpret_cast<const flatbuffers::Table*>(file);
  const uint8_t* field = table->GetAddressOf(fb::ModelFile::VT_PAYLOAD_CRC32C);
  if (field == nullptr) return false;  // stored as the default (0): nothing to patch
  flatbuffers::WriteScalar(bytes->data() + (field - p), crc);
  return true;
}

// A cheap model: few layers, narrow ones (the file size bounds the weights,
// this bounds the work per pixel).
bool cheap(const featx::Model& m) {
  if (m.layers().size() > 64) return false;
  for (const featx::ConvLayer& l : m.layers())
    if (l.out_channels > 2048 || l.in_channels > 2048) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return featx_fuzz::guarded([&] {
    std::vector<uint8_t> bytes(data, data + size);
    fix_crc(&bytes);
    std::shared_ptr<const featx::Model> model;
    if (!featx_fuzz::check(featx::Model::from_memory(bytes.data(), bytes.size(), "fuzz.featx", &model),
                           "Model::from_memory"))
      return;
    if (!cheap(*model)) return;
    featx::PlanOptions po;
    po.height = 17;
    po.width = 13;
    po.threads = 1;
    if (model->num_classes() > 0) po.output = featx::Output::probabilities;
    featx::Plan plan;
    if (!featx_fuzz::check(featx::Plan::make(model, po, &plan), "Plan::make")) return;
    if (plan.workspace_bytes() > (size_t(64) << 20) || plan.output_elements() > (size_t(1) << 20)) return;
    std::vector<unsigned char> ws(plan.workspace_bytes());
    std::vector<float> image(size_t(po.height) * size_t(po.width) * 3, 0.5f);
    std::vector<float> out(plan.output_elements());
    featx_fuzz::check(featx::run(plan, image.data(), 1, ws.data(), ws.size(), out.data(), out.size()), "run");
  });
}
