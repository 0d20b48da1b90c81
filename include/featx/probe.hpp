// featx/probe.hpp: few-shot classifiers on frozen feature vectors, with Eigen.
//
// Needs Eigen 3.3+ (header-only; Debian libeigen3-dev; CMake:
// find_package(Eigen3 3.3 NO_MODULE), link Eigen3::Eigen). Nothing else in
// featx includes it, so the core library stays free of Eigen. Found as
// <Eigen/...> (the usual -I .../eigen3) or, with no flag, as
// <eigen3/Eigen/...> where Eigen is installed under /usr/include.
//
//   std::vector<std::string> labels = {"cat", "dog", ...};        // one per row
//   featx::ProbeTrainOptions opt;  opt.kind = featx::ProbeKind::logistic;
//   featx::Probe probe;  featx::ProbeTrainReport report;
//   featx::Status st = featx::Probe::train(x, n, d, labels, opt, &probe, &report);
//   std::vector<float> p(m * probe.classes());
//   st = probe.predict(q, m, d, p.data(), p.size());              // softmax rows
//   std::vector<int> best = featx::Probe::top_k(p.data(), probe.classes(), 5);
//   st = probe.save("pets.fxp");  ...  st = featx::Probe::load("pets.fxp", &probe);
//
// Both kinds are one linear model over normalised features (docs/probe.md):
//   u      = x / ||x||_2                  (a zero vector stays zero)
//   x_hat  = (u - mean) * scale           (mean: d values, scale: one number)
//   logits = logit_scale * (W x_hat + b)  (W: classes x d, b: classes)
//   p      = softmax(logits)
// * mean (weight imprinting, Qi et al. 2018): mean = 0, scale = 1, W's row c
//   is the unit-length mean of class c's u, b = 0: logits are cosine
//   similarities times logit_scale (default 10; the probabilities rank, they
//   are not calibrated).
// * logistic: mean is the training rows' mean u, scale makes the training
//   x_hat's mean squared norm 1 (so lambda means the same at 1280 or 1792
//   dims), logit_scale = 1, and W, b minimise
//       f(W, b) = (1/n) sum_i [logsumexp(z_i) - z_i[y_i]] + (lambda/2) ||W||_F^2,
//       z_i = W x_hat_i + b,
//   bias not regularised. Optimiser: L-BFGS (10 pairs, backtracking Armijo
//   line search) from W = 0, b = 0, stopping when ||grad f||_2 <= tolerance
//   or at the iteration cap. Why not Newton: the Hessian has (classes * (d+1))^2
//   entries, 8967^2 = 640 MB for 7 classes of 1280 dims, and a pass of L-BFGS
//   costs one sweep over the data whatever the class count. The softmax does
//   not change when all biases move together; the stored b sums to zero.
//
// Deterministic: every sum runs in a fixed order on one thread (no Eigen
// matrix product, whose blocking and OpenMP split depend on the machine and
// thread count), in double, on Eigen-allocated (aligned) storage: the same
// inputs give the same bits run to run and whatever OMP_NUM_THREADS says.
//
// The file (save/load, ".fxp") is little-endian whatever the host:
//   offset  bytes  field
//   0       8      magic "FEATXPRB"
//   8       4      uint32 version = 1
//   12      4      uint32 kind: 1 mean, 2 logistic
//   16      4      uint32 normalisation: 1 = (x / ||x||_2 - mean) * scale
//   20      4      uint32 classes C (2 .. 65536)
//   24      8      uint64 dims d (1 .. 2^20; C * d <= 2^26)
//   32      8      uint64 training vectors n (information)
//   40      8      float64 lambda (>= 0; 0 for mean)
//   48      8      float64 scale (> 0)
//   56      8      float64 logit_scale (> 0)
//   64             C class names: uint32 byte length (1 .. 1024), then the
//                  bytes (UTF-8; no control characters: the CLI prints TABs
//                  and newlines around them); distinct
//           8d     float64 mean
//           8Cd    float64 W, row-major (class c's d weights together)
//           8C     float64 b
//   end-4   4      uint32 CRC-32C (featx/crc32c.hpp) of all bytes before it
// float64 so a loaded probe predicts with exactly the trained bits. Every bad
// file (empty, truncated, trailing bytes, wrong magic or version, absurd
// sizes, checksum, non-finite values, empty or duplicate names) is a
// one-line Status naming the file; from_memory() checks each read's bounds
// before it happens.
//
// Errors are values; nothing throws (Eigen's own allocations abort when
// memory runs out and exceptions are off).
#pragma once

