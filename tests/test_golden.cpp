// Goldens: featx against ONNX Runtime on the same weights (tests/golden,
// made by tools/make_goldens.py). Bounds from the issue: max |error| <= 5e-5
// and relative L2 <= 1e-5 for every case; 1, 2 and 3 threads bit-identical.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "featx/featx.hpp"
#include "test_support.hpp"

namespace {

struct GoldenCase {
  std::string name, model_spec, input, output, output_name;
};

std::vector<GoldenCase> read_manifest() {
  std::vector<GoldenCase> cases;
  std::ifstream in(test_support::source_dir() + "/tests/golden/manifest.tsv");
  std::string line;
  bool header = true;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (header) { header = false; continue; }
    std::istringstream ss(line);
    GoldenCase c;
    std::getline(ss, c.name, '\t');
    std::getline(ss, c.model_spec, '\t');
    std::getline(ss, c.input, '\t');
    std::getline(ss, c.output, '\t');
    std::getline(ss, c.output_name, '\t');
    cases.push_back(c);
  }
  return cases;
}

// tools/make_test_models.py's naming rule.
std::string model_file_for(const std::string& spec) {
  if (spec.rfind("tflite:", 0) == 0) {
    std::string file = spec.substr(7);
    if (file.size() > 7 && file.compare(file.size() - 7, 7, ".tflite") == 0) file.resize(file.size() - 7);
    return test_support::models_dir() + "/tflite_" + file + ".featx";
  }
  // random:alpha=A,resolution=R,seed=S,classes=N
  std::map<std::string, std::string> kv;
  std::istringstream ss(spec.substr(spec.find(':') + 1));
  std::string item;
  while (std::getline(ss, item, ',')) kv[item.substr(0, item.find('='))] = item.substr(item.find('=') + 1);
  return test_support::models_dir() + "/random_a" + kv["alpha"] + "_r" + kv["resolution"] + "_s" +
         kv["seed"] + "_c" + kv["classes"] + ".featx";
}

std::string family_of(const std::string& spec) {
  if (spec.rfind("tflite:", 0) == 0) return spec;
  return spec.substr(0, spec.find(",resolution"));
}

std::string golden_path(const std::string& rel) { return test_support::source_dir() + "/tests/golden/" + rel; }

struct Errors { double max_abs = 0, rel_l2 = 0; };

Errors compare(const std::vector<float>& got, const std::vector<float>& want) {
  Errors e;
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = double(got[i]) - double(want[i]);
    e.max_abs = std::max(e.max_abs, std::fabs(d));
    num += d * d;
    den += double(want[i]) * double(want[i]);
  }
  e.rel_l2 = std::sqrt(num / std::max(den, 1e-30));
  return e;
}

featx::Status run_case(const std::shared_ptr<const featx::Model>& model, const GoldenCase& c,
                       const featx::NpyArray& input, int threads, featx::Tensor* out) {
  const int n = int(input.shape[0]), h = int(input.shape[1]), w = int(input.shape[2]);
  featx::ExtractorOptions opt;
  opt.threads = threads;
  if (c.output_name != "features" && c.output_name != "logits") {
    opt.layer = c.output_name;
    opt.pool = featx::Pool::none;
  }
  featx::Extractor ex(model, opt);
  if (c.output_name == "logits") return ex.logits(input.data.data(), n, h, w, out);
  return ex.extract(input.data.data(), n, h, w, out);
}

}  // namespace

