// featx/pca.hpp: principal component analysis of feature vectors, with Eigen.
//
// The one featx header that needs Eigen 3.3+ (header-only; Debian
// libeigen3-dev; CMake: find_package(Eigen3 3.3 NO_MODULE), link
// Eigen3::Eigen). Nothing else in featx includes it, so the core library
// stays free of Eigen. Found as <Eigen/...> (the usual -I .../eigen3) or, with
// no flag, as <eigen3/Eigen/...> where Eigen is installed under /usr/include.
//
//   featx::Pca pca;
//   featx::PcaFitOptions opt;  opt.components = 128;  opt.whiten = false;
//   featx::Status st = featx::Pca::fit(x, n, d, opt, &pca);     // x: n rows of d floats
//   std::vector<float> y(n * pca.components());
//   st = pca.transform(x, n, d, y.data(), y.size());           // (n, k)
//   st = pca.save("model.pca");  ...  st = featx::Pca::load("model.pca", &pca);
//
// What it computes (numpy / scikit-learn conventions, all in double):
//   mean        the column means of the n fitted vectors;
//   components  the k unit directions of largest variance of the centred
//               data, sorted by variance (largest first); sign: the entry of
//               largest |value| of each component is positive (the first such
//               entry on a tie), so one input gives one answer, not one of 2^k;
//   explained_variance[i]  = s_i^2 / (n - 1), s_i the i-th singular value of
//               the centred data (the covariance's eigenvalue, sklearn's
//               explained_variance_); explained_variance_ratio[i] = that over
//               the total variance (sum over all d columns, k or not);
//   transform   y = (x - mean) . components^T, and with whitening y_i /=
//               sqrt(explained_variance[i]) (unit-variance columns on the fit
//               data); inverse_transform undoes it (exactly when k = d).
// k is at most min(n - 1, d): centred n vectors span at most n - 1
// directions, a further one would be an arbitrary unit vector of variance 0.
//
// The file (save/load) is little-endian whatever the host, all sizes fixed:
//   offset  bytes  field
//   0       8      magic "FEATXPCA"
//   8       4      uint32 version = 1
//   12      4      uint32 flags: bit 0 whiten, bit 1 fitted through the
//                  covariance (else the SVD of the data); others are 0
//   16      8      uint64 dims d        (1 .. 2^20)
//   24      8      uint64 components k  (1 .. min(d, samples - 1))
//   32      8      uint64 samples n the model was fitted on (>= 2)
//   40      8      float64 total variance (> 0)
//   48      8d     float64 mean
//           8kd    float64 components, row-major: component i is d values
//           8k     float64 explained variances (>= 0, non-increasing)
//   end-4   4      uint32 CRC-32C (featx/crc32c.hpp) of all bytes before it
// float64 because the file then holds the fit exactly (a load gives the bits
// that fit computed, so a loaded model transforms exactly as the fitted one)
// and it is small: k = 128 of 1280 dims is 1.3 MB. Every bad file (empty,
// truncated, trailing bytes, wrong magic or version, absurd sizes, checksum,
// non-finite or inconsistent values) is a one-line Status naming the file;
// from_memory() bounds-checks every read before it happens.
//
// Errors are values; no exceptions are thrown (Eigen's own allocations
// abort when memory runs out and exceptions are off).
#pragma once

#if __has_include(<Eigen/Core>)
#include <Eigen/Core>
#include <Eigen/Eigenvalues>
#include <Eigen/SVD>
#elif __has_include(<eigen3/Eigen/Core>)
#include <eigen3/Eigen/Core>
#include <eigen3/Eigen/Eigenvalues>
#include <eigen3/Eigen/SVD>
#else
#error "featx/pca.hpp needs Eigen 3.3 or later (Debian: libeigen3-dev; CMake: link Eigen3::Eigen)"
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "featx/detail/checked_file.hpp"
#include "featx/detail/little_endian.hpp"
#include "featx/file.hpp"
#include "featx/status.hpp"