#if __has_include(<Eigen/Core>)
#include <Eigen/Core>
#elif __has_include(<eigen3/Eigen/Core>)
#include <eigen3/Eigen/Core>
#else
#error "featx/probe.hpp needs Eigen 3.3 or later (Debian: libeigen3-dev; CMake: link Eigen3::Eigen)"
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

enum class ProbeKind : uint32_t { mean = 1, logistic = 2 };

inline const char* probe_kind_name(ProbeKind k) { return k == ProbeKind::mean ? "mean" : "logistic"; }

inline Status parse_probe_kind(const std::string& s, ProbeKind* out) {
  if (s == "logistic") *out = ProbeKind::logistic;
  else if (s == "mean") *out = ProbeKind::mean;
  else return invalid_argument("--kind must be logistic or mean, got '" + printable(s) + "'");
  return Status::Ok();
}

struct ProbeTrainOptions {
  ProbeKind kind = ProbeKind::logistic;
  double l2 = 1e-4;                   // lambda (logistic); docs/probe.md says how it was chosen
  double gradient_tolerance = 1e-8;   // stop when ||grad f||_2 <= this (logistic)
  int max_iterations = 1000;          // L-BFGS iterations at most (logistic)
  int history = 10;                   // L-BFGS correction pairs kept
  double mean_logit_scale = 10.0;     // logits = this * cosine (mean)
};

struct ProbeTrainReport {
  int iterations = 0;          // L-BFGS iterations (0 for mean: closed form)
  bool converged = false;      // the gradient norm reached the tolerance
  double loss = 0;             // f at the result (the training cross-entropy for mean)
  double gradient_norm = 0;    // ||grad f||_2 at the result (0 for mean)
  size_t correct = 0, samples = 0;  // training rows whose top-1 is their label
  double accuracy() const { return samples ? double(correct) / double(samples) : 0.0; }
};

class Probe {
 public:
  static constexpr uint32_t kFileVersion = 1;
  static constexpr size_t kHeaderBytes = 64;
  static constexpr uint32_t kMaxClasses = 65536;
  static constexpr uint64_t kMaxDims = uint64_t(1) << 20;
  static constexpr uint64_t kMaxWeights = uint64_t(1) << 26;  // C * d: 512 MB of float64
  static constexpr uint32_t kMaxNameBytes = 1024;
  static constexpr char kMagic[8] = {'F', 'E', 'A', 'T', 'X', 'P', 'R', 'B'};

  // Trains on `n` rows of `d` floats (row-major). labels[i] in [0, C) names
  // row i's class, C = class_names.size() >= 2; every class needs a row.
  static Status train(const float* x, size_t n, size_t d, const int* labels,
                      const std::vector<std::string>& class_names, const ProbeTrainOptions& options, Probe* out,
                      ProbeTrainReport* report = nullptr);
  // The same with one label string per row; classes are the distinct labels
  // in byte order (so the row order does not change the class indices).
  static Status train(const float* x, size_t n, size_t d, const std::vector<std::string>& labels,
                      const ProbeTrainOptions& options, Probe* out, ProbeTrainReport* report = nullptr);

  // logits: n rows of classes() values (double); predict: their softmax (float).
  Status logits(const float* x, size_t n, size_t d, double* out, size_t out_size) const;
  Status predict(const float* x, size_t n, size_t d, float* probabilities, size_t out_size) const;
  // Indices of the k largest of p[0 .. classes), largest first (ties: lower index first).
  static std::vector<int> top_k(const float* p, int classes, int k);
  // x_hat of one row of dims() floats into out[dims()].
  void normalize(const float* x, double* out) const;
  // The logistic objective f at this probe's W and b on labelled rows, with
  // its gradient (classes() * dims() entries for W, row-major, then classes()
  // for b) when `gradient` is not null.
  Status objective(const float* x, size_t n, size_t d, const int* labels, double lambda, double* f,
                   std::vector<double>* gradient) const;

  Status save(const std::string& path) const;
  void serialize(std::vector<uint8_t>* bytes) const;  // the file's bytes
  static Status load(const std::string& path, Probe* out);
  // Parses a file's bytes; `name` labels the errors.
  static Status from_memory(const uint8_t* data, size_t size, const std::string& name, Probe* out);

  bool empty() const { return c_ == 0; }
  ProbeKind kind() const { return kind_; }
  int classes() const { return int(c_); }
  size_t dims() const { return d_; }
  uint64_t samples() const { return n_; }
  double lambda() const { return lambda_; }
  double scale() const { return scale_; }
  double logit_scale() const { return logit_scale_; }
  const std::vector<std::string>& class_names() const { return names_; }
  const std::vector<double>& mean() const { return mean_; }      // d values
  const std::vector<double>& weights() const { return w_; }      // C rows of d
  const std::vector<double>& bias() const { return b_; }         // C values