TEST_CASE("featx matches ONNX Runtime on every golden case") {
  const auto cases = read_manifest();
  REQUIRE_MESSAGE(!cases.empty(), "tests/golden/manifest.tsv is missing or empty");
  std::map<std::string, std::shared_ptr<const featx::Model>> models;
  std::map<std::string, Errors> worst;  // per model family
  int skipped = 0, ran = 0;
  for (const GoldenCase& c : cases) {
    CAPTURE(c.name);
    if (c.model_spec.rfind("tflite:", 0) == 0 && !test_support::have_shared()) {
      ++skipped;
      continue;
    }
    auto& model = models[c.model_spec];
    if (!model) {
      const std::string path = model_file_for(c.model_spec);
      featx::Status st = featx::Model::load(path, &model);
      REQUIRE_MESSAGE(st.ok(), st.message());
    }
    featx::NpyArray input, expected;
    featx::Status st = featx::read_npy(golden_path(c.input), &input);
    REQUIRE_MESSAGE(st.ok(), st.message());
    st = featx::read_npy(golden_path(c.output), &expected);
    REQUIRE_MESSAGE(st.ok(), st.message());
    REQUIRE(input.shape.size() == 4);
    featx::Tensor got;
    st = run_case(model, c, input, 0, &got);
    REQUIRE_MESSAGE(st.ok(), st.message());
    REQUIRE(got.data.size() == expected.data.size());
    const Errors e = compare(got.data, expected.data);
    CHECK_MESSAGE(e.max_abs <= 5e-5, c.name << " max_abs " << e.max_abs);
    CHECK_MESSAGE(e.rel_l2 <= 1e-5, c.name << " rel_l2 " << e.rel_l2);
    Errors& w = worst[family_of(c.model_spec) + " " + c.output_name];
    w.max_abs = std::max(w.max_abs, e.max_abs);
    w.rel_l2 = std::max(w.rel_l2, e.rel_l2);
    ++ran;
  }
  for (const auto& kv : worst)
    MESSAGE("golden family " << kv.first << ": max_abs " << kv.second.max_abs << " rel_l2 " << kv.second.rel_l2);
  MESSAGE("golden cases run: " << ran << ", skipped (no ../shared): " << skipped);
  if (skipped) MESSAGE("WARNING: SKIPPED tflite goldens: " << test_support::shared_dir() << " not found");
  CHECK(ran > 0);
}

TEST_CASE("1, 2 and 3 threads give bit-identical results") {
  const auto cases = read_manifest();
  int checked = 0;
  for (const GoldenCase& c : cases) {
    if (c.model_spec.rfind("random:", 0) != 0 || c.output_name != "features") continue;
    if (checked >= 3) break;
    std::shared_ptr<const featx::Model> model;
    REQUIRE(featx::Model::load(model_file_for(c.model_spec), &model).ok());
    featx::NpyArray input;
    REQUIRE(featx::read_npy(golden_path(c.input), &input).ok());
    // Several threads split rows, pixels or channel panels (and run small
    // maps unfused); 3 threads give uneven shares.
    featx::Tensor one, two, again, three;
    REQUIRE(run_case(model, c, input, 1, &one).ok());
    REQUIRE(run_case(model, c, input, 2, &two).ok());
    REQUIRE(run_case(model, c, input, 2, &again).ok());
    REQUIRE(run_case(model, c, input, 3, &three).ok());
    CHECK(one.data == two.data);
    CHECK(two.data == again.data);
    CHECK(one.data == three.data);
    ++checked;
  }
  CHECK(checked > 0);
}

TEST_CASE("a batch gives the same rows as single images; odd sizes and named layers work") {
  std::shared_ptr<const featx::Model> model;
  REQUIRE(featx::Model::load(test_support::small_model_path(), &model).ok());
  const int h = 37, w = 29;
  std::vector<float> batch(size_t(2) * h * w * 3);
  for (size_t i = 0; i < batch.size(); ++i) batch[i] = float((i * 7919) % 1000) / 999.0f;
  featx::Extractor ex(model);
  featx::Tensor both, first, second;
  REQUIRE(ex.extract(batch.data(), 2, h, w, &both).ok());
  REQUIRE(ex.extract(batch.data(), 1, h, w, &first).ok());
  REQUIRE(ex.extract(batch.data() + size_t(h) * w * 3, 1, h, w, &second).ok());
  REQUIRE(both.shape == std::vector<int64_t>{2, 1280});
  CHECK(std::equal(first.data.begin(), first.data.end(), both.data.begin()));
  CHECK(std::equal(second.data.begin(), second.data.end(), both.data.begin() + 1280));

  // Spatial map of the feature layer: its mean is the feature vector.
  featx::ExtractorOptions opt;
  opt.pool = featx::Pool::none;
  featx::Extractor spatial(model, opt);
  featx::Tensor map;
  REQUIRE(spatial.extract(batch.data(), 1, h, w, &map).ok());
  REQUIRE(map.shape == std::vector<int64_t>{1, 2, 1, 1280});  // 37x29 -> /32 -> 2x1 (ceil)
  for (int c = 0; c < 1280; c += 97)
    CHECK(double(first.data[size_t(c)]) ==
          doctest::Approx((double(map.data[size_t(c)]) + double(map.data[size_t(1280 + c)])) / 2).epsilon(1e-6));

  // A named block and a named conv layer; an unknown name is an error.
  opt.layer = "expanded_conv_3";
  featx::Extractor block(model, opt);
  featx::Tensor b;
  REQUIRE(block.extract(batch.data(), 1, h, w, &b).ok());
  CHECK(b.shape[3] == model->blocks()[3].out_channels);
  opt.layer = "expanded_conv_3/expand";
  featx::Extractor layer(model, opt);
  REQUIRE(layer.extract(batch.data(), 1, h, w, &b).ok());
  CHECK(b.shape[3] == model->layers()[size_t(model->blocks()[3].expand)].out_channels);
  opt.layer = "no_such_layer";
  featx::Extractor bad(model, opt);
  featx::Status st = bad.extract(batch.data(), 1, h, w, &b);
  CHECK_FALSE(st.ok());
  CHECK(st.message().find("no_such_layer") != std::string::npos);
  // Zero-size input.
  featx::Extractor ex2(model);
  CHECK_FALSE(ex2.extract(batch.data(), 1, 0, 5, &b).ok());
}

