// examples/pca.cpp: feature vectors reduced to K dimensions by principal
// component analysis (fit on VECTORS.npy, centred, by SVD). Prints the
// explained-variance ratios, writes the reduced vectors as OUT.npy and the
// model as OUT.npy.pca; a model loaded from that file transforms exactly as
// the fitted one (checked here). `featx pca fit|transform` is the CLI for
// this (docs/pca.md).
//
//   pca VECTORS.npy K OUT.npy [--whiten]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <featx/npy.hpp>
#include <featx/pca.hpp>

#include "vectors_file.hpp"

int main(int argc, char** argv) {
  if (argc < 4 || argc > 5 || (argc == 5 && std::string(argv[4]) != "--whiten"))
    return std::fprintf(stderr, "usage: pca VECTORS.npy K OUT.npy [--whiten]\n"), 2;
  Vectors v;
  featx::Status st = read_vectors(argv[1], &v);
  featx::PcaFitOptions options;
  options.components = size_t(std::strtoul(argv[2], nullptr, 10));
  options.whiten = argc == 5;
  featx::Pca fitted, loaded;
  if (st) st = featx::Pca::fit(v.data.data(), v.rows, v.dims, options, &fitted);
  const size_t k = fitted.components();
  std::vector<float> reduced(v.rows * k), again(v.rows * k);
  const std::string out = argv[3], model_path = out + ".pca";
  if (st) st = fitted.transform(v.data.data(), v.rows, v.dims, reduced.data(), reduced.size());
  if (st) st = featx::write_npy(out, {int64_t(v.rows), int64_t(k)}, reduced.data());
  if (st) st = fitted.save(model_path);
  if (st) st = featx::Pca::load(model_path, &loaded);
  if (st) st = loaded.transform(v.data.data(), v.rows, v.dims, again.data(), again.size());
  if (!st) return std::fprintf(stderr, "pca: %s\n", st.message().c_str()), 1;

  double kept = 0;
  std::printf("explained variance ratio:");
  for (size_t i = 0; i < k; ++i) {
    std::printf(" %.4f", fitted.explained_variance_ratio(i));
    kept += fitted.explained_variance_ratio(i);
  }
  const bool same = std::memcmp(reduced.data(), again.data(), reduced.size() * sizeof(float)) == 0;
  std::printf("\n%zu vectors of %zu dims -> %s (%zu dims, %.1f %% of the variance); %s: %s\n", v.rows, v.dims,
              out.c_str(), k, 100 * kept, model_path.c_str(),
              same ? "the loaded model transforms identically" : "the loaded model DIFFERS");
  return same ? 0 : 1;
}