 private:
  using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Status check_rows(const float* x, size_t n, size_t d) const;

  ProbeKind kind_ = ProbeKind::logistic;
  size_t c_ = 0, d_ = 0;
  uint64_t n_ = 0;
  double lambda_ = 0, scale_ = 1, logit_scale_ = 1;
  std::vector<std::string> names_;
  std::vector<double> mean_, w_, b_;
};

namespace probe_detail {

// A name the CLI can print between TABs and newlines: 1 .. 1024 bytes, no
// control characters. Returns an empty string when fine, else the problem.
inline std::string name_problem(const std::string& s) {
  if (s.empty()) return "is empty";
  if (s.size() > Probe::kMaxNameBytes)
    return "is " + std::to_string(s.size()) + " bytes long (at most " + std::to_string(Probe::kMaxNameBytes) + ")";
  for (unsigned char ch : s)
    if (ch < 0x20 || ch == 0x7f) return "holds a control character (byte " + std::to_string(unsigned(ch)) + ")";
  return std::string();
}

// Shortened for error messages.
inline std::string quoted(const std::string& s) {
  std::string t = s.size() > 60 ? s.substr(0, 60) + "..." : s;
  for (char& ch : t)
    if (static_cast<unsigned char>(ch) < 0x20) ch = '?';
  return "'" + t + "'";
}

// First index of a duplicate in `names` (and the earlier one), or false.
inline bool find_duplicate(const std::vector<std::string>& names, size_t* first, size_t* second) {
  std::vector<size_t> order(names.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return names[a] < names[b] || (names[a] == names[b] && a < b); });
  for (size_t i = 1; i < order.size(); ++i)
    if (names[order[i]] == names[order[i - 1]]) {
      *first = order[i - 1];
      *second = order[i];
      return true;
    }
  return false;
}

// u = x / ||x||_2 in double (sum in index order); false when x is all zero.
inline bool unit(const float* x, size_t d, double* u) {
  double sum = 0;
  for (size_t j = 0; j < d; ++j) sum += double(x[j]) * double(x[j]);
  if (!(sum > 0)) {
    for (size_t j = 0; j < d; ++j) u[j] = 0;
    return false;
  }
  const double inv = 1.0 / std::sqrt(sum);
  for (size_t j = 0; j < d; ++j) u[j] = double(x[j]) * inv;
  return true;
}

// Softmax of z[0 .. c) into p, max-shifted; returns logsumexp(z).
inline double softmax(const double* z, size_t c, double* p) {
  double m = z[0];
  for (size_t k = 1; k < c; ++k) m = std::max(m, z[k]);
  double s = 0;
  for (size_t k = 0; k < c; ++k) {
    p[k] = std::exp(z[k] - m);
    s += p[k];
  }
  for (size_t k = 0; k < c; ++k) p[k] /= s;
  return m + std::log(s);
}

// The logistic objective over normalised rows X (n x d) with labels y:
// theta = [W row-major (c x d), b (c)]. Sums run over rows in order.
class LogisticObjective {
 public:
  using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  LogisticObjective(const RowMatrix& x, const std::vector<int>& y, size_t c, double lambda)
      : x_(x), y_(y), c_(c), lambda_(lambda), z_(Eigen::Index(c)), p_(Eigen::Index(c)) {}

  size_t parameters() const { return c_ * size_t(x_.cols()) + c_; }

  double operator()(const Eigen::VectorXd& theta, Eigen::VectorXd* grad) {
    const Eigen::Index d = x_.cols(), c = Eigen::Index(c_), n = x_.rows();
    const Eigen::Map<const RowMatrix> w(theta.data(), c, d);
    const double* b = theta.data() + c * d;
    grad->setZero(theta.size());
    Eigen::Map<RowMatrix> gw(grad->data(), c, d);
    double* gb = grad->data() + c * d;
    double loss = 0;
    for (Eigen::Index i = 0; i < n; ++i) {
      for (Eigen::Index k = 0; k < c; ++k) z_[k] = w.row(k).dot(x_.row(i)) + b[k];
      const double lse = softmax(z_.data(), c_, p_.data());
      const int yi = y_[size_t(i)];
      loss += lse - z_[yi];
      p_[yi] -= 1.0;  // p - onehot(y): the logits' gradient
      for (Eigen::Index k = 0; k < c; ++k) {
        gw.row(k) += p_[k] * x_.row(i);
        gb[k] += p_[k];
      }
    }
    const double inv_n = 1.0 / double(n);
    gw *= inv_n;
    for (Eigen::Index k = 0; k < c; ++k) gb[k] *= inv_n;
    gw += lambda_ * w;
    return loss * inv_n + 0.5 * lambda_ * w.squaredNorm();
  }