// The image-group tests' batch: 37x29 ends in 5x4, 3x2 and 2x1 maps, so
// blocks 4-16 and the last conv run over groups, stride-2 depthwise convs
// among them; 5 images are a group of 4 and one of 1 on one thread.
constexpr int kGroupTestHeight = 37, kGroupTestWidth = 29, kGroupTestImages = 5;
static std::vector<float> group_test_batch(size_t multiplier, size_t divisor) {
  std::vector<float> batch(size_t(kGroupTestImages) * kGroupTestHeight * kGroupTestWidth * 3);
  for (size_t i = 0; i < batch.size(); ++i)
    batch[i] = float((i * multiplier + i / divisor) % 1000) / 999.0f;
  return batch;
}

// Chunk widths that divide the expanded channels, that do not (a narrower
// last chunk), and a single panel: every chunked batch gives the bits of
// single images run layer by layer through the fused blocks.
TEST_CASE("image groups: blocks run in chunks of expanded channels give the same bits") {
  std::shared_ptr<const featx::Model> model;
  REQUIRE(featx::Model::load(test_support::small_model_path(), &model).ok());
  const int h = kGroupTestHeight, w = kGroupTestWidth, n = kGroupTestImages;
  const size_t image_floats = size_t(h) * w * 3;
  const std::vector<float> batch = group_test_batch(104729, 89);
  featx::Extractor single(model);
  std::vector<featx::Tensor> singles(n);
  for (int i = 0; i < n; ++i)
    REQUIRE(single.extract(batch.data() + size_t(i) * image_floats, 1, h, w, &singles[size_t(i)]).ok());
  for (int chunk : {16, 40, 96, 192, 0}) {
    CAPTURE(chunk);
    featx::StepPlan plan;
    REQUIRE(featx::StepPlan::make(*model, h, w, "", &plan, true, 1, 4, chunk).ok());
    CHECK(plan.chunked_blocks().empty() == (chunk == 0));
    for (const featx::ChunkedBlock& c : plan.chunked_blocks()) {
      CHECK(c.chunk_channels % featx::kChunkAlign == 0);
      CHECK(c.chunk_channels >= chunk);
      CHECK(size_t(c.expand_step) >= plan.group_start());
    }
    for (int threads : {1, 2}) {
      CAPTURE(threads);
      featx::ExtractorOptions opt;
      opt.threads = threads;
      opt.group_chunk_channels = chunk;
      featx::Extractor grouped(model, opt);
      featx::Tensor all;
      REQUIRE(grouped.extract(batch.data(), n, h, w, &all).ok());
      for (int i = 0; i < n; ++i) {
        CAPTURE(i);
        CHECK(std::equal(singles[size_t(i)].data.begin(), singles[size_t(i)].data.end(),
                         all.data.begin() + std::ptrdiff_t(size_t(i) * singles[size_t(i)].data.size())));
      }
    }
  }
}

