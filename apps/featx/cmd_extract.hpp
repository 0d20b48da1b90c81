// `featx extract` and `featx classify`: inputs -> batches -> rows.
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "args.hpp"
#include "featx/featx.hpp"
#include "inputs.hpp"
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
      return featx::invalid_argument("--crop must be a fraction in (0, 1], got '" + s + "'");
    setup->pre.central_crop = f;
  }
  if (args.has("--preprocess"))
    FEATX_RETURN_IF_ERROR(featx::parse_preset(args.get("--preprocess"), &setup->pre.preset));
  if (args.has("--batch")) FEATX_RETURN_IF_ERROR(parse_int("--batch", args.get("--batch"), 1, 4096, &setup->batch));
  if (args.has("--threads")) FEATX_RETURN_IF_ERROR(parse_int("--threads", args.get("--threads"), 1, 1024, &setup->threads));
  if (args.positional.empty()) return featx::invalid_argument("no input files given");
  return featx::Status::Ok();
}

// Streams inputs in batches of equal-sized items through `run_batch`.
template <typename RunBatch>
inline featx::Status for_each_batch(const Args& args, const RunSetup& setup, RunBatch run_batch) {
  std::vector<std::string> files;
  FEATX_RETURN_IF_ERROR(expand_inputs(args.positional, &files));
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

inline featx::Status cmd_extract(const Args& args) {
  RunSetup setup;
  FEATX_RETURN_IF_ERROR(common_setup(args, &setup));
  featx::ExtractorOptions opt;
  FEATX_RETURN_IF_ERROR(featx::parse_pool(args.get("--pool", "avg"), &opt.pool));
  opt.layer = args.get("--layer");
  opt.threads = setup.threads;
  featx::Extractor extractor(setup.model, opt);
  std::vector<Row> rows;
  std::vector<int64_t> item_shape;
  FEATX_RETURN_IF_ERROR(for_each_batch(
      args, setup,
      [&](const std::vector<std::string>& names, const std::vector<float>& batch, int n, int h,
          int w) -> featx::Status {
        featx::Tensor t;
        featx::Status st = extractor.extract(batch.data(), n, h, w, &t);
        if (!st) return featx::Status(st.code(), names.front() + ": " + st.message());
        std::vector<int64_t> shape(t.shape.begin() + 1, t.shape.end());
        if (!item_shape.empty() && shape != item_shape)
          return featx::invalid_argument(names.front() + ": output shape differs from earlier "
                                         "inputs (use --pool avg/max or inputs of one size)");
        item_shape = shape;
        const size_t per = t.data.size() / size_t(n);
        for (int i = 0; i < n; ++i)
          rows.push_back(Row{names[size_t(i)], std::vector<float>(t.data.begin() + std::ptrdiff_t(i * per),
                                                                   t.data.begin() + std::ptrdiff_t((i + 1) * per))});
        return featx::Status::Ok();
      }));
  return write_rows(args.get("--output"), rows, item_shape);
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
        for (int i = 0; i < n; ++i) {
          const float* p = t.data.data() + size_t(i) * size_t(classes);
          std::vector<int> order(static_cast<size_t>(classes));
          for (int c = 0; c < classes; ++c) order[size_t(c)] = c;
          const int top = std::min(k, classes);
          std::partial_sort(order.begin(), order.begin() + top, order.end(),
                            [&](int a, int b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
          std::printf("%s\n", names[size_t(i)].c_str());
          for (int r = 0; r < top; ++r) {
            const int c = order[size_t(r)];
            const size_t li = size_t(c + offset);
            std::string label = li < labels.size() ? labels[li] : "class " + std::to_string(c);
            std::printf("  %d\t%.6f\t%d\t%s\n", r + 1, double(p[c]), c, label.c_str());
          }
        }
        return featx::Status::Ok();
      });
}

}  // namespace featx_cli