 private:
  const RowMatrix& x_;
  const std::vector<int>& y_;
  size_t c_;
  double lambda_;
  Eigen::VectorXd z_, p_;
};

struct LbfgsResult {
  int iterations = 0;
  bool converged = false;
  double f = 0, gradient_norm = 0;
};

// Minimises `fn` from theta (in place) by L-BFGS (Nocedal and Wright,
// Numerical Optimization, algorithms 7.4 and 7.5): two-loop recursion with
// `history` pairs, H0 = (s'y / y'y) I, backtracking line search from step 1
// (the objective is strictly convex, so an accepted step has s'y > 0 in
// exact arithmetic; pairs without it are dropped).
template <typename Fn>
inline LbfgsResult lbfgs(Fn& fn, Eigen::VectorXd* theta, int history, int max_iterations, double tolerance) {
  LbfgsResult r;
  Eigen::VectorXd g, g_new, trial, dir;
  double f = fn(*theta, &g);
  double gnorm = g.norm();
  const size_t m = size_t(std::max(1, history));
  std::vector<Eigen::VectorXd> s_hist, y_hist;
  std::vector<double> rho_hist;
  std::vector<double> alpha(m);
  while (!(gnorm <= tolerance) && r.iterations < max_iterations) {
    // Direction: -H g.
    dir = -g;
    const size_t k = s_hist.size();
    for (size_t j = k; j-- > 0;) {
      alpha[j] = rho_hist[j] * s_hist[j].dot(dir);
      dir -= alpha[j] * y_hist[j];
    }
    if (k > 0) dir *= s_hist[k - 1].dot(y_hist[k - 1]) / y_hist[k - 1].squaredNorm();
    for (size_t j = 0; j < k; ++j) {
      const double beta = rho_hist[j] * y_hist[j].dot(dir);
      dir += (alpha[j] - beta) * s_hist[j];
    }
    double slope = g.dot(dir);
    if (!(slope < 0)) {  // lost descent (rounding): restart from steepest descent
      s_hist.clear();
      y_hist.clear();
      rho_hist.clear();
      dir = -g;
      slope = -gnorm * gnorm;
    }
    // The first step has no curvature estimate: keep it to length <= 1.
    double step = s_hist.empty() ? std::min(1.0, 1.0 / gnorm) : 1.0;
    double f_new = 0;
    bool accepted = false;
    for (int tries = 0; tries < 60; ++tries) {
      trial = *theta + step * dir;
      f_new = fn(trial, &g_new);
      if (!std::isfinite(f_new)) {
        step *= 0.5;
        continue;
      }
      // Armijo; or, once f changes by no more than its rounding, the slope
      // along dir shrinking (Hager and Zhang's approximate Wolfe test): near
      // the optimum f alone cannot tell a better point at double precision.
      const bool armijo = f_new <= f + 1e-4 * step * slope;
      const bool flat = std::fabs(f_new - f) <= 1e-14 * std::fabs(f) && g_new.dot(dir) >= 0.9 * slope &&
                        g_new.dot(dir) <= -0.9 * slope;
      if (armijo || flat) {
        accepted = true;
        break;
      }
      step *= 0.5;
    }
    if (!accepted) break;  // no decrease left at double precision
    ++r.iterations;
    Eigen::VectorXd s = trial - *theta, y = g_new - g;
    const double sy = s.dot(y);
    *theta = trial;
    g.swap(g_new);
    f = f_new;
    gnorm = g.norm();
    if (sy > 1e-12 * y.squaredNorm() && sy > 0) {
      if (s_hist.size() == m) {
        s_hist.erase(s_hist.begin());
        y_hist.erase(y_hist.begin());
        rho_hist.erase(rho_hist.begin());
      }
      s_hist.push_back(std::move(s));
      y_hist.push_back(std::move(y));
      rho_hist.push_back(1.0 / sy);
    }
  }
  r.converged = gnorm <= tolerance;
  r.f = f;
  r.gradient_norm = gnorm;
  return r;
}

// Little-endian fields: featx/detail/little_endian.hpp; the file's envelope
// (magic, version, checksum): featx/detail/checked_file.hpp.
using detail::put_f64;
using detail::put_u32;
using detail::put_u64;
inline constexpr detail::FileKind kFile{Probe::kMagic, Probe::kFileVersion, Probe::kHeaderBytes, "probe file"};

}  // namespace probe_detail