TEST_CASE("image groups: the grouped tail of a batch gives every image's single-run values") {
  std::shared_ptr<const featx::Model> model;
  REQUIRE(featx::Model::load(test_support::small_model_path(), &model).ok());
  const int h = kGroupTestHeight, w = kGroupTestWidth, n = kGroupTestImages;
  const size_t image_floats = size_t(h) * w * 3;
  const std::vector<float> batch = group_test_batch(7919, 97);
  featx::StepPlan plan;
  REQUIRE(featx::StepPlan::make(*model, h, w, "", &plan, true, 1, 4).ok());
  CHECK(plan.group_images() == 4);
  CHECK(plan.group_start() < plan.steps().size());
  CHECK(plan.steps()[plan.group_start()].geometry.in_h * plan.steps()[plan.group_start()].geometry.in_w <=
        featx::kGroupedMaxPixels);

  // The feature layer, a map inside the tail, and a block that ends just
  // before it (its project reads a map small enough for the tail).
  for (const char* layer : {"", "expanded_conv_16/expand", "expanded_conv_3"}) {
    featx::ExtractorOptions opt;
    opt.layer = layer;
    opt.pool = *layer ? featx::Pool::none : featx::Pool::avg;
    std::vector<featx::Tensor> singles(n);
    featx::Extractor single(model, opt);
    for (int i = 0; i < n; ++i)
      REQUIRE(single.extract(batch.data() + size_t(i) * image_floats, 1, h, w, &singles[size_t(i)]).ok());
    // 1 thread: groups of 4 + 1; 2 threads: images 0, 2, 4 and 1, 3.
    for (int threads : {1, 2}) {
      opt.threads = threads;
      featx::Extractor grouped(model, opt);
      featx::Tensor all;
      for (int run = 0; run < 2; ++run) {  // the second run reuses the buffers
        REQUIRE(grouped.extract(batch.data(), n, h, w, &all).ok());
        const size_t per_image = all.data.size() / n;
        for (int i = 0; i < n; ++i) {
          CAPTURE(std::string(layer));
          CAPTURE(threads);
          CAPTURE(i);
          REQUIRE(singles[size_t(i)].data.size() == per_image);
          CHECK(std::equal(singles[size_t(i)].data.begin(), singles[size_t(i)].data.end(),
                           all.data.begin() + std::ptrdiff_t(size_t(i) * per_image)));
        }
      }
      // One image, then the batch again, twice. One thread runs the image
      // on the batch's plan (a group of one: the same buffers from the
      // start); two threads plan once for each kind (threads inside the
      // image, images in parallel), after which alternating neither
      // re-plans nor resizes a buffer.
      const size_t batch_bytes = grouped.arena_bytes();
      size_t bytes = 0;
      for (int cycle = 0; cycle < 3; ++cycle) {
        CAPTURE(cycle);
        featx::Tensor one;
        REQUIRE(grouped.extract(batch.data() + 3 * image_floats, 1, h, w, &one).ok());
        CHECK(one.data == singles[3].data);
        if (threads == 1) CHECK(grouped.arena_bytes() == batch_bytes);
        if (cycle > 0) CHECK(grouped.arena_bytes() == bytes);
        REQUIRE(grouped.extract(batch.data(), n, h, w, &all).ok());
        for (int i = 0; i < n; ++i)
          CHECK(std::equal(singles[size_t(i)].data.begin(), singles[size_t(i)].data.end(),
                           all.data.begin() + std::ptrdiff_t(size_t(i) * singles[size_t(i)].data.size())));
        if (cycle == 0) bytes = grouped.arena_bytes();
        else CHECK(grouped.arena_bytes() == bytes);
      }
    }
  }
}

TEST_CASE("fused blocks give bit-identical results to layer-by-layer execution") {
  const auto cases = read_manifest();
  int checked = 0;
  for (const GoldenCase& c : cases) {
    if (c.output_name != "features" || checked >= 4) continue;
    if (c.model_spec.rfind("tflite:", 0) == 0 && !test_support::have_shared()) continue;
    std::shared_ptr<const featx::Model> model;
    REQUIRE(featx::Model::load(model_file_for(c.model_spec), &model).ok());
    featx::NpyArray input;
    REQUIRE(featx::read_npy(golden_path(c.input), &input).ok());
    const int h = int(input.shape[1]), w = int(input.shape[2]);
    for (int threads : {1, 2}) {
      featx::ExtractorOptions fused_opt, plain_opt;
      fused_opt.threads = plain_opt.threads = threads;
      plain_opt.fuse_blocks = false;
      featx::Extractor fused(model, fused_opt), plain(model, plain_opt);
      featx::Tensor a, b;
      REQUIRE(fused.extract(input.data.data(), 1, h, w, &a).ok());
      REQUIRE(plain.extract(input.data.data(), 1, h, w, &b).ok());
      CAPTURE(c.name);
      CHECK(a.data == b.data);
      // Spatial maps of a middle block, too.
      fused_opt.layer = plain_opt.layer = "expanded_conv_6";
      fused_opt.pool = plain_opt.pool = featx::Pool::none;
      featx::Extractor fused_map(model, fused_opt), plain_map(model, plain_opt);
      REQUIRE(fused_map.extract(input.data.data(), 1, h, w, &a).ok());
      REQUIRE(plain_map.extract(input.data.data(), 1, h, w, &b).ok());
      CHECK(a.data == b.data);
    }
    ++checked;
  }
  CHECK(checked > 0);
}

