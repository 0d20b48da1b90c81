// examples/batch_extract.cpp: a folder's worth of images into one .npy of
// feature vectors, streamed: rows go to disk batch by batch (memory stays
// flat whatever the number of images), the next batch is decoded on another
// thread while the network runs this one, and an image that cannot be read
// is reported and skipped. `featx extract` does the same with more options
// (several decoders, --resume, --shard: docs/batch_extraction.md).
//
//   batch_extract MODEL.featx OUT.npy [--crop F] IMAGE...
//     OUT.npy            float32 (rows, features); OUT.npy.names.txt: a row's image per line
//     --crop F           tf.image.central_crop(F) before resizing (0 < F <= 1)
// Exit status 1 when an image failed (the others are written), 2 on usage.
#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>
#include <vector>

#include <featx/featx.hpp>
#include <featx/npy_writer.hpp>

namespace {

constexpr int kBatch = 4;

// One batch of images decoded and resized into the network's input layout.
struct DecodedBatch {
  std::vector<float> pixels;         // n images of H x W x 3, one after another
  std::vector<std::string> names;    // the n images' paths
  std::vector<std::string> errors;   // one line per image that failed
};

DecodedBatch decode_batch(const std::vector<std::string>& paths, size_t first, const featx::PreprocessOptions& opt) {
  DecodedBatch b;
  for (size_t i = first; i < paths.size() && b.names.size() < size_t(kBatch); ++i) {
    featx::Image image;
    const featx::Status st = featx::load_image(paths[i], opt, &image);
    if (!st) {
      b.errors.push_back(st.message());
      continue;
    }
    b.pixels.insert(b.pixels.end(), image.rgb.begin(), image.rgb.end());
    b.names.push_back(paths[i]);
  }
  return b;
}

int fail(const featx::Status& st) { return std::fprintf(stderr, "batch_extract: %s\n", st.message().c_str()), 1; }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return std::fprintf(stderr, "usage: batch_extract MODEL.featx OUT.npy [--crop F] IMAGE...\n"), 2;
  const std::string model_path = argv[1], out_path = argv[2];
  featx::PreprocessOptions opt;
  int first_image = 3;
  if (std::string(argv[3]) == "--crop") {
    if (argc < 6) return std::fprintf(stderr, "batch_extract: --crop needs a fraction and images\n"), 2;
    opt.central_crop = std::atof(argv[4]);
    first_image = 5;
  }
  const std::vector<std::string> paths(argv + first_image, argv + argc);

  std::shared_ptr<const featx::Model> model;
  featx::Status st = featx::Model::load(model_path, &model);
  featx::PlanOptions plan_options;
  plan_options.batch = kBatch;
  featx::Plan plan;
  if (st) st = featx::Plan::make(model, plan_options, &plan);
  if (!st) return fail(st);
  opt.height = plan.height();
  opt.width = plan.width();

  // Rows stream into OUT.npy; its names are held until the end (a line per
  // image is small beside its 1280 floats, and written last they can only
  // ever describe rows that are on disk).
  featx::NpyRowWriter rows;
  st = featx::NpyRowWriter::create(out_path, {int64_t(plan.output_elements_per_image())}, &rows);
  if (!st) return fail(st);
  std::vector<unsigned char> workspace(plan.workspace_bytes());
  std::vector<float> features(plan.output_elements());
  std::vector<std::string> names;
  size_t failed = 0;

  size_t next = 0;  // the first path the next decode looks at
  auto decode_from = [&](size_t first) { return std::async(std::launch::async, decode_batch, std::cref(paths), first, opt); };
  std::future<DecodedBatch> pending = decode_from(0);
  while (pending.valid()) {
    DecodedBatch batch = pending.get();
    next += batch.names.size() + batch.errors.size();
    if (next < paths.size()) pending = decode_from(next);  // decoded while the network runs below
    for (const std::string& e : batch.errors) std::fprintf(stderr, "batch_extract: skipped: %s\n", e.c_str());
    failed += batch.errors.size();
    const int n = int(batch.names.size());
    if (n == 0) continue;
    st = featx::run(plan, batch.pixels.data(), n, workspace.data(), workspace.size(), features.data(), features.size());
    if (st) st = rows.append(features.data(), size_t(n));
    if (!st) return fail(st);
    names.insert(names.end(), batch.names.begin(), batch.names.end());
  }
  st = rows.finish();
  if (!st) return fail(st);
  const std::string names_path = out_path + ".names.txt";
  std::FILE* f = std::fopen(names_path.c_str(), "w");
  if (!f) return std::fprintf(stderr, "batch_extract: %s: cannot create\n", names_path.c_str()), 1;
  for (const std::string& name : names) std::fprintf(f, "%s\n", name.c_str());
  if (std::fclose(f) != 0) return std::fprintf(stderr, "batch_extract: %s: write failed\n", names_path.c_str()), 1;

  std::printf("%zu images -> %s (%zu x %zu float32), %zu failed\n", names.size(), out_path.c_str(), names.size(),
              plan.output_elements_per_image(), failed);
  return failed ? 1 : 0;
}