inline Status Probe::train(const float* x, size_t n, size_t d, const std::vector<std::string>& labels,
                           const ProbeTrainOptions& options, Probe* out, ProbeTrainReport* report) {
  *out = Probe();
  if (labels.size() != n)
    return invalid_argument("probe: " + std::to_string(labels.size()) + " labels for " + std::to_string(n) + " vectors");
  std::vector<std::string> names = labels;
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::vector<int> y(n);
  for (size_t i = 0; i < n; ++i)
    y[i] = int(std::lower_bound(names.begin(), names.end(), labels[i]) - names.begin());
  return train(x, n, d, y.data(), names, options, out, report);
}

inline Status Probe::train(const float* x, size_t n, size_t d, const int* labels,
                           const std::vector<std::string>& class_names, const ProbeTrainOptions& options, Probe* out,
                           ProbeTrainReport* report) {
  using namespace probe_detail;
  *out = Probe();
  ProbeTrainReport local;
  ProbeTrainReport& rep = report ? *report : local;
  rep = ProbeTrainReport();
  const size_t c = class_names.size();
  if (c < 2) return invalid_argument("probe: needs at least 2 classes, got " + std::to_string(c));
  if (c > kMaxClasses)
    return invalid_argument("probe: " + std::to_string(c) + " classes (at most " + std::to_string(kMaxClasses) + ")");
  for (size_t k = 0; k < c; ++k) {
    const std::string problem = name_problem(class_names[k]);
    if (!problem.empty())
      return invalid_argument("probe: class " + std::to_string(k) + " name " + quoted(class_names[k]) + " " + problem);
  }
  size_t dup_a = 0, dup_b = 0;
  if (find_duplicate(class_names, &dup_a, &dup_b))
    return invalid_argument("probe: duplicate class name " + quoted(class_names[dup_a]) + " (classes " +
                            std::to_string(dup_a) + " and " + std::to_string(dup_b) + ")");
  if (d == 0 || d > kMaxDims)
    return invalid_argument("probe: vectors of " + std::to_string(d) + " dims (1 to " + std::to_string(kMaxDims) +
                            " are supported)");
  if (uint64_t(c) * d > kMaxWeights)
    return invalid_argument("probe: " + std::to_string(c) + " classes x " + std::to_string(d) +
                            " dims is more weights than the " + std::to_string(kMaxWeights) + " supported");
  if (n < c) return invalid_argument("probe: " + std::to_string(n) + " vectors for " + std::to_string(c) + " classes");
  if (n > size_t(std::numeric_limits<Eigen::Index>::max()) / d) return invalid_argument("probe: n * d overflows");
  if (x == nullptr || labels == nullptr) return invalid_argument("probe: null data pointer");
  if (!(options.l2 >= 0 && std::isfinite(options.l2)))
    return invalid_argument("probe: lambda must be finite and >= 0");
  if (options.kind == ProbeKind::logistic && !(options.l2 > 0))
    return invalid_argument("probe: lambda must be > 0 for a logistic probe (separable data has no optimum without it)");
  if (!(options.gradient_tolerance > 0) || options.max_iterations < 0 || options.history < 1)
    return invalid_argument("probe: tolerance must be > 0, iterations >= 0, history >= 1");
  if (!(options.mean_logit_scale > 0 && std::isfinite(options.mean_logit_scale)))
    return invalid_argument("probe: the mean probe's logit scale must be finite and > 0");

  std::vector<size_t> count(c, 0);
  std::vector<int> y(n);
  for (size_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || size_t(labels[i]) >= c)
      return invalid_argument("probe: vector " + std::to_string(i) + " has label " + std::to_string(labels[i]) +
                              ", not a class in [0, " + std::to_string(c) + ")");
    y[i] = labels[i];
    ++count[size_t(y[i])];
    const float* row = x + i * d;
    for (size_t j = 0; j < d; ++j)
      if (!std::isfinite(row[j]))
        return invalid_argument("probe: vector " + std::to_string(i) + " has a non-finite value (column " +
                                std::to_string(j) + ")");
  }
  for (size_t k = 0; k < c; ++k)
    if (count[k] == 0) return invalid_argument("probe: class " + quoted(class_names[k]) + " has no vectors");

  const Eigen::Index ni = Eigen::Index(n), di = Eigen::Index(d), ci = Eigen::Index(c);
  RowMatrix u(ni, di);
  for (size_t i = 0; i < n; ++i) unit(x + i * d, d, u.row(Eigen::Index(i)).data());

  Probe p;
  p.kind_ = options.kind;
  p.c_ = c;
  p.d_ = d;
  p.n_ = n;
  p.names_ = class_names;
  p.mean_.assign(d, 0.0);
  p.b_.assign(c, 0.0);
  p.w_.assign(c * d, 0.0);
  Eigen::Map<RowMatrix> w(p.w_.data(), ci, di);

  if (options.kind == ProbeKind::mean) {
    // Imprinted weights: the unit-length class means of the unit vectors.
    for (size_t i = 0; i < n; ++i) w.row(y[i]) += u.row(Eigen::Index(i));
    for (size_t k = 0; k < c; ++k) {
      const double norm = w.row(Eigen::Index(k)).norm();
      if (!(norm > 0))
        return invalid_argument("probe: class " + quoted(class_names[k]) + " has only zero vectors (no direction)");
      w.row(Eigen::Index(k)) /= norm;
    }
    p.lambda_ = 0;
    p.scale_ = 1;
    p.logit_scale_ = options.mean_logit_scale;
    rep.iterations = 0;
    rep.converged = true;
    rep.gradient_norm = 0;
  } else {
    // Centre on the training mean (the non-negative ReLU6 features share a
    // large common direction that would otherwise dominate the curvature),
    // then one scale so the rows' mean squared norm is 1.
    Eigen::Map<Eigen::RowVectorXd> mu(p.mean_.data(), di);
    for (Eigen::Index i = 0; i < ni; ++i) mu += u.row(i);
    mu /= double(n);
    for (Eigen::Index i = 0; i < ni; ++i) u.row(i) -= mu;
    double ss = 0;
    for (Eigen::Index i = 0; i < ni; ++i) ss += u.row(i).squaredNorm();
    ss /= double(n);
    if (!(ss > 0)) return invalid_argument("probe: all training vectors point the same way (no spread to learn from)");
    p.scale_ = 1.0 / std::sqrt(ss);
    u *= p.scale_;
    p.lambda_ = options.l2;
    p.logit_scale_ = 1;

    LogisticObjective fn(u, y, c, options.l2);
    Eigen::VectorXd theta = Eigen::VectorXd::Zero(Eigen::Index(fn.parameters()));
    const LbfgsResult res = lbfgs(fn, &theta, options.history, options.max_iterations, options.gradient_tolerance);
    // The softmax is unchanged when every bias moves together: store them summing to 0.
    double bsum = 0;
    for (size_t k = 0; k < c; ++k) bsum += theta[Eigen::Index(c * d + k)];
    for (size_t k = 0; k < c; ++k) p.b_[k] = theta[Eigen::Index(c * d + k)] - bsum / double(c);
    std::copy(theta.data(), theta.data() + c * d, p.w_.begin());
    rep.iterations = res.iterations;
    rep.converged = res.converged;
    rep.gradient_norm = res.gradient_norm;
    rep.loss = res.f;
  }
  for (double v : p.w_)
    if (!std::isfinite(v)) return Status(StatusCode::internal, "probe: training produced non-finite weights");

  // Training accuracy (and the mean probe's cross-entropy) through predict's path.
  std::vector<double> z(c), pr(c);
  double xent = 0;
  for (size_t i = 0; i < n; ++i) {
    FEATX_RETURN_IF_ERROR(p.logits(x + i * d, 1, d, z.data(), c));
    size_t best = 0;
    for (size_t k = 1; k < c; ++k)
      if (z[k] > z[best]) best = k;
    rep.correct += best == size_t(y[i]);
    xent += softmax(z.data(), c, pr.data()) - z[size_t(y[i])];
  }
  rep.samples = n;
  if (options.kind == ProbeKind::mean) rep.loss = xent / double(n);
  *out = std::move(p);
  return Status::Ok();
}