// The tuning (tuning.hpp) sizes bands and 1x1 blocks from the CPU's L2;
// machines with different caches must still give the same bits. 128 KiB and
// 4 MiB give other bands than 1 MiB (checked, so the option is not ignored).
TEST_CASE("plans tuned for different L2 sizes give bit-identical results") {
  std::shared_ptr<const featx::Model> model;
  REQUIRE(featx::Model::load(test_support::small_model_path(), &model).ok());
  const int h = 224, w = 200, n = 3;
  std::vector<float> images(size_t(n) * h * w * 3);
  for (size_t i = 0; i < images.size(); ++i) images[i] = float((i * 2654435761u) % 1000u) / 999.0f;
  for (featx::Pool pool : {featx::Pool::avg, featx::Pool::none}) {
    std::map<int, std::vector<float>> reference;  // by batch
    std::vector<std::vector<std::pair<std::string, int>>> bands;
    for (size_t l2 : {size_t(1) << 20, size_t(128) << 10, size_t(4) << 20}) {
      for (int threads : {1, 2}) {
        featx::PlanOptions opt;
        opt.height = h;
        opt.width = w;
        opt.batch = n;
        opt.pool = pool;
        opt.threads = threads;
        opt.l2_bytes = l2;
        featx::Plan plan;
        REQUIRE(featx::Plan::make(model, opt, &plan).ok());
        CHECK(plan.tuning().l2_bytes == l2);
        if (threads == 1) bands.push_back(plan.fused_band_rows());
        std::vector<unsigned char> workspace(plan.workspace_bytes());
        for (int batch : {1, n}) {
          std::vector<float> out(plan.output_elements());
          REQUIRE(featx::run(plan, images.data(), batch, workspace.data(), workspace.size(), out.data(), out.size())
                      .ok());
          out.resize(size_t(batch) * plan.output_elements_per_image());
          CAPTURE(l2);
          CAPTURE(threads);
          CAPTURE(batch);
          std::vector<float>& want = reference[batch];
          if (want.empty()) want = out;  // 1 MiB, 1 thread
          CHECK(out == want);
        }
      }
    }
    REQUIRE(bands.size() == 3);
    CHECK(!bands[0].empty());
    CHECK(bands[1] != bands[0]);
    CHECK(bands[2] != bands[0]);
  }
}

// Pixel values in [0, 1] that vary from one to the next.
static std::vector<float> patterned_pixels(size_t floats) {
  std::vector<float> v(floats);
  for (size_t i = 0; i < floats; ++i) v[i] = float((i * 2654435761u) % 1000u) / 999.0f;
  return v;
}

// One image's unpooled feature map from `plan` run with kernels `k` (a
// test's wrappers around the plan's own) in a workspace of its own.
static std::vector<float> feature_map_with(const featx::Model& model, const featx::Plan& plan, const featx::KernelSet& k,
                                           const std::vector<float>& image) {
  const auto& kind = featx::PlanAccess::kind_for(plan, 1);
  std::vector<unsigned char> workspace(plan.workspace_bytes());
  featx::BatchRunner runner(model, k, kind.steps, kind.chunk_weights, kind.schedule, kind.layout,
                            featx::aligned_workspace(workspace.data()), nullptr);
  std::vector<float> map;
  const size_t floats = kind.steps.output_shape().elements();
  runner.run_batch(image.data(), 1, [&](int, const float* result, float*) { map.assign(result, result + floats); });
  return map;
}

