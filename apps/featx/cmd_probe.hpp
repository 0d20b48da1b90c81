// `featx train-probe` and `featx classify --probe`: few-shot classifiers on
// frozen feature vectors (featx/probe.hpp, docs/probe.md).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "args.hpp"
#include "cmd_extract.hpp"
#include "featx/detail/checked_size.hpp"
#include "featx/file.hpp"
#include "featx/npy.hpp"
#include "featx/probe.hpp"

namespace featx_cli {

// The lines of a text file; a trailing CR is dropped (files written on
// Windows) and a final newline does not start another line.
inline featx::Status read_text_lines(const std::string& path, std::vector<std::string>* lines) {
  lines->clear();
  std::vector<uint8_t> bytes;
  FEATX_RETURN_IF_ERROR(featx::read_file(path, &bytes, uint64_t(1) << 30));
  std::string line;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] == '\n') {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      lines->push_back(line);
      line.clear();
    } else {
      line.push_back(char(bytes[i]));
    }
  }
  if (!line.empty()) {
    if (line.back() == '\r') line.pop_back();
    lines->push_back(line);
  }
  return featx::Status::Ok();
}

// The name of the directory holding `path`: "photos/cat/01.jpg" -> "cat".
inline bool parent_directory_name(const std::string& path, std::string* out) {
  size_t end = path.find_last_of('/');
  while (end != std::string::npos && end > 0 && path[end - 1] == '/') --end;  // "a//b.png"
  if (end == std::string::npos || end == 0) return false;
  const size_t begin = path.find_last_of('/', end - 1);
  *out = path.substr(begin == std::string::npos ? 0 : begin + 1, end - (begin == std::string::npos ? 0 : begin + 1));
  return !out->empty() && *out != "." && *out != "..";
}

// A (N, D) float32 .npy of feature vectors, N >= 1, D >= 1.
inline featx::Status read_vectors(const std::string& path, featx::NpyArray* a) {
  FEATX_RETURN_IF_ERROR(featx::read_npy(path, a));
  if (a->shape.size() != 2 || a->shape[0] < 1 || a->shape[1] < 1)
    return featx::invalid_argument(path + ": expected feature vectors of shape (N, D), got " +
                                   featx::npy_detail::shape_string(a->shape));
  return featx::Status::Ok();
}

// featx train-probe -o PROBE.fxp [--kind logistic|mean] [--l2 LAMBDA] [--max-iter N] [--tol G]
//                   VECTORS.npy (LABELS.txt | --labels-from-dirs)
inline featx::Status cmd_train_probe(const Args& args) {
  if (!args.has("--output")) return featx::invalid_argument("missing -o PROBE.fxp");
  featx::ProbeTrainOptions opt;
  if (args.has("--kind")) FEATX_RETURN_IF_ERROR(featx::parse_probe_kind(args.get("--kind"), &opt.kind));
  if (args.has("--l2")) FEATX_RETURN_IF_ERROR(parse_double("--l2", args.get("--l2"), 1e-12, 1e6, &opt.l2));
  if (args.has("--tol")) FEATX_RETURN_IF_ERROR(parse_double("--tol", args.get("--tol"), 1e-15, 1.0, &opt.gradient_tolerance));
  if (args.has("--max-iter"))
    FEATX_RETURN_IF_ERROR(parse_int("--max-iter", args.get("--max-iter"), 0, 1000000, &opt.max_iterations));
  if (opt.kind == featx::ProbeKind::mean && (args.has("--l2") || args.has("--tol") || args.has("--max-iter")))
    return featx::invalid_argument("--l2, --tol and --max-iter apply to --kind logistic only (the mean probe has no optimiser)");
  const bool from_dirs = args.has("--labels-from-dirs");
  if (args.positional.size() != (from_dirs ? 1u : 2u))
    return featx::invalid_argument(from_dirs ? "train-probe --labels-from-dirs takes one VECTORS.npy"
                                             : "train-probe takes VECTORS.npy and LABELS.txt (or --labels-from-dirs)");

  const std::string vectors_path = args.positional[0];
  featx::NpyArray x;
  FEATX_RETURN_IF_ERROR(read_vectors(vectors_path, &x));
  const size_t n = size_t(x.shape[0]), d = size_t(x.shape[1]);

  std::vector<std::string> labels;
  const std::string labels_path = from_dirs ? vectors_path + ".names.txt" : args.positional[1];
  FEATX_RETURN_IF_ERROR(read_text_lines(labels_path, &labels));
  if (labels.size() != n)
    return featx::invalid_argument(labels_path + ": " + std::to_string(labels.size()) + " lines for the " +
                                   std::to_string(n) + " vectors of " + vectors_path);
  for (size_t i = 0; i < n; ++i) {
    if (from_dirs) {
      std::string dir;
      if (!parent_directory_name(labels[i], &dir))
        return featx::invalid_argument(labels_path + ":" + std::to_string(i + 1) + ": " +
                                       featx::probe_detail::quoted(labels[i]) + " has no parent directory to name its class");
      labels[i] = dir;
    }
    const std::string problem = featx::probe_detail::name_problem(labels[i]);
    if (!problem.empty())
      return featx::invalid_argument(labels_path + ":" + std::to_string(i + 1) + ": label " + problem);
  }

  featx::Probe probe;
  featx::ProbeTrainReport rep;
  featx::Status st = featx::Probe::train(x.data.data(), n, d, labels, opt, &probe, &rep);
  if (!st) return featx::Status(st.code(), vectors_path + ": " + st.message());
  const std::string out = args.get("--output");
  FEATX_RETURN_IF_ERROR(probe.save(out));

  std::printf("probe %s: %s, %d classes, %zu vectors of %zu dims", out.c_str(), featx::probe_kind_name(opt.kind),
              probe.classes(), n, d);
  if (opt.kind == featx::ProbeKind::logistic) std::printf(", l2 %g", opt.l2);
  std::printf("\ntraining accuracy %.6f (%zu/%zu)\n", rep.accuracy(), rep.correct, rep.samples);
  if (opt.kind == featx::ProbeKind::logistic) {
    std::printf("iterations %d, %s (gradient norm %.3g, tolerance %g), loss %.9g\n", rep.iterations,
                rep.converged ? "converged" : "NOT converged", rep.gradient_norm, opt.gradient_tolerance, rep.loss);
    if (!rep.converged)
      std::fprintf(stderr, "featx: warning: %s: stopped after %d iterations with gradient norm %.3g > %g "
                           "(saved anyway; raise --max-iter or --tol)\n",
                   out.c_str(), rep.iterations, rep.gradient_norm, opt.gradient_tolerance);
  } else {
    std::printf("iterations 0 (closed form), loss %.9g\n", rep.loss);
  }
  return featx::Status::Ok();
}