inline Status Probe::check_rows(const float* x, size_t n, size_t d) const {
  if (empty()) return invalid_argument("probe: not trained or loaded");
  if (d != d_)
    return invalid_argument("probe: vectors of " + std::to_string(d) + " dims, the probe takes " + std::to_string(d_));
  if (n > 0 && x == nullptr) return invalid_argument("probe: null data pointer");
  return Status::Ok();
}

inline void Probe::normalize(const float* x, double* out) const {
  probe_detail::unit(x, d_, out);
  for (size_t j = 0; j < d_; ++j) out[j] = (out[j] - mean_[j]) * scale_;
}

inline Status Probe::logits(const float* x, size_t n, size_t d, double* out, size_t out_size) const {
  FEATX_RETURN_IF_ERROR(check_rows(x, n, d));
  if (n > out_size / c_) return invalid_argument("probe: output has room for " + std::to_string(out_size) + " values, " +
                                                 std::to_string(n) + " rows need " + std::to_string(n * c_));
  const Eigen::Index di = Eigen::Index(d_), ci = Eigen::Index(c_);
  const Eigen::Map<const RowMatrix> w(w_.data(), ci, di);
  Eigen::RowVectorXd v(di);  // Eigen-allocated: the same alignment, so the same sums, every call
  for (size_t i = 0; i < n; ++i) {
    const float* row = x + i * d_;
    for (size_t j = 0; j < d_; ++j)
      if (!std::isfinite(row[j]))
        return invalid_argument("probe: vector " + std::to_string(i) + " has a non-finite value (column " +
                                std::to_string(j) + ")");
    normalize(row, v.data());
    for (Eigen::Index k = 0; k < ci; ++k) out[i * c_ + size_t(k)] = logit_scale_ * (w.row(k).dot(v) + b_[size_t(k)]);
  }
  return Status::Ok();
}