namespace featx {

struct PcaFitOptions {
  size_t components = 0;  // k; 0: all there are, min(n - 1, d)
  bool whiten = false;    // transform divides component i by sqrt(explained_variance(i))
};

// How fit() decomposed the data (stored in the file: it tells how a model was made).
enum class PcaMethod { svd, covariance };

class Pca {
 public:
  static constexpr uint32_t kFileVersion = 1;
  static constexpr size_t kHeaderBytes = 48;
  static constexpr size_t kMaxDims = size_t(1) << 20;  // far above any feature vector (1792)
  static constexpr char kMagic[8] = {'F', 'E', 'A', 'T', 'X', 'P', 'C', 'A'};

  // Fits on `n` vectors of `d` floats (row-major, n * d values). Fails on
  // n < 2, a non-finite value, data without variance, or too many components.
  static Status fit(const float* x, size_t n, size_t d, const PcaFitOptions& options, Pca* out);

  // `n` vectors of `d` floats (d must be dims()) into out[n * components()]
  // (row-major, float32; `out_size` is the room there is).
  Status transform(const float* x, size_t n, size_t d, float* out, size_t out_size) const;
  // `n` rows of `k` = components() values back into out[n * dims()]: the
  // vector in the components' span nearest to the original.
  Status inverse_transform(const float* y, size_t n, size_t k, float* out, size_t out_size) const;

  Status save(const std::string& path) const;
  void serialize(std::vector<uint8_t>* bytes) const;  // the file's bytes
  static Status load(const std::string& path, Pca* out);
  // Parses a file's bytes; `name` labels the errors.
  static Status from_memory(const uint8_t* data, size_t size, const std::string& name, Pca* out);

  bool empty() const { return k_ == 0; }
  size_t dims() const { return d_; }
  size_t components() const { return k_; }
  bool whiten() const { return whiten_; }
  uint64_t samples() const { return n_; }
  PcaMethod method() const { return method_; }
  const std::vector<double>& mean() const { return mean_; }              // d values
  const std::vector<double>& components_matrix() const { return comp_; }  // k rows of d
  const double* component(size_t i) const { return comp_.data() + i * d_; }
  const std::vector<double>& explained_variance() const { return var_; }  // k values
  double total_variance() const { return total_; }
  double explained_variance_ratio(size_t i) const { return var_[i] / total_; }

 private:
  using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  static constexpr size_t kChunkRows = 512;  // rows per block in double: bounds the extra memory

  // Component i scaled for transform (1/sqrt(var) when whitening, else 1).
  double scale(size_t i) const { return whiten_ ? 1.0 / std::sqrt(var_[i]) : 1.0; }

