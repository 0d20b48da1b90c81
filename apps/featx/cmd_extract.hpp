// `featx extract` and `featx classify`: inputs -> batches -> rows.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <string>
#include <vector>

#include "args.hpp"
#include "featx/featx.hpp"
#include "extract_output.hpp"
#include "inputs.hpp"
#include "prefetch.hpp"
#include "progress.hpp"
#include "shard.hpp"
#include "writers.hpp"

namespace featx_cli {

struct RunSetup {
  std::shared_ptr<const featx::Model> model;
  featx::PreprocessOptions pre;
  int batch = 1;
  int threads = 0;
};

inline featx::Status common_setup(const Args& args, RunSetup* setup) {
  if (!args.has("--model")) return featx::invalid_argument("missing -m MODEL");
  FEATX_RETURN_IF_ERROR(featx::Model::load(args.get("--model"), &setup->model));
  setup->pre.height = setup->pre.width = setup->model->resolution();
  if (args.has("--size")) FEATX_RETURN_IF_ERROR(parse_size(args.get("--size"), &setup->pre.height, &setup->pre.width));
  if (args.has("--crop")) {
    char* end = nullptr;
    const std::string s = args.get("--crop");
    double f = std::strtod(s.c_str(), &end);
    if (s.empty() || *end || !(f > 0.0 && f <= 1.0))
      return featx::invalid_argument("--crop must be a fraction in (0, 1], got '" + featx::printable(s) + "'");
    setup->pre.central_crop = f;
  }
  if (args.has("--preprocess"))
    FEATX_RETURN_IF_ERROR(featx::parse_preset(args.get("--preprocess"), &setup->pre.preset));
  if (args.has("--max-image-pixels")) {
    int pixels = 0;
    FEATX_RETURN_IF_ERROR(parse_int("--max-image-pixels", args.get("--max-image-pixels"), 1,
                                    int(FEATX_MAX_IMAGE_PIXELS), &pixels));
    setup->pre.limits.max_pixels = pixels;
  }
  if (args.has("--batch")) FEATX_RETURN_IF_ERROR(parse_int("--batch", args.get("--batch"), 1, 4096, &setup->batch));
  if (args.has("--threads")) FEATX_RETURN_IF_ERROR(parse_int("--threads", args.get("--threads"), 1, 1024, &setup->threads));
  if (args.positional.empty() && !args.has("--list"))
    return featx::invalid_argument("no input files given");
  return featx::Status::Ok();
}

// Streams inputs in batches of equal-sized items through `run_batch`.
template <typename RunBatch>
inline featx::Status for_each_batch(const Args& args, const RunSetup& setup, RunBatch run_batch) {
  std::vector<std::string> files;
  FEATX_RETURN_IF_ERROR(gather_inputs(args.positional, args.has("--recursive"), args.get("--list"), &files));
  std::vector<InputItem> pending;
  auto flush = [&]() -> featx::Status {
    size_t i = 0;
    while (i < pending.size()) {
      size_t j = i;
      std::vector<float> batch;
      while (j < pending.size() && int(j - i) < setup.batch && pending[j].height == pending[i].height &&
             pending[j].width == pending[i].width) {
        batch.insert(batch.end(), pending[j].rgb.begin(), pending[j].rgb.end());
        ++j;
      }
      std::vector<std::string> names;
      for (size_t k = i; k < j; ++k) names.push_back(pending[k].name);
      FEATX_RETURN_IF_ERROR(run_batch(names, batch, int(j - i), pending[i].height, pending[i].width));
      i = j;
    }
    pending.clear();
    return featx::Status::Ok();
  };
  for (const std::string& f : files) {
    FEATX_RETURN_IF_ERROR(load_input(f, setup.pre, &pending));
    if (int(pending.size()) >= setup.batch) FEATX_RETURN_IF_ERROR(flush());
  }
  return flush();
}

// What a resumed run must share with the run it continues: the model, every
// option that changes a value, the shard and the inputs (not the batch or
// thread count: they change no bit).
inline std::string describe_job(const Args& args, const featx::Model& model, const featx::PreprocessOptions& pre,
                                const Shard& shard, const std::vector<std::string>& inputs) {
  uint64_t hash = 1469598103934665603ull;  // FNV-1a over the paths, each ended by '\n'
  for (const std::string& in : inputs)
    for (const char c : in + "\n") hash = (hash ^ uint64_t(uint8_t(c))) * 1099511628211ull;
  char options[512];
  // The image limit decides which inputs are skipped: part of the job.
  const std::string limit =
      args.has("--max-image-pixels") ? " max-image-pixels=" + std::to_string(pre.limits.pixels()) : "";
  std::snprintf(options, sizeof options, "pool=%s layer=%s size=%dx%d crop=%.17g preprocess=%s l2=%d%s\n",
                args.get("--pool", "avg").c_str(), args.get("--layer").c_str(), pre.height, pre.width,
                pre.central_crop, args.get("--preprocess", "tf").c_str(), int(args.has("--l2")), limit.c_str());
  return "featx extract job 1\nmodel " + args.get("--model") + " " + std::to_string(model.file_bytes()) + "\n" +
         options + "shard " + std::to_string(shard.index) + "/" + std::to_string(shard.count) + "\ninputs " +
         std::to_string(inputs.size()) + " " + std::to_string(hash) + "\n";
}

// Scales each row to unit L2 norm (in double); a zero row stays zero.
inline void l2_normalize(float* rows, size_t n, size_t per) {
  for (size_t r = 0; r < n; ++r) {
    float* v = rows + r * per;
    double sum = 0.0;
    for (size_t i = 0; i < per; ++i) sum += double(v[i]) * double(v[i]);
    if (sum > 0.0) {
      const double inv = 1.0 / std::sqrt(sum);
      for (size_t i = 0; i < per; ++i) v[i] = float(double(v[i]) * inv);
    }
  }
}

// Records for `featx merge` which part of the inputs a sharded output holds.
inline featx::Status write_shard_record(const std::string& out, const Shard& shard, size_t first, size_t end,
                                        const std::string& job) {
  const std::string path = out + ".shard.txt";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return featx::io_error(path + ": cannot create");
  // The job without its shard line: what every part of one run shares.
  std::string run;
  for (size_t at = 0; at < job.size();) {
    const size_t nl = job.find('\n', at);
    const std::string line = job.substr(at, nl - at + 1);
    if (line.compare(0, 6, "shard ") != 0) run += line;
    at = nl + 1;
  }
  std::fprintf(f, "featx shard 2\nshard %d %d\nrange %zu %zu\n%s", shard.index, shard.count, first, end, run.c_str());
  if (std::fclose(f) != 0) return featx::io_error(path + ": write failed");
  return featx::Status::Ok();
}

inline featx::Status cmd_extract(const Args& args) {
  RunSetup setup;
  FEATX_RETURN_IF_ERROR(common_setup(args, &setup));
  featx::ExtractorOptions opt;
  FEATX_RETURN_IF_ERROR(featx::parse_pool(args.get("--pool", "avg"), &opt.pool));
  opt.layer = args.get("--layer");
  int decoders = default_decoders();
  if (args.has("--decoders")) FEATX_RETURN_IF_ERROR(parse_int("--decoders", args.get("--decoders"), 0, 256, &decoders));
  // Without --threads the network leaves the decoders their cores: OpenMP
  // threads spin between layers, and a core shared with a decoder makes the
  // whole team wait for it (bench/RESULTS.md, "featx extract, pipelined").
  opt.threads = setup.threads ? setup.threads : network_threads_beside(decoders);
  Shard shard;
  FEATX_RETURN_IF_ERROR(resolve_shard(args, &shard));
  std::vector<std::string> files;
  FEATX_RETURN_IF_ERROR(gather_inputs(args.positional, args.has("--recursive"), args.get("--list"), &files));
  if (files.empty()) return featx::invalid_argument(args.get("--list") + ": lists no inputs");
  const size_t first = shard.begin(files.size()), end = shard.end(files.size());
  const std::string out_path = args.get("--output");
  const std::string job = describe_job(args, *setup.model, setup.pre, shard, files);
  if (shard.sharded() && !(out_path.size() > 4 && out_path.compare(out_path.size() - 4, 4, ".npy") == 0))
    return featx::invalid_argument("--shard needs an .npy output (-o PART.npy) for featx merge");

  ExtractOutput out;
  size_t start = first;
  FEATX_RETURN_IF_ERROR(out.open(out_path, job, args.has("--resume"), files, first, end, &start));
  const bool single_input = files.size() == 1;  // the old contract: its error line alone
  Progress progress(end - start, args.has("--quiet"));
  featx::Extractor extractor(setup.model, opt);
  std::vector<InputItem> pending;
  size_t done = 0, failed = 0;
  auto flush = [&]() -> featx::Status {
    size_t i = 0;
    std::vector<float> batch;
    std::vector<std::string> names;
    featx::Tensor t;
    while (i < pending.size()) {
      size_t j = i;
      batch.clear();
      names.clear();
      while (j < pending.size() && int(j - i) < setup.batch && pending[j].height == pending[i].height &&
             pending[j].width == pending[i].width) {
        batch.insert(batch.end(), pending[j].rgb.begin(), pending[j].rgb.end());
        names.push_back(pending[j].name);
        ++j;
      }
      const int n = int(j - i);
      featx::Status st = extractor.extract(batch.data(), n, pending[i].height, pending[i].width, &t);
      if (!st) return featx::Status(st.code(), names.front() + ": " + st.message());
      const size_t per = t.data.size() / size_t(n);
      if (args.has("--l2")) l2_normalize(t.data.data(), size_t(n), per);
      FEATX_RETURN_IF_ERROR(out.add_rows(names, t.data.data(), size_t(n),
                                         std::vector<int64_t>(t.shape.begin() + 1, t.shape.end())));
      i = j;
    }
    pending.clear();
    return out.commit();
  };
  featx::Status run_status = [&]() -> featx::Status {
    // The window: enough decoded inputs ahead for the next batch and one
    // per decoder on the way, bounded memory whatever the input count.
    Prefetcher prefetch(files, start, end, setup.pre, decoders, size_t(2 * setup.batch + decoders));
    for (size_t i = start; i < end; ++i) {
      LoadedInput in = prefetch.take(i);
      if (!in.status) {
        if (single_input) return in.status;
        progress.clear_line();
        std::fprintf(stderr, "featx: error: %s\n", in.status.message().c_str());
        out.add_error(files[i], in.status.message());
        ++failed;
      } else {
        for (InputItem& item : in.items) pending.push_back(std::move(item));
        if (int(pending.size()) >= setup.batch) FEATX_RETURN_IF_ERROR(flush());
        ++done;
      }
      progress.update(done + failed, failed);
    }
    return flush();
  }();
  progress.finish();
  if (!run_status) {
    out.abandon();
    return run_status;
  }
  FEATX_RETURN_IF_ERROR(out.finish());
  if (shard.sharded()) FEATX_RETURN_IF_ERROR(write_shard_record(out_path, shard, first, end, job));
  if (!args.has("--quiet"))
    std::fprintf(stderr, "featx: %zu done, %zu skipped (resumed), %zu failed, %.1f images/s%s\n", done,
                 start - first, failed, progress.images_per_second(),
                 shard.sharded() ? (", shard " + std::to_string(shard.index) + "/" + std::to_string(shard.count) +
                                    " (" + shard.from + ")").c_str()
                                 : "");
  const size_t failed_total = out.errors();
  if (failed_total == 0) return featx::Status::Ok();
  return featx::io_error(std::to_string(failed_total) + " of " + std::to_string(end - first) +
                         " inputs failed" +
                         (out.errors_path().empty() ? std::string() : " (listed in " + out.errors_path() + ")"));
}

// One input's top k as classify prints it (also with --probe, cmd_probe.hpp):
// its name on a line, then per rank two spaces, rank, TAB, probability, TAB,
// class index, TAB, label; ties go to the lower class index.
template <typename LabelOf>
inline void print_ranking(const std::string& name, const float* p, int classes, int k, LabelOf label_of) {
  std::vector<int> order(static_cast<size_t>(classes));
  for (int c = 0; c < classes; ++c) order[size_t(c)] = c;
  const int top = std::min(k, classes);
  std::partial_sort(order.begin(), order.begin() + top, order.end(),
                    [&](int a, int b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
  std::printf("%s\n", name.c_str());
  for (int r = 0; r < top; ++r) {
    const int c = order[size_t(r)];
    std::printf("  %d\t%.6f\t%d\t%s\n", r + 1, double(p[c]), c, std::string(label_of(c)).c_str());
  }
}

inline featx::Status cmd_classify(const Args& args) {
  RunSetup setup;
  FEATX_RETURN_IF_ERROR(common_setup(args, &setup));
  if (!setup.model->has_classifier())
    return featx::invalid_argument(setup.model->name() + ": model has no classifier head "
                                   "(export a model with one, e.g. from a .tflite classifier)");
  int k = 5;
  if (args.has("--top")) FEATX_RETURN_IF_ERROR(parse_int("-k", args.get("--top"), 1, 100000, &k));
  std::vector<std::string> labels;
  if (args.has("--labels")) FEATX_RETURN_IF_ERROR(featx::read_labels(args.get("--labels"), &labels));
  // A labels file names class c on line c + label_offset; without one, the
  // model's own labels (e.g. Teachable Machine's), else "class c".
  const int offset = labels.empty() ? 0 : setup.model->label_offset();
  if (labels.empty()) labels = setup.model->labels();
  featx::ExtractorOptions opt;
  opt.threads = setup.threads;
  featx::Extractor extractor(setup.model, opt);
  return for_each_batch(
      args, setup,
      [&](const std::vector<std::string>& names, const std::vector<float>& batch, int n, int h,
          int w) -> featx::Status {
        featx::Tensor t;
        featx::Status st = extractor.probabilities(batch.data(), n, h, w, &t);
        if (!st) return featx::Status(st.code(), names.front() + ": " + st.message());
        const int classes = int(t.shape[1]);
        auto label_of = [&](int c) {
          const size_t li = size_t(c + offset);
          return li < labels.size() ? labels[li] : "class " + std::to_string(c);
        };
        for (int i = 0; i < n; ++i)
          print_ranking(names[size_t(i)], t.data.data() + size_t(i) * size_t(classes), classes, k, label_of);
        return featx::Status::Ok();
      });
}

}  // namespace featx_cli