inline Status Probe::predict(const float* x, size_t n, size_t d, float* probabilities, size_t out_size) const {
  FEATX_RETURN_IF_ERROR(check_rows(x, n, d));
  if (n > out_size / c_) return invalid_argument("probe: output has room for " + std::to_string(out_size) + " values, " +
                                                 std::to_string(n) + " rows need " + std::to_string(n * c_));
  std::vector<double> z(c_), p(c_);
  for (size_t i = 0; i < n; ++i) {
    FEATX_RETURN_IF_ERROR(logits(x + i * d_, 1, d_, z.data(), c_));
    probe_detail::softmax(z.data(), c_, p.data());
    for (size_t k = 0; k < c_; ++k) probabilities[i * c_ + k] = float(p[k]);
  }
  return Status::Ok();
}

inline std::vector<int> Probe::top_k(const float* p, int classes, int k) {
  std::vector<int> order(size_t(std::max(classes, 0)));
  for (int c = 0; c < classes; ++c) order[size_t(c)] = c;
  const int top = std::max(0, std::min(k, classes));
  std::partial_sort(order.begin(), order.begin() + top, order.end(),
                    [&](int a, int b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
  order.resize(size_t(top));
  return order;
}

inline Status Probe::objective(const float* x, size_t n, size_t d, const int* labels, double lambda, double* f,
                               std::vector<double>* gradient) const {
  FEATX_RETURN_IF_ERROR(check_rows(x, n, d));
  if (n == 0 || labels == nullptr) return invalid_argument("probe: objective needs labelled vectors");
  const Eigen::Index ni = Eigen::Index(n), di = Eigen::Index(d_);
  RowMatrix xh(ni, di);
  std::vector<int> y(n);
  for (size_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || size_t(labels[i]) >= c_) return invalid_argument("probe: label out of range");
    y[i] = labels[i];
    normalize(x + i * d_, xh.row(Eigen::Index(i)).data());
  }
  probe_detail::LogisticObjective fn(xh, y, c_, lambda);
  Eigen::VectorXd theta(Eigen::Index(fn.parameters())), g;
  std::copy(w_.begin(), w_.end(), theta.data());
  std::copy(b_.begin(), b_.end(), theta.data() + w_.size());
  *f = fn(theta, &g);
  if (gradient) gradient->assign(g.data(), g.data() + g.size());
  return Status::Ok();
}

inline void Probe::serialize(std::vector<uint8_t>* bytes) const {
  using namespace probe_detail;
  std::vector<uint8_t>& b = *bytes;
  size_t total = kHeaderBytes + 8 * (d_ + c_ * d_ + c_) + 4;
  for (const std::string& s : names_) total += 4 + s.size();
  detail::begin_file(kFile, total, &b);
  put_u32(&b, uint32_t(kind_));
  put_u32(&b, 1);  // normalisation: (x / ||x|| - mean) * scale
  put_u32(&b, uint32_t(c_));
  put_u64(&b, d_);
  put_u64(&b, n_);
  put_f64(&b, lambda_);
  put_f64(&b, scale_);
  put_f64(&b, logit_scale_);
  for (const std::string& s : names_) {
    put_u32(&b, uint32_t(s.size()));
    for (char ch : s) b.push_back(uint8_t(ch));
  }
  for (double v : mean_) put_f64(&b, v);
  for (double v : w_) put_f64(&b, v);
  for (double v : b_) put_f64(&b, v);
  detail::seal_file(&b);
}

inline Status Probe::save(const std::string& path) const {
  if (empty()) return invalid_argument(path + ": no probe to save (not trained or loaded)");
  std::vector<uint8_t> bytes;
  serialize(&bytes);
  return detail::write_file(path, bytes.data(), bytes.size());
}

inline Status Probe::from_memory(const uint8_t* data, size_t size, const std::string& name, Probe* out) {
  using namespace probe_detail;
  *out = Probe();
  detail::CheckedReader file(data, size, name, kFile);
  FEATX_RETURN_IF_ERROR(file.open());
  const uint32_t kind = file.u32_at(12), norm = file.u32_at(16), c = file.u32_at(20);
  const uint64_t d = file.u64_at(24), n = file.u64_at(32);
  if (kind != uint32_t(ProbeKind::mean) && kind != uint32_t(ProbeKind::logistic))
    return corrupt(name + ": unknown probe kind " + std::to_string(kind) + " (1 mean, 2 logistic)");
  if (norm != 1) return corrupt(name + ": unknown normalisation " + std::to_string(norm) + " (1 is the only one)");
  if (c < 2 || c > kMaxClasses)
    return corrupt(name + ": " + std::to_string(c) + " classes (2 to " + std::to_string(kMaxClasses) + " are valid)");
  if (d < 1 || d > kMaxDims)
    return corrupt(name + ": " + std::to_string(d) + " dims (1 to " + std::to_string(kMaxDims) + " are valid)");
  if (uint64_t(c) * d > kMaxWeights)
    return corrupt(name + ": " + std::to_string(c) + " classes x " + std::to_string(d) + " dims is absurdly many weights");
  // The names, each read only after its bounds are checked; room for them
  // grows with what the file holds (a name takes at least 5 bytes), not with
  // the class count a damaged header states.
  std::vector<std::string> names;
  names.reserve(std::min<size_t>(c, size / 5));
  for (uint32_t k = 0; k < c; ++k) {
    if (!file.has(4)) return corrupt(name + ": truncated in the class names (class " + std::to_string(k) + ")");
    const uint32_t len = file.u32();
    if (len == 0) return corrupt(name + ": class " + std::to_string(k) + " has an empty name");
    if (len > kMaxNameBytes)
      return corrupt(name + ": class " + std::to_string(k) + " name of " + std::to_string(len) + " bytes (at most " +
                     std::to_string(kMaxNameBytes) + ")");
    if (!file.has(len)) return corrupt(name + ": truncated in the class names (class " + std::to_string(k) + ")");
    names.push_back(file.text(len));
  }
  const uint64_t numbers = d + uint64_t(c) * d + c;  // <= 2^26 + 2^20 + 2^16: no overflow below
  FEATX_RETURN_IF_ERROR(file.expect_end(8 * numbers, std::to_string(c) + " classes x " + std::to_string(d) +
                                                         " dims need"));

  Probe p;
  p.kind_ = ProbeKind(kind);
  p.c_ = c;
  p.d_ = size_t(d);
  p.n_ = n;
  p.lambda_ = file.f64_at(40);
  p.scale_ = file.f64_at(48);
  p.logit_scale_ = file.f64_at(56);
  if (!(std::isfinite(p.lambda_) && p.lambda_ >= 0)) return corrupt(name + ": lambda is negative or not finite");
  if (!(std::isfinite(p.scale_) && p.scale_ > 0)) return corrupt(name + ": scale is not a finite positive number");
  if (!(std::isfinite(p.logit_scale_) && p.logit_scale_ > 0))
    return corrupt(name + ": logit scale is not a finite positive number");
  for (uint32_t k = 0; k < c; ++k) {
    const std::string problem = name_problem(names[k]);
    if (!problem.empty()) return corrupt(name + ": class " + std::to_string(k) + " name " + problem);
  }
  size_t dup_a = 0, dup_b = 0;
  if (find_duplicate(names, &dup_a, &dup_b))
    return corrupt(name + ": duplicate class name " + quoted(names[dup_a]) + " (classes " + std::to_string(dup_a) +
                   " and " + std::to_string(dup_b) + ")");
  p.names_ = std::move(names);
  FEATX_RETURN_IF_ERROR(file.finite_f64("mean", p.d_, &p.mean_));
  FEATX_RETURN_IF_ERROR(file.finite_f64("weights", size_t(c) * p.d_, &p.w_));
  FEATX_RETURN_IF_ERROR(file.finite_f64("bias", c, &p.b_));
  *out = std::move(p);
  return Status::Ok();
}

inline Status Probe::load(const std::string& path, Probe* out) {
  *out = Probe();
  std::vector<uint8_t> bytes;
  // The largest valid file is about 513 MB (2^26 weights of 8 bytes and the rest).
  FEATX_RETURN_IF_ERROR(read_file(path, &bytes, uint64_t(600) << 20));
  return from_memory(bytes.data(), bytes.size(), path, out);
}

}  // namespace featx
