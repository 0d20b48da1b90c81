// fuzz/seed_writer.cpp: writes small .fxi, .fxp and .pca files with featx's
// own writers, as seeds for the index, probe and pca harnesses
// (fuzz/make_corpus.py runs it; not a fuzz target).
//   seed_writer OUT_DIR
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "featx/pca.hpp"
#include "featx/probe.hpp"
#include "featx/search.hpp"

namespace {

int report(const featx::Status& st) {
  std::fprintf(stderr, "seed_writer: %s\n", st.message().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: seed_writer OUT_DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  const size_t n = 12, d = 6;
  std::vector<float> x(n * d);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(std::sin(0.7 * double(i)) + 0.1 * double(i % 5));
  std::vector<std::string> names;
  for (size_t i = 0; i < n; ++i) names.push_back("img_" + std::to_string(i) + ".jpg");
  featx::Status st = featx::write_index(dir + "/small.fxi", x.data(), n, d, names);
  if (!st) return report(st);
  st = featx::write_index(dir + "/one.fxi", x.data(), 1, 3, {"a"});
  if (!st) return report(st);

  std::vector<int> labels(n);
  for (size_t i = 0; i < n; ++i) labels[i] = int(i % 3);
  for (featx::ProbeKind kind : {featx::ProbeKind::logistic, featx::ProbeKind::mean}) {
    featx::ProbeTrainOptions po;
    po.kind = kind;
    po.max_iterations = 20;
    featx::Probe probe;
    st = featx::Probe::train(x.data(), n, d, labels.data(), {"cat", "dog", "kite"}, po, &probe);
    if (!st) return report(st);
    st = probe.save(dir + (kind == featx::ProbeKind::mean ? "/mean.fxp" : "/logistic.fxp"));
    if (!st) return report(st);
  }

  for (bool whiten : {false, true}) {
    featx::PcaFitOptions po;
    po.components = whiten ? 2 : 0;
    po.whiten = whiten;
    featx::Pca pca;
    st = featx::Pca::fit(x.data(), n, d, po, &pca);
    if (!st) return report(st);
    st = pca.save(dir + (whiten ? "/whiten.pca" : "/all.pca"));
    if (!st) return report(st);
  }
  return 0;
}