// featx classify --probe PROBE.fxp [-k 5] (-m MODEL [--size HxW] [--crop F] [--preprocess P] IMAGE... | VECTORS.npy...)
inline featx::Status cmd_classify_probe(const Args& args) {
  const std::string probe_path = args.get("--probe");
  if (args.has("--labels"))
    return featx::invalid_argument("--labels does not apply with --probe (" + probe_path + " names its classes)");
  featx::Probe probe;
  FEATX_RETURN_IF_ERROR(featx::Probe::load(probe_path, &probe));
  int k = 5;
  if (args.has("--top")) FEATX_RETURN_IF_ERROR(parse_int("-k", args.get("--top"), 1, 100000, &k));
  const int classes = probe.classes();
  const auto& names = probe.class_names();
  auto label_of = [&](int c) { return names[size_t(c)]; };
  std::vector<float> p;
  auto classify_rows = [&](const std::vector<std::string>& row_names, const float* x, size_t n, size_t d,
                           const std::string& source) -> featx::Status {
    if (d != probe.dims())
      return featx::invalid_argument(source + ": vectors of " + std::to_string(d) + " dims, but " + probe_path +
                                     " was trained on " + std::to_string(probe.dims()));
    featx::detail::SizeCheck size;  // n x d is in memory, n x classes may not fit
    const size_t values = size.mul(n, size_t(classes));
    size.mul(values, sizeof(float));
    if (size.overflow)
      return featx::invalid_argument(source + ": " + std::to_string(n) + " vectors x " + std::to_string(classes) +
                                     " classes of probabilities need more memory than this target can address");
    p.resize(values);
    featx::Status st = probe.predict(x, n, d, p.data(), p.size());
    if (!st) return featx::Status(st.code(), source + ": " + st.message());
    for (size_t i = 0; i < n; ++i) print_ranking(row_names[i], p.data() + i * size_t(classes), classes, k, label_of);
    return featx::Status::Ok();
  };

  if (!args.has("--model")) {
    // Feature vectors straight from `featx extract -o X.npy`: no network.
    if (args.positional.empty()) return featx::invalid_argument("no input files given (VECTORS.npy, or -m MODEL IMAGE...)");
    for (const std::string& path : args.positional) {
      if (!is_npy(path))
        return featx::invalid_argument(path + ": without -m MODEL, classify --probe takes feature vectors (.npy)");
      featx::NpyArray x;
      FEATX_RETURN_IF_ERROR(read_vectors(path, &x));
      const size_t n = size_t(x.shape[0]);
      std::vector<std::string> row_names;
      std::vector<std::string> listed;
      if (read_text_lines(path + ".names.txt", &listed).ok() && listed.size() == n) row_names = listed;
      else
        for (size_t i = 0; i < n; ++i) row_names.push_back(path + "[" + std::to_string(i) + "]");
      FEATX_RETURN_IF_ERROR(classify_rows(row_names, x.data.data(), n, size_t(x.shape[1]), path));
    }
    return featx::Status::Ok();
  }

  RunSetup setup;
  FEATX_RETURN_IF_ERROR(common_setup(args, &setup));
  featx::ExtractorOptions opt;  // pooled features: what `featx extract` writes by default
  opt.threads = setup.threads;
  featx::Extractor extractor(setup.model, opt);
  return for_each_batch(args, setup,
                        [&](const std::vector<std::string>& batch_names, const std::vector<float>& batch, int n, int h,
                            int w) -> featx::Status {
                          featx::Tensor t;
                          featx::Status st = extractor.extract(batch.data(), n, h, w, &t);
                          if (!st) return featx::Status(st.code(), batch_names.front() + ": " + st.message());
                          const size_t per = t.data.size() / size_t(n);
                          return classify_rows(batch_names, t.data.data(), size_t(n), per, args.get("--model"));
                        });
}

}  // namespace featx_cli