  size_t d_ = 0, k_ = 0;
  uint64_t n_ = 0;
  bool whiten_ = false;
  PcaMethod method_ = PcaMethod::svd;
  double total_ = 0;
  std::vector<double> mean_, comp_, var_;
};

namespace pca_detail {

inline bool finite_row(const float* row, size_t d, size_t* bad) {
  for (size_t j = 0; j < d; ++j)
    if (!std::isfinite(row[j])) {
      *bad = j;
      return false;
    }
  return true;
}

// The sign convention: the entry of largest magnitude is made positive.
inline void fix_sign(double* v, size_t d) {
  size_t best = 0;
  for (size_t j = 1; j < d; ++j)
    if (std::fabs(v[j]) > std::fabs(v[best])) best = j;
  if (v[best] < 0)
    for (size_t j = 0; j < d; ++j) v[j] = -v[j];
}

// The file's envelope (magic, version, checksum): featx/detail/checked_file.hpp.
inline constexpr detail::FileKind kFile{Pca::kMagic, Pca::kFileVersion, Pca::kHeaderBytes, "PCA file"};

}  // namespace pca_detail

inline Status Pca::fit(const float* x, size_t n, size_t d, const PcaFitOptions& options, Pca* out) {
  using namespace pca_detail;
  *out = Pca();
  if (n < 2) return invalid_argument("pca: needs at least 2 vectors, got " + std::to_string(n));
  if (d == 0 || d > kMaxDims)
    return invalid_argument("pca: vectors of " + std::to_string(d) + " dims (1 to " + std::to_string(kMaxDims) +
                            " are supported)");
  if (n > std::numeric_limits<size_t>::max() / d) return invalid_argument("pca: n * d overflows");
  if (x == nullptr) return invalid_argument("pca: null data pointer");
  const size_t most = std::min(n - 1, d);
  const size_t k = options.components == 0 ? most : options.components;
  if (k > most)
    return invalid_argument("pca: " + std::to_string(k) + " components asked, " + std::to_string(n) +
                            " vectors of " + std::to_string(d) + " dims have at most " + std::to_string(most) +
                            " (min(n - 1, d))");

  // Two passes (mean, then centred sums) rather than one with sum of
  // squares: no cancellation when the mean is large against the spread.
  std::vector<double> mean(d, 0.0);
  for (size_t i = 0; i < n; ++i) {
    const float* row = x + i * d;
    size_t bad = 0;
    if (!finite_row(row, d, &bad))
      return invalid_argument("pca: vector " + std::to_string(i) + " has a non-finite value (column " +
                              std::to_string(bad) + ")");
    for (size_t j = 0; j < d; ++j) mean[j] += row[j];
  }
  for (double& m : mean) m /= double(n);

  const Eigen::Index di = Eigen::Index(d);
  const double dof = double(n - 1);
  // centred(first, m): rows first .. first+m-1 centred, one per column (d x m).
  auto centred = [&](size_t first, size_t m, Eigen::MatrixXd* block) {
    block->resize(di, Eigen::Index(m));
    for (size_t r = 0; r < m; ++r) {
      const float* row = x + (first + r) * d;
      double* col = block->data() + r * d;
      for (size_t j = 0; j < d; ++j) col[j] = double(row[j]) - mean[j];
    }
  };

  // n > d: the covariance (d x d, accumulated block by block, so memory is
  // O(d^2) for any n) and SelfAdjointEigenSolver: n d^2 / 2 flops for the
  // product, then O(d^3) however many vectors there are. n <= d: the thin
  // SVD of the centred data itself (BDCSVD, O(n^2 d), memory n d, small when
  // n <= d), which also keeps the small components' accuracy that squaring
  // the data into a covariance would lose. Input is float32, so either is
  // far more precise in double than the data it is given.
  std::vector<double> comp(k * d), var(k);
  double total = 0;
  PcaMethod method;
  if (n > d) {
    method = PcaMethod::covariance;
    Eigen::MatrixXd cov = Eigen::MatrixXd::Zero(di, di), block;
    for (size_t first = 0; first < n; first += kChunkRows) {
      const size_t m = std::min(kChunkRows, n - first);
      centred(first, m, &block);
      total += block.squaredNorm();
      cov.selfadjointView<Eigen::Lower>().rankUpdate(block);  // cov += block block^T (lower half)
    }
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(cov, Eigen::ComputeEigenvectors);
    if (eig.info() != Eigen::Success) return Status(StatusCode::internal, "pca: the eigensolver did not converge");
    // Eigenvalues come ascending: component i is column d-1-i. Rounding can
    // leave a zero eigenvalue slightly negative; a variance is not.
    for (size_t i = 0; i < k; ++i) {
      const Eigen::Index c = di - 1 - Eigen::Index(i);
      var[i] = std::max(0.0, eig.eigenvalues()(c)) / dof;
      for (size_t j = 0; j < d; ++j) comp[i * d + j] = eig.eigenvectors()(Eigen::Index(j), c);
    }
  } else {
    method = PcaMethod::svd;
    Eigen::MatrixXd data;
    centred(0, n, &data);  // d x n: its left singular vectors are the components
    total = data.squaredNorm();
    Eigen::BDCSVD<Eigen::MatrixXd> svd(data, Eigen::ComputeThinU);
    if (svd.info() != Eigen::Success) return Status(StatusCode::internal, "pca: the SVD did not converge");
    for (size_t i = 0; i < k; ++i) {  // singular values come sorted, largest first
      const double s = svd.singularValues()(Eigen::Index(i));
      var[i] = s * s / dof;
      for (size_t j = 0; j < d; ++j) comp[i * d + j] = svd.matrixU()(Eigen::Index(j), Eigen::Index(i));
    }
  }
  total /= dof;
  if (!(total > 0)) return invalid_argument("pca: all vectors are equal (no variance to fit)");
  if (options.whiten)
    for (size_t i = 0; i < k; ++i)
      if (!(var[i] > 1e-12 * var[0]))
        return invalid_argument("pca: component " + std::to_string(i + 1) +
                                " has no variance, so it cannot be whitened (ask for fewer components)");
  for (size_t i = 0; i < k; ++i) fix_sign(comp.data() + i * d, d);

  out->d_ = d;
  out->k_ = k;
  out->n_ = n;
  out->whiten_ = options.whiten;
  out->method_ = method;
  out->total_ = total;
  out->mean_ = std::move(mean);
  out->comp_ = std::move(comp);
  out->var_ = std::move(var);
  return Status::Ok();
}

inline Status Pca::transform(const float* x, size_t n, size_t d, float* out, size_t out_size) const {
  if (empty()) return invalid_argument("pca transform: the model is empty (fit or load one first)");
  if (d != d_)
    return invalid_argument("pca transform: vectors of " + std::to_string(d) + " dims, the model has " +
                            std::to_string(d_));
  if (n == 0) return Status::Ok();
  if (x == nullptr || out == nullptr) return invalid_argument("pca transform: null pointer");
  if (n > std::numeric_limits<size_t>::max() / std::max(d_, k_) || out_size < n * k_)
    return invalid_argument("pca transform: output has room for " + std::to_string(out_size) + " values, needs " +
                            std::to_string(n) + " x " + std::to_string(k_));
  const Eigen::Map<const RowMatrix> c(comp_.data(), Eigen::Index(k_), Eigen::Index(d_));
  Eigen::MatrixXd block, y;
  for (size_t first = 0; first < n; first += kChunkRows) {
    const size_t m = std::min(kChunkRows, n - first);
    block.resize(Eigen::Index(d_), Eigen::Index(m));
    for (size_t r = 0; r < m; ++r) {
      const float* row = x + (first + r) * d_;
      size_t bad = 0;
      if (!pca_detail::finite_row(row, d_, &bad))
        return invalid_argument("pca transform: vector " + std::to_string(first + r) +
                                " has a non-finite value (column " + std::to_string(bad) + ")");
      double* col = block.data() + r * d_;
      for (size_t j = 0; j < d_; ++j) col[j] = double(row[j]) - mean_[j];
    }
    y.noalias() = c * block;  // k x m
    for (size_t r = 0; r < m; ++r)
      for (size_t i = 0; i < k_; ++i) out[(first + r) * k_ + i] = float(y(Eigen::Index(i), Eigen::Index(r)) * scale(i));
  }
  return Status::Ok();
}

inline Status Pca::inverse_transform(const float* y, size_t n, size_t k, float* out, size_t out_size) const {
  if (empty()) return invalid_argument("pca inverse_transform: the model is empty (fit or load one first)");
  if (k != k_)
    return invalid_argument("pca inverse_transform: rows of " + std::to_string(k) + " values, the model has " +
                            std::to_string(k_) + " components");
  if (n == 0) return Status::Ok();
  if (y == nullptr || out == nullptr) return invalid_argument("pca inverse_transform: null pointer");
  if (n > std::numeric_limits<size_t>::max() / std::max(d_, k_) || out_size < n * d_)
    return invalid_argument("pca inverse_transform: output has room for " + std::to_string(out_size) +
                            " values, needs " + std::to_string(n) + " x " + std::to_string(d_));
  const Eigen::Map<const RowMatrix> c(comp_.data(), Eigen::Index(k_), Eigen::Index(d_));
  Eigen::MatrixXd block, x;
  for (size_t first = 0; first < n; first += kChunkRows) {
    const size_t m = std::min(kChunkRows, n - first);
    block.resize(Eigen::Index(k_), Eigen::Index(m));
    for (size_t r = 0; r < m; ++r) {
      const float* row = y + (first + r) * k_;
      size_t bad = 0;
      if (!pca_detail::finite_row(row, k_, &bad))
        return invalid_argument("pca inverse_transform: row " + std::to_string(first + r) +
                                " has a non-finite value (column " + std::to_string(bad) + ")");
      for (size_t i = 0; i < k_; ++i) block(Eigen::Index(i), Eigen::Index(r)) = double(row[i]) / scale(i);
    }
    x.noalias() = c.transpose() * block;  // d x m
    for (size_t r = 0; r < m; ++r)
      for (size_t j = 0; j < d_; ++j)
        out[(first + r) * d_ + j] = float(x(Eigen::Index(j), Eigen::Index(r)) + mean_[j]);
  }
  return Status::Ok();
}

inline void Pca::serialize(std::vector<uint8_t>* bytes) const {
  using namespace detail;
  begin_file(pca_detail::kFile, kHeaderBytes + 8 * (d_ + k_ * d_ + k_) + 4, bytes);
  put_u32(bytes, (whiten_ ? 1u : 0u) | (method_ == PcaMethod::covariance ? 2u : 0u));
  put_u64(bytes, d_);
  put_u64(bytes, k_);
  put_u64(bytes, n_);
  put_f64(bytes, total_);
  for (double v : mean_) put_f64(bytes, v);
  for (double v : comp_) put_f64(bytes, v);
  for (double v : var_) put_f64(bytes, v);
  seal_file(bytes);
}

inline Status Pca::save(const std::string& path) const {
  if (empty()) return invalid_argument(path + ": cannot save an empty PCA model");
  std::vector<uint8_t> bytes;
  serialize(&bytes);
  return detail::write_file(path, bytes.data(), bytes.size());
}

inline Status Pca::from_memory(const uint8_t* data, size_t size, const std::string& name, Pca* out) {
  *out = Pca();
  detail::CheckedReader file(data, size, name, pca_detail::kFile);
  FEATX_RETURN_IF_ERROR(file.open());
  const uint32_t flags = file.u32_at(12);
  if (flags & ~3u) return corrupt(name + ": unknown flags " + std::to_string(flags) + " in the PCA header");
  const uint64_t d = file.u64_at(16), k = file.u64_at(24), n = file.u64_at(32);
  // Sizes first, each bounded, so the arithmetic below cannot overflow
  // (d, k <= 2^20: the file is at most ~2^43 bytes) and nothing is
  // allocated for a size the file does not back.
  if (d == 0 || d > kMaxDims || k == 0 || k > d || n < 2 || k > n - 1)
    return corrupt(name + ": absurd sizes in the PCA header (dims " + std::to_string(d) + ", components " +
                   std::to_string(k) + ", samples " + std::to_string(n) + ")");
  FEATX_RETURN_IF_ERROR(file.expect_end(8 * (d + k * d + k), "its header needs"));

  Pca p;
  p.d_ = size_t(d);
  p.k_ = size_t(k);
  p.n_ = n;
  p.whiten_ = (flags & 1u) != 0;
  p.method_ = (flags & 2u) ? PcaMethod::covariance : PcaMethod::svd;
  p.total_ = file.f64_at(40);
  if (!std::isfinite(p.total_) || !(p.total_ > 0))
    return corrupt(name + ": total variance " + std::to_string(p.total_) + " is not a positive number");
  FEATX_RETURN_IF_ERROR(file.finite_f64("mean", p.d_, &p.mean_));
  FEATX_RETURN_IF_ERROR(file.finite_f64("components", p.k_ * p.d_, &p.comp_));
  FEATX_RETURN_IF_ERROR(file.finite_f64("explained variances", p.k_, &p.var_));
  // What transform relies on: unit components, sorted non-negative
  // variances that fit in the total, positive ones when whitening.
  double sum = 0;
  for (size_t i = 0; i < p.k_; ++i) {
    double norm2 = 0;
    for (size_t j = 0; j < p.d_; ++j) norm2 += p.comp_[i * p.d_ + j] * p.comp_[i * p.d_ + j];
    if (std::fabs(norm2 - 1) > 1e-6)
      return corrupt(name + ": component " + std::to_string(i + 1) + " is not a unit vector (squared norm " +
                     std::to_string(norm2) + ")");
    const double v = p.var_[i];
    if (v < 0 || (i > 0 && v > p.var_[i - 1]))
      return corrupt(name + ": explained variance " + std::to_string(i + 1) + " is negative or out of order");
    if (p.whiten_ && !(v > 0))
      return corrupt(name + ": whitened component " + std::to_string(i + 1) + " has zero variance");
    sum += v;
  }
  if (sum > p.total_ * (1 + 1e-9))
    return corrupt(name + ": explained variances exceed the total variance");
  *out = std::move(p);
  return Status::Ok();
}

inline Status Pca::load(const std::string& path, Pca* out) {
  *out = Pca();
  std::vector<uint8_t> bytes;
  FEATX_RETURN_IF_ERROR(read_file(path, &bytes));
  return from_memory(bytes.data(), bytes.size(), path, out);
}

}  // namespace featx
