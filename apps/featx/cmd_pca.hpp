// `featx pca fit -o MODEL.pca [-k K] [--whiten] VECTORS.npy` and
// `featx pca transform -m MODEL.pca -o OUT.npy VECTORS.npy`: PCA of feature
// vectors (featx/pca.hpp, docs/pca.md). VECTORS is a float32 (N, D) .npy such
// as `featx extract -o x.npy` writes. fit prints, per kept component, two
// spaces, its number, TAB, its explained-variance ratio, TAB, the cumulative
// ratio; then "total", TAB, the ratio kept. transform writes float32 (N, k)
// and copies VECTORS.npy.names.txt beside OUT.npy when there is one.
//
// The command needs Eigen; a build whose compiler cannot find it (a cross
// build that only sees featx's own dependencies) keeps the command, which
// then says so, rather than failing to compile the whole CLI.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "args.hpp"
#include "extract_output.hpp"
#include "featx/detail/atomic_file.hpp"
#include "featx/file.hpp"
#include "featx/npy.hpp"
#include "featx/status.hpp"

#if __has_include(<Eigen/Core>) || __has_include(<eigen3/Eigen/Core>)
#define FEATX_CLI_HAVE_PCA 1
#include "featx/pca.hpp"
#endif

namespace featx_cli {

#ifdef FEATX_CLI_HAVE_PCA
namespace pca_cli {

// The one VECTORS.npy argument, read as an (N, D) float32 array.
inline featx::Status read_vectors(const Args& args, const std::string& what, std::string* path,
                                  featx::NpyArray* a) {
  if (args.positional.size() != 2)
    return featx::invalid_argument(what + " takes one VECTORS.npy, got " + std::to_string(args.positional.size() - 1));
  *path = args.positional[1];
  FEATX_RETURN_IF_ERROR(featx::read_npy(*path, a));
  if (a->shape.size() != 2 || a->shape[1] == 0)
    return featx::invalid_argument(*path + ": shape " + featx::npy_detail::shape_string(a->shape) +
                                   " is not (N, D) vectors");
  return featx::Status::Ok();
}

// A library error about the data, prefixed with the file it came from.
inline featx::Status about(const std::string& path, const featx::Status& st) {
  return st.ok() ? st : featx::Status(st.code(), path + ": " + st.message());
}

inline featx::Status fit(const Args& args) {
  const std::string out = args.get("--output");
  if (out.empty()) return featx::invalid_argument("featx pca fit needs -o MODEL.pca");
  featx::PcaFitOptions opt;
  if (args.has("--top")) {
    int k = 0;
    FEATX_RETURN_IF_ERROR(parse_int("-k", args.get("--top"), 1, int(featx::Pca::kMaxDims), &k));
    opt.components = size_t(k);
  }
  opt.whiten = args.has("--whiten");
  std::string path;
  featx::NpyArray a;
  FEATX_RETURN_IF_ERROR(read_vectors(args, "featx pca fit", &path, &a));
  const size_t n = size_t(a.shape[0]), d = size_t(a.shape[1]);
  featx::Pca pca;
  FEATX_RETURN_IF_ERROR(about(path, featx::Pca::fit(a.data.data(), n, d, opt, &pca)));
  FEATX_RETURN_IF_ERROR(pca.save(out));
  std::printf("%s: %zu vectors of %zu dims, %zu components (%s), %s -> %s\n", path.c_str(), n, d,
              pca.components(),
              pca.method() == featx::PcaMethod::svd ? "SVD of the centred data" : "eigenvectors of the covariance",
              pca.whiten() ? "whitened" : "not whitened", out.c_str());
  double cumulative = 0;
  for (size_t i = 0; i < pca.components(); ++i) {
    cumulative += pca.explained_variance_ratio(i);
    std::printf("  %zu\t%.9g\t%.9g\n", i + 1, pca.explained_variance_ratio(i), cumulative);
  }
  std::printf("total\t%.9g\n", cumulative);
  return featx::Status::Ok();
}

// VECTORS.npy.names.txt beside OUT.npy, when it names exactly the N rows;
// without one, a stale OUT.npy.names.txt is removed (it would name other rows).
inline featx::Status copy_names(const std::string& from_npy, const std::string& to_npy, size_t rows) {
  const std::string from = from_npy + ".names.txt", to = to_npy + ".names.txt";
  if (!file_exists(from)) {
    std::remove(to.c_str());
    return featx::Status::Ok();
  }
  std::vector<uint8_t> bytes;
  FEATX_RETURN_IF_ERROR(featx::read_file(from, &bytes));
  size_t lines = 0;
  for (uint8_t c : bytes) lines += c == '\n';
  if (lines != rows || (!bytes.empty() && bytes.back() != '\n'))
    return featx::corrupt(from + ": " + std::to_string(lines) + " names for " + std::to_string(rows) + " vectors");
  return featx::detail::write_file(to, bytes.data(), bytes.size());
}

inline featx::Status transform(const Args& args) {
  const std::string model = args.get("--model"), out = args.get("--output");
  if (model.empty()) return featx::invalid_argument("featx pca transform needs -m MODEL.pca");
  if (out.size() < 5 || out.compare(out.size() - 4, 4, ".npy") != 0)
    return featx::invalid_argument("featx pca transform needs -o OUT.npy");
  featx::Pca pca;
  FEATX_RETURN_IF_ERROR(featx::Pca::load(model, &pca));
  std::string path;
  featx::NpyArray a;
  FEATX_RETURN_IF_ERROR(read_vectors(args, "featx pca transform", &path, &a));
  const size_t n = size_t(a.shape[0]), d = size_t(a.shape[1]);
  if (d != pca.dims())
    return featx::invalid_argument(path + ": vectors of " + std::to_string(d) + " dims, " + model +
                                   " was fitted on " + std::to_string(pca.dims()));
  std::vector<float> y(n * pca.components());
  FEATX_RETURN_IF_ERROR(about(path, pca.transform(a.data.data(), n, d, y.data(), y.size())));
  // The names first: OUT.npy appears last, so its presence means both are complete.
  FEATX_RETURN_IF_ERROR(copy_names(path, out, n));
  const featx::Status st = featx::write_npy(out, {int64_t(n), int64_t(pca.components())}, y.data());
  if (!st) std::remove((out + ".names.txt").c_str());
  return st;
}

}  // namespace pca_cli
#endif

inline featx::Status cmd_pca(const Args& args) {
#ifdef FEATX_CLI_HAVE_PCA
  const std::string sub = args.positional.empty() ? "" : args.positional[0];
  if (sub == "fit") return pca_cli::fit(args);
  if (sub == "transform") return pca_cli::transform(args);
  return featx::invalid_argument("featx pca needs a subcommand: fit or transform (try featx --help)");
#else
  (void)args;
  return featx::unsupported("featx pca: this featx was built without Eigen (Debian: libeigen3-dev)");
#endif
}

}  // namespace featx_cli
