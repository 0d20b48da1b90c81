// examples/few_shot.cpp: a classifier trained on a few labelled feature
// vectors, the network frozen. Labels come from the names of TRAIN.npy's
// rows (a file's name without folder and extension: "cat.bmp" is class
// "cat"). Trains a logistic-regression probe and the nearest-class-mean one,
// saves each as a .fxp file, loads it again and classifies TEST.npy's rows,
// whose names give the right answers. `featx train-probe` / `featx classify
// --probe` are the CLI for this (docs/probe.md).
//
//   few_shot TRAIN.npy TEST.npy OUT_PREFIX
// Writes OUT_PREFIX.logistic.fxp and OUT_PREFIX.mean.fxp; prints each test
// row's best class and each probe's accuracy.
#include <cstdio>
#include <string>
#include <vector>

#include <featx/probe.hpp>

#include "vectors_file.hpp"

namespace {

std::string label_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  return name.substr(0, name.find('.'));
}

std::vector<std::string> labels_of(const Vectors& v) {
  std::vector<std::string> labels;
  for (const std::string& name : v.names) labels.push_back(label_of(name));
  return labels;
}

// Trains `kind` on `train`, saves and reloads it, and counts the right answers on `test`.
featx::Status evaluate(featx::ProbeKind kind, const Vectors& train, const Vectors& test, const std::string& path,
                       size_t* correct) {
  featx::ProbeTrainOptions options;
  options.kind = kind;
  featx::Probe trained, probe;
  featx::ProbeTrainReport report;
  FEATX_RETURN_IF_ERROR(
      featx::Probe::train(train.data.data(), train.rows, train.dims, labels_of(train), options, &trained, &report));
  FEATX_RETURN_IF_ERROR(trained.save(path));
  FEATX_RETURN_IF_ERROR(featx::Probe::load(path, &probe));
  std::vector<float> p(test.rows * size_t(probe.classes()));
  FEATX_RETURN_IF_ERROR(probe.predict(test.data.data(), test.rows, test.dims, p.data(), p.size()));
  const std::vector<std::string> truth = labels_of(test);
  *correct = 0;
  for (size_t i = 0; i < test.rows; ++i) {
    const float* row = p.data() + i * size_t(probe.classes());
    const int best = featx::Probe::top_k(row, probe.classes(), 1)[0];
    const std::string& answer = probe.class_names()[size_t(best)];
    *correct += answer == truth[i];
    std::printf("  %-8s %-40s -> %s (%.3f)\n", featx::probe_kind_name(kind), test.names[i].c_str(), answer.c_str(),
                double(row[best]));
  }
  std::printf("%s probe: %zu classes, training accuracy %.3f, test accuracy %zu/%zu, saved to %s\n",
              featx::probe_kind_name(kind), size_t(probe.classes()), report.accuracy(), *correct, test.rows,
              path.c_str());
  return featx::Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) return std::fprintf(stderr, "usage: few_shot TRAIN.npy TEST.npy OUT_PREFIX\n"), 2;
  Vectors train, test;
  featx::Status st = read_vectors(argv[1], &train);
  if (st) st = read_vectors(argv[2], &test);
  size_t logistic_correct = 0, mean_correct = 0;
  const std::string prefix = argv[3];
  if (st) st = evaluate(featx::ProbeKind::logistic, train, test, prefix + ".logistic.fxp", &logistic_correct);
  if (st) st = evaluate(featx::ProbeKind::mean, train, test, prefix + ".mean.fxp", &mean_correct);
  if (!st) return std::fprintf(stderr, "few_shot: %s\n", st.message().c_str()), 1;
}