// Kernels that stall when OpenMP thread 1 calls them, as if a neighbour had
// taken its core, and count each thread's calls (detail/task_queues.hpp).
// The stall scales with the call's own time (8 x it, at least 500 us), so
// thread 1 stays several times slower under qemu's emulation too, where a
// fixed 500 us is shorter than a kernel call.
namespace stalled_core {
featx::KernelSet real;
std::atomic<int> calls[2];
std::atomic<bool> thread0_waited{false};
// The team shares work by stealing, so a helper the OS starts late (ctest
// runs tests side by side) may find every task taken and make no call; that
// is correct but tests nothing. Thread 0's first call waits until thread 1
// has made one (its own queue still holds tasks), for at most 10 s.
void wait_for_thread1_once() {
  if (thread0_waited.exchange(true)) return;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (calls[1].load() == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
}
template <typename Call>
void run_counted(Call&& call) {
  const int t = featx::detail::thread_index();
  if (t < 2) calls[t].fetch_add(1);
  if (t == 0) wait_for_thread1_once();
  const auto t0 = std::chrono::steady_clock::now();
  call();
  if (t == 1)
    std::this_thread::sleep_for(std::max<std::chrono::steady_clock::duration>(
        std::chrono::microseconds(500), 8 * (std::chrono::steady_clock::now() - t0)));
}
void conv2d(const featx::ConvGeometry& g, const float* in, const float* w, const float* b, featx::Activation a,
            float* out, int r0, int r1) {
  run_counted([&] { real.conv2d(g, in, w, b, a, out, r0, r1); });
}
void depthwise(const featx::ConvGeometry& g, const float* in, const float* w, const float* b, featx::Activation a,
               float* out, int r0, int r1) {
  run_counted([&] { real.depthwise(g, in, w, b, a, out, r0, r1); });
}
void pointwise(const float* in, size_t p0, size_t p1, int in_c, const float* w, const float* b, int out_c,
               featx::Activation a, const float* residual, float* out, int n0, int n1) {
  run_counted([&] { real.pointwise(in, p0, p1, in_c, w, b, out_c, a, residual, out, n0, n1); });
}
}  // namespace stalled_core

// Thread 1 sleeps in every kernel call, so thread 0 runs its own share of
// each layer and block and then takes thread 1's remaining tasks: thread 0
// makes most of the calls, and the feature map keeps the one-thread bits.
TEST_CASE("a stalled thread's tasks are taken over by the other, with the same bits") {
  if (featx::detail::resolve_threads(2) < 2) return;  // no OpenMP: one thread
  std::shared_ptr<const featx::Model> model;
  REQUIRE(featx::Model::load(test_support::small_model_path(), &model).ok());
  const int h = 224, w = 224;
  const std::vector<float> image = patterned_pixels(size_t(h) * w * 3);
  featx::PlanOptions opt;
  opt.height = h;
  opt.width = w;
  opt.pool = featx::Pool::none;
  std::vector<float> one_thread, stalled;
  for (int threads : {1, 2}) {
    opt.threads = threads;
    featx::Plan plan;
    REQUIRE(featx::Plan::make(model, opt, &plan).ok());
    const auto& kind = featx::PlanAccess::kind_for(plan, 1);
    if (threads == 2) REQUIRE(!kind.steps.fused_blocks().empty());  // fused bands are shared out too
    stalled_core::real = featx::PlanAccess::kernels(plan);
    featx::KernelSet k = stalled_core::real;
    if (threads == 2) {
      k.conv2d = stalled_core::conv2d;
      k.depthwise = stalled_core::depthwise;
      k.pointwise = stalled_core::pointwise;
    }
    (threads == 1 ? one_thread : stalled) = feature_map_with(*model, plan, k, image);
  }
  CHECK(stalled == one_thread);
  const int by0 = stalled_core::calls[0].load(), by1 = stalled_core::calls[1].load();
  CAPTURE(by0);
  CAPTURE(by1);
  CHECK(by1 > 0);
  CHECK(by0 > 2 * by1);
}

// Kernels that sleep 0-200 us in about one call of three, on any thread, so
// the bands of a chain of fused blocks (fused_chain.hpp) finish in orders
// a quiet machine never shows: a band that read rows before the band
// writing them was done, or wrote a slot a running band still read, would
// change the bits.
// Or, when stall_call >= 0, thread 1 sleeps 5 ms in its depthwise call of
// that number (between a band's expand and its project, which reads the
// residual) while the others run ahead into later blocks.
namespace jittery {
featx::KernelSet real;
std::atomic<uint32_t> calls{0};
std::atomic<int> thread1_calls{0};
int stall_call = -1;
template <typename Call>
void run_late(Call&& call, bool depthwise) {
  if (stall_call >= 0) {
    if (depthwise && featx::detail::thread_index() == 1 && thread1_calls.fetch_add(1) == stall_call)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  } else {
    const uint32_t n = calls.fetch_add(1) * 2654435761u;
    if (n % 3 == 0) std::this_thread::sleep_for(std::chrono::microseconds((n >> 8) % 200));
  }
  call();
}
void depthwise(const featx::ConvGeometry& g, const float* in, const float* w, const float* b, featx::Activation a,
               float* out, int r0, int r1) {
  run_late([&] { real.depthwise(g, in, w, b, a, out, r0, r1); }, true);
}
void pointwise(const float* in, size_t p0, size_t p1, int in_c, const float* w, const float* b, int out_c,
               featx::Activation a, const float* residual, float* out, int n0, int n1) {
  run_late([&] { real.pointwise(in, p0, p1, in_c, w, b, out_c, a, residual, out, n0, n1); }, false);
}
}  // namespace jittery

TEST_CASE("a chain of fused blocks gives one thread's bits whatever order its bands finish in") {
  for (int rows : {1, 2, 7, 56, 112})
    for (int bands = 1; bands <= rows; ++bands)
      for (int r = 0; r < rows; ++r) {
        int want = 0;
        while (want + 1 < bands && int64_t(rows) * (want + 1) / bands <= r) ++want;
        REQUIRE(featx::detail::band_of_row(r, rows, bands) == want);
      }
  if (featx::detail::resolve_threads(2) < 2) return;  // no OpenMP: one thread
  std::shared_ptr<const featx::Model> model;
  REQUIRE(featx::Model::load(test_support::small_model_path(), &model).ok());
  const int h = 161, w = 143;
  const std::vector<float> image = patterned_pixels(size_t(h) * w * 3);
  featx::PlanOptions opt;
  opt.height = h;
  opt.width = w;
  opt.pool = featx::Pool::none;
  std::vector<float> one_thread;
  for (int threads : {1, 2, 3, 4}) {
    CAPTURE(threads);
    opt.threads = threads;
    featx::Plan plan;
    REQUIRE(featx::Plan::make(model, opt, &plan).ok());
    const auto& kind = featx::PlanAccess::kind_for(plan, 1);
    CHECK((kind.layout.sync_floats > 0) == (threads > 1));  // a chain's state: several threads only
    if (threads > 1) REQUIRE(kind.steps.fused_blocks().size() >= 3);
    jittery::real = featx::PlanAccess::kernels(plan);
    featx::KernelSet k = jittery::real;
    if (threads > 1) {
      k.depthwise = jittery::depthwise;
      k.pointwise = jittery::pointwise;
    }
    // Random delays three times, then thread 1 stalled at each of its
    // first 48 depthwise calls in turn. Without the wait for the rows a
    // band reads, every run of this case failed; without the wait for
    // block s - 2 (the slot block s writes), about one in two did (with 3
    // or 4 threads: the others run two blocks ahead).
    for (int run = 0; run < (threads > 1 ? 3 + 48 : 1); ++run) {
      jittery::stall_call = run < 3 ? -1 : run - 3;
      jittery::thread1_calls.store(0);
      const std::vector<float> map = feature_map_with(*model, plan, k, image);
      CAPTURE(run);
      if (threads == 1) one_thread = map;
      else CHECK(map == one_thread);
    }
  }
}

TEST_CASE("one Model shared by Extractors on several threads") {
  std::shared_ptr<const featx::Model> model;
  REQUIRE(featx::Model::load(test_support::small_model_path(), &model).ok());
  const int h = 50, w = 61;
  std::vector<float> image(size_t(h) * w * 3);
  for (size_t i = 0; i < image.size(); ++i) image[i] = float((i * 2654435761u) % 1000u) / 999.0f;
  featx::ExtractorOptions opt;
  opt.threads = 1;
  featx::Extractor reference(model, opt);
  featx::Tensor want;
  REQUIRE(reference.extract(image.data(), 1, h, w, &want).ok());
  std::vector<featx::Tensor> got(4);
  std::vector<std::thread> workers;
  for (size_t t = 0; t < got.size(); ++t)
    workers.emplace_back([&, t] {
      featx::Extractor ex(model, opt);
      for (int i = 0; i < 3; ++i) (void)ex.extract(image.data(), 1, h, w, &got[t]);
    });
  for (auto& th : workers) th.join();
  for (const auto& g : got) CHECK(g.data == want.data);
}
