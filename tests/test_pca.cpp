// Tests for featx/pca.hpp: exact answers on points in a plane (both the
// covariance and the SVD path), the eigen equation against a covariance
// computed here by plain loops, the sign convention, transform / inverse
// round trips, whitening, save / load, and every bad file with its one-line
// message. numpy's SVD on real features: tests/python/check_pca.py.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "featx/pca.hpp"

namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("featx_test_pca_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

// The (a, b) coordinates of the plane points: centred, uncorrelated
// (sum a b = 0), sum a^2 = 27 and sum b^2 = 3, so over n - 1 = 7 the
// variances are exactly 27/7 and 3/7 (ratios 0.9 and 0.1).
const double kA[8] = {3, -3, 0, 0, 1.5, 1.5, -1.5, -1.5};
const double kB[8] = {0, 0, 1, -1, 0.5, -0.5, 0.5, -0.5};

// Points offset + a u + b v, as float rows of d.
std::vector<float> plane_points(const std::vector<double>& offset, const std::vector<double>& u,
                                const std::vector<double>& v) {
  const size_t d = offset.size();
  std::vector<float> x(8 * d);
  for (size_t i = 0; i < 8; ++i)
    for (size_t j = 0; j < d; ++j) x[i * d + j] = float(offset[j] + kA[i] * u[j] + kB[i] * v[j]);
  return x;
}

std::vector<float> noisy_vectors(size_t n, size_t d, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> x(n * d);
  // Columns of decreasing spread plus correlations, so variances are distinct.
  for (size_t i = 0; i < n; ++i) {
    float shared = g(rng);
    for (size_t j = 0; j < d; ++j) x[i * d + j] = 3.f + g(rng) * float(d - j) / float(d) + 0.5f * shared * float(j % 3);
  }
  return x;
}

// The sample covariance by plain loops (independent of Eigen).
std::vector<double> naive_covariance(const std::vector<float>& x, size_t n, size_t d) {
  std::vector<double> mean(d, 0), cov(d * d, 0);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < d; ++j) mean[j] += x[i * d + j];
  for (double& m : mean) m /= double(n);
  for (size_t i = 0; i < n; ++i)
    for (size_t a = 0; a < d; ++a)
      for (size_t b = 0; b < d; ++b) cov[a * d + b] += (x[i * d + a] - mean[a]) * (x[i * d + b] - mean[b]);
  for (double& c : cov) c /= double(n - 1);
  return cov;
}

bool near(double a, double b, double tol) { return std::fabs(a - b) <= tol; }

// Fit, and check the eigen equation C c = var c, unit norm, orthogonality,
// order and the sign convention against a covariance computed here.
void check_against_naive(const std::vector<float>& x, size_t n, size_t d, size_t k, featx::PcaMethod method) {
  featx::Pca p;
  featx::PcaFitOptions opt;
  opt.components = k;
  REQUIRE(featx::Pca::fit(x.data(), n, d, opt, &p).ok());
  CHECK(p.method() == method);
  REQUIRE(p.components() == k);
  const std::vector<double> cov = naive_covariance(x, n, d);
  double trace = 0;
  for (size_t j = 0; j < d; ++j) trace += cov[j * d + j];
  CHECK(near(p.total_variance(), trace, 1e-9 * trace));
  for (size_t i = 0; i < k; ++i) {
    const double* c = p.component(i);
    double residual = 0, norm2 = 0, big = 0;
    size_t at = 0;
    for (size_t a = 0; a < d; ++a) {
      double cc = 0;
      for (size_t b = 0; b < d; ++b) cc += cov[a * d + b] * c[b];
      residual = std::max(residual, std::fabs(cc - p.explained_variance()[i] * c[a]));
      norm2 += c[a] * c[a];
      if (std::fabs(c[a]) > big) big = std::fabs(c[a]), at = a;
    }
    CHECK(residual < 1e-9 * trace);
    CHECK(near(norm2, 1, 1e-12));
    CHECK(c[at] > 0);  // the sign convention
    if (i > 0) CHECK(p.explained_variance()[i] <= p.explained_variance()[i - 1]);
    for (size_t o = 0; o < i; ++o) {
      double dot = 0;
      for (size_t a = 0; a < d; ++a) dot += c[a] * p.component(o)[a];
      CHECK(std::fabs(dot) < 1e-10);
    }
  }
}

// A valid model file's bytes, and helpers to damage it.
std::vector<uint8_t> model_bytes(bool whiten = false) {
  const std::vector<float> x = noisy_vectors(30, 6, 7);
  featx::Pca p;
  featx::PcaFitOptions opt;
  opt.components = 4;
  opt.whiten = whiten;
  REQUIRE(featx::Pca::fit(x.data(), 30, 6, opt, &p).ok());
  std::vector<uint8_t> b;
  p.serialize(&b);
  return b;
}
void put_u32(std::vector<uint8_t>* b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*b)[at + i] = uint8_t(v >> (8 * i));
}
void put_u64(std::vector<uint8_t>* b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) (*b)[at + i] = uint8_t(v >> (8 * i));
}
void put_f64(std::vector<uint8_t>* b, size_t at, double v) {
  uint64_t u;
  std::memcpy(&u, &v, 8);
  put_u64(b, at, u);
}
double get_f64(const std::vector<uint8_t>& b, size_t at) {
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u |= uint64_t(b[at + i]) << (8 * i);
  double v;
  std::memcpy(&v, &u, 8);
  return v;
}
void fix_crc(std::vector<uint8_t>* b) { put_u32(b, b->size() - 4, featx::crc32c(b->data(), b->size() - 4)); }

// Loads `bytes` from a file and expects one line naming it that contains `needle`.
void expect_bad(const std::vector<uint8_t>& bytes, const std::string& needle) {
  TempDir t;
  const std::string path = t.file("bad.pca");
  write_bytes(path, bytes);
  featx::Pca p;
  const featx::Status st = featx::Pca::load(path, &p);
  INFO("expected: ", needle, "; got: ", st.message());
  REQUIRE_FALSE(st.ok());
  CHECK(st.message().rfind(path + ": ", 0) == 0);
  CHECK(st.message().find('\n') == std::string::npos);
  CHECK(st.message().find(needle) != std::string::npos);
  CHECK(p.empty());
}

// Layout offsets (docs/pca.md): d = 6, k = 4 in model_bytes().
constexpr size_t kD = 6, kK = 4, kMean = 48, kComp = kMean + 8 * kD, kVar = kComp + 8 * kK * kD;

}  // namespace

TEST_CASE("pca: points on a plane in 3-D, through the covariance (n > d): exact components and variances") {
  const std::vector<double> u = {2 / 7., 3 / 7., 6 / 7.}, v = {3 / 7., -6 / 7., 2 / 7.}, w = {6 / 7., 2 / 7., -3 / 7.};
  const std::vector<double> offset = {10, -5, 2.5};
  const std::vector<float> x = plane_points(offset, u, v);
  featx::Pca p;
  REQUIRE(featx::Pca::fit(x.data(), 8, 3, {}, &p).ok());
  CHECK(p.method() == featx::PcaMethod::covariance);
  REQUIRE(p.components() == 3);  // min(n - 1, d)
  CHECK(p.samples() == 8);
  // float32 input: the points are exact to about 1e-6 of their size.
  const double tol = 2e-6;
  for (size_t j = 0; j < 3; ++j) CHECK(near(p.mean()[j], offset[j], tol * 10));
  CHECK(near(p.explained_variance()[0], 27 / 7., tol * 10));
  CHECK(near(p.explained_variance()[1], 3 / 7., tol * 10));
  CHECK(near(p.explained_variance()[2], 0, tol));
  CHECK(near(p.explained_variance_ratio(0), 0.9, tol));
  CHECK(near(p.explained_variance_ratio(1), 0.1, tol));
  // Signs: u's largest entry (6/7) is positive already, v's (-6/7) is not,
  // so the second component is -v; the normal w keeps its sign.
  for (size_t j = 0; j < 3; ++j) {
    CHECK(near(p.component(0)[j], u[j], tol));
    CHECK(near(p.component(1)[j], -v[j], tol));
    CHECK(near(p.component(2)[j], w[j], 1e-4));  // a direction of (almost) no variance: less well fixed
  }
}

TEST_CASE("pca: points on a plane in 10-D, through the SVD (n <= d): exact components and variances") {
  std::vector<double> u(10, 0), v(10, 0), offset(10);
  u[1] = 2 / 7., u[4] = 3 / 7., u[8] = 6 / 7.;
  v[0] = 0.6, v[9] = -0.8;
  for (size_t j = 0; j < 10; ++j) offset[j] = 0.25 * double(j) - 1;
  const std::vector<float> x = plane_points(offset, u, v);
  featx::Pca p;
  featx::PcaFitOptions opt;
  opt.components = 2;
  REQUIRE(featx::Pca::fit(x.data(), 8, 10, opt, &p).ok());
  CHECK(p.method() == featx::PcaMethod::svd);
  REQUIRE(p.components() == 2);
  const double tol = 2e-6;
  CHECK(near(p.explained_variance()[0], 27 / 7., tol * 10));
  CHECK(near(p.explained_variance()[1], 3 / 7., tol * 10));
  CHECK(near(p.explained_variance_ratio(0), 0.9, tol));
  CHECK(near(p.explained_variance_ratio(1), 0.1, tol));
  for (size_t j = 0; j < 10; ++j) {
    CHECK(near(p.component(0)[j], u[j], tol));
    CHECK(near(p.component(1)[j], -v[j], tol));  // v's largest |entry| is -0.8
  }
  // Coordinates in the plane are (a, -b).
  std::vector<float> y(8 * 2);
  REQUIRE(p.transform(x.data(), 8, 10, y.data(), y.size()).ok());
  for (size_t i = 0; i < 8; ++i) {
    CHECK(near(y[i * 2], kA[i], 1e-5));
    CHECK(near(y[i * 2 + 1], -kB[i], 1e-5));
  }
  // 7 components at most from 8 vectors.
  opt.components = 8;
  const featx::Status st = featx::Pca::fit(x.data(), 8, 10, opt, &p);
  CHECK_FALSE(st.ok());
  CHECK(st.message().find("at most 7") != std::string::npos);
}

TEST_CASE("pca: the eigen equation against a plain covariance, both paths") {
  SUBCASE("covariance path: 200 x 24") { check_against_naive(noisy_vectors(200, 24, 1), 200, 24, 24, featx::PcaMethod::covariance); }
  SUBCASE("svd path: 20 x 40") { check_against_naive(noisy_vectors(20, 40, 2), 20, 40, 19, featx::PcaMethod::svd); }
  SUBCASE("svd path: n = d = 30") { check_against_naive(noisy_vectors(30, 30, 3), 30, 30, 10, featx::PcaMethod::svd); }
}

TEST_CASE("pca: the same input gives the same bits, components follow the sign convention") {
  for (size_t n : {15u, 300u}) {
    const std::vector<float> x = noisy_vectors(n, 32, 11);
    featx::Pca a, b;
    REQUIRE(featx::Pca::fit(x.data(), n, 32, {}, &a).ok());
    REQUIRE(featx::Pca::fit(x.data(), n, 32, {}, &b).ok());
    std::vector<uint8_t> ba, bb;
    a.serialize(&ba);
    b.serialize(&bb);
    CHECK(ba == bb);
    // Negating the input flips no component: the convention, not the data's sign, decides it.
    std::vector<float> neg(x);
    for (float& v : neg) v = -v;
    featx::Pca c;
    REQUIRE(featx::Pca::fit(neg.data(), n, 32, {}, &c).ok());
    for (size_t i = 0; i < a.components(); ++i)
      for (size_t j = 0; j < 32; ++j) CHECK(near(c.component(i)[j], a.component(i)[j], 1e-9));
  }
}

TEST_CASE("pca: transform and inverse_transform round trips, whitening") {
  const size_t n = 700, d = 16;  // more rows than one 512-row block
  const std::vector<float> x = noisy_vectors(n, d, 5);
  for (bool whiten : {false, true}) {
    CAPTURE(whiten);
    featx::PcaFitOptions opt;
    opt.whiten = whiten;
    featx::Pca p;
    REQUIRE(featx::Pca::fit(x.data(), n, d, opt, &p).ok());
    REQUIRE(p.components() == d);
    std::vector<float> y(n * d), back(n * d);
    REQUIRE(p.transform(x.data(), n, d, y.data(), y.size()).ok());
    REQUIRE(p.inverse_transform(y.data(), n, d, back.data(), back.size()).ok());
    double worst = 0;
    for (size_t i = 0; i < n * d; ++i) worst = std::max(worst, double(std::fabs(back[i] - x[i])));
    CHECK(worst < 1e-5);  // all components: the identity, to float rounding
    // Columns: mean 0, variance = explained variance (1 when whitened).
    for (size_t i = 0; i < d; ++i) {
      double s = 0, s2 = 0;
      for (size_t r = 0; r < n; ++r) s += y[r * d + i];
      const double m = s / double(n);
      for (size_t r = 0; r < n; ++r) s2 += (y[r * d + i] - m) * (y[r * d + i] - m);
      CHECK(std::fabs(m) < 1e-5);
      const double expected = whiten ? 1.0 : p.explained_variance()[i];
      CHECK(near(s2 / double(n - 1), expected, 1e-5 * expected));
    }
  }
  // k < d: inverse then transform gives the coordinates back (a projection).
  featx::PcaFitOptions opt;
  opt.components = 5;
  featx::Pca p;
  REQUIRE(featx::Pca::fit(x.data(), n, d, opt, &p).ok());
  std::vector<float> y(n * 5), back(n * d), y2(n * 5);
  REQUIRE(p.transform(x.data(), n, d, y.data(), y.size()).ok());
  REQUIRE(p.inverse_transform(y.data(), n, 5, back.data(), back.size()).ok());
  REQUIRE(p.transform(back.data(), n, d, y2.data(), y2.size()).ok());
  for (size_t i = 0; i < n * 5; ++i) CHECK(near(y2[i], y[i], 1e-4));
}

TEST_CASE("pca: bad arguments are one-line errors") {
  const std::vector<float> x = noisy_vectors(10, 4, 9);
  featx::Pca p;
  featx::PcaFitOptions opt;
  CHECK(featx::Pca::fit(x.data(), 1, 4, opt, &p).message().find("at least 2") != std::string::npos);
  CHECK_FALSE(featx::Pca::fit(x.data(), 10, 0, opt, &p).ok());
  CHECK_FALSE(featx::Pca::fit(nullptr, 10, 4, opt, &p).ok());
  opt.components = 5;
  CHECK(featx::Pca::fit(x.data(), 10, 4, opt, &p).message().find("at most 4") != std::string::npos);
  opt.components = 0;
  std::vector<float> nan(x);
  nan[2 * 4 + 3] = std::numeric_limits<float>::quiet_NaN();
  CHECK(featx::Pca::fit(nan.data(), 10, 4, opt, &p).message() == "pca: vector 2 has a non-finite value (column 3)");
  std::vector<float> same(40, 1.5f);
  CHECK(featx::Pca::fit(same.data(), 10, 4, opt, &p).message().find("all vectors are equal") != std::string::npos);
  // Points on a line: a second component has no variance to whiten.
  std::vector<float> line(40);
  for (size_t i = 0; i < 10; ++i)
    for (size_t j = 0; j < 4; ++j) line[i * 4 + j] = float(i) * float(j + 1);
  opt.whiten = true;
  CHECK(featx::Pca::fit(line.data(), 10, 4, opt, &p).message().find("cannot be whitened") != std::string::npos);
  opt.components = 1;
  CHECK(featx::Pca::fit(line.data(), 10, 4, opt, &p).ok());

  REQUIRE(featx::Pca::fit(x.data(), 10, 4, {}, &p).ok());
  REQUIRE(p.components() == 4);
  std::vector<float> y(10 * 4);
  CHECK(p.transform(x.data(), 10, 5, y.data(), y.size()).message().find("vectors of 5 dims, the model has 4") !=
        std::string::npos);
  CHECK(p.transform(x.data(), 10, 4, y.data(), y.size() - 1).message().find("needs 10 x 4") != std::string::npos);
  CHECK(p.transform(nan.data(), 10, 4, y.data(), y.size()).message().find("vector 2") != std::string::npos);
  CHECK(p.inverse_transform(y.data(), 10, 3, same.data(), same.size()).message().find("rows of 3 values") !=
        std::string::npos);
  CHECK(p.inverse_transform(nan.data(), 10, 4, same.data(), same.size()).message().find("row 2") != std::string::npos);
  featx::Pca empty;
  CHECK_FALSE(empty.transform(x.data(), 10, 4, y.data(), y.size()).ok());
  TempDir t;
  CHECK_FALSE(empty.save(t.file("e.pca")).ok());
}

TEST_CASE("pca: save / load round trip keeps every bit") {
  TempDir t;
  const std::vector<float> x = noisy_vectors(40, 12, 4);
  for (bool whiten : {false, true}) {
    featx::PcaFitOptions opt;
    opt.components = 7;
    opt.whiten = whiten;
    featx::Pca a, b;
    REQUIRE(featx::Pca::fit(x.data(), 40, 12, opt, &a).ok());
    const std::string path = t.file(whiten ? "w.pca" : "p.pca");
    REQUIRE(a.save(path).ok());
    CHECK(fs::file_size(path) == 48 + 8 * (12 + 7 * 12 + 7) + 4);
    REQUIRE(featx::Pca::load(path, &b).ok());
    CHECK(b.dims() == 12);
    CHECK(b.components() == 7);
    CHECK(b.samples() == 40);
    CHECK(b.whiten() == whiten);
    CHECK(b.method() == featx::PcaMethod::covariance);
    CHECK(b.mean() == a.mean());
    CHECK(b.components_matrix() == a.components_matrix());
    CHECK(b.explained_variance() == a.explained_variance());
    CHECK(b.total_variance() == a.total_variance());
    std::vector<float> ya(40 * 7), yb(40 * 7);
    REQUIRE(a.transform(x.data(), 40, 12, ya.data(), ya.size()).ok());
    REQUIRE(b.transform(x.data(), 40, 12, yb.data(), yb.size()).ok());
    CHECK(std::memcmp(ya.data(), yb.data(), ya.size() * 4) == 0);
  }
  // The layout is little-endian with the documented header.
  const std::vector<uint8_t> b = model_bytes();
  CHECK(std::memcmp(b.data(), "FEATXPCA\x01\x00\x00\x00\x02\x00\x00\x00\x06", 17) == 0);
}

TEST_CASE("pca: every bad file is a one-line error naming it") {
  const std::vector<uint8_t> good = model_bytes();
  REQUIRE(good.size() == 48 + 8 * (kD + kK * kD + kK) + 4);
  {
    TempDir t;
    featx::Pca p;
    const featx::Status st = featx::Pca::load(t.file("missing.pca"), &p);
    CHECK(st.code() == featx::StatusCode::not_found);
    CHECK(st.message().rfind(t.file("missing.pca") + ": ", 0) == 0);
    const featx::Status dir = featx::Pca::load(t.path.string(), &p);
    CHECK_FALSE(dir.ok());
    CHECK(dir.message().rfind(t.path.string() + ": ", 0) == 0);
  }
  expect_bad({}, "empty file");
  expect_bad({'F', 'E', 'A'}, "truncated");
  expect_bad({'N', 'O'}, "bad magic");
  std::vector<uint8_t> npy = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  expect_bad(npy, "bad magic");
  for (size_t cut : {size_t(8), size_t(20), size_t(47), size_t(48), size_t(100), good.size() - 1})
    expect_bad(std::vector<uint8_t>(good.begin(), good.begin() + long(cut)), "truncated");
  std::vector<uint8_t> b = good;
  b.push_back(0);
  expect_bad(b, "1 trailing bytes");

  b = good;
  put_u32(&b, 8, 2);
  expect_bad(b, "version 2 is not supported");
  b = good;
  put_u32(&b, 12, 4);
  expect_bad(b, "unknown flags");

  struct Sizes { uint64_t d, k, n; };
  for (const Sizes s : {Sizes{0, 4, 30}, Sizes{(uint64_t(1) << 20) + 1, 4, 30}, Sizes{uint64_t(1) << 62, 4, 30},
                        Sizes{6, 0, 30}, Sizes{6, 7, 30}, Sizes{6, 4, 1}, Sizes{6, 4, 4}, Sizes{6, 4, 0},
                        Sizes{6, UINT64_MAX, 30}}) {
    b = good;
    put_u64(&b, 16, s.d);
    put_u64(&b, 24, s.k);
    put_u64(&b, 32, s.n);
    expect_bad(b, "absurd sizes");
  }
  // Near 2^32 and 2^64 (docs/RELIABILITY.md, "Size arithmetic"): dims of
  // 2^32 + 6 are 6 when truncated to 32 bits; 8 (d + kd + k) for d = 2^61
  // wraps 64 bits.
  for (const Sizes s : {Sizes{(uint64_t(1) << 32) + kD, kK, 30}, Sizes{uint64_t(1) << 61, kK, 30},
                        Sizes{kD, (uint64_t(1) << 32) + kK, UINT64_MAX}}) {
    b = good;
    put_u64(&b, 16, s.d);
    put_u64(&b, 24, s.k);
    put_u64(&b, 32, s.n);
    expect_bad(b, "absurd sizes");
  }
  // Sizes in range that the file does not back.
  b = good;
  put_u64(&b, 16, uint64_t(1) << 20);
  expect_bad(b, "truncated");
  // The largest: 2^20 components of 2^20 dims need 8 (2^20 + 2^40 + 2^20)
  // bytes after the header, counted exactly (past any 32-bit size_t).
  b = good;
  put_u64(&b, 16, uint64_t(1) << 20);
  put_u64(&b, 24, uint64_t(1) << 20);
  put_u64(&b, 32, uint64_t(1) << 21);
  expect_bad(b, "needs " + std::to_string(48 + 8 * ((uint64_t(2) << 20) + (uint64_t(1) << 40)) + 4));
  b = good;
  put_u64(&b, 24, 3);
  expect_bad(b, "trailing bytes");

  b = good;
  b[kComp + 3] ^= 0x10;
  expect_bad(b, "checksum mismatch");

  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  struct Poke { size_t at; double value; const char* needle; };
  for (const Poke& poke : {Poke{40, nan, "total variance"}, Poke{40, 0.0, "total variance"},
                           Poke{40, -1.0, "total variance"}, Poke{kMean + 8 * 2, nan, "non-finite value in the mean (entry 2)"},
                           Poke{kComp + 8 * 7, inf, "non-finite value in the components (entry 7)"},
                           Poke{kVar + 8 * 3, -inf, "non-finite value in the explained variances (entry 3)"},
                           Poke{kComp + 8 * 6, 2.0, "component 2 is not a unit vector"},
                           Poke{kVar + 8 * 3, -0.5, "explained variance 4 is negative"},
                           Poke{kVar + 8 * 2, 1e6, "explained variance 3 is negative or out of order"}}) {
    b = good;
    put_f64(&b, poke.at, poke.value);
    fix_crc(&b);
    expect_bad(b, poke.needle);
  }
  // Variances that add up to more than the total.
  b = good;
  put_f64(&b, 40, get_f64(b, kVar) * 0.5);
  fix_crc(&b);
  expect_bad(b, "exceed the total variance");
  // A whitened model must not divide by a zero variance.
  b = model_bytes(true);
  put_f64(&b, kVar + 8 * 3, 0.0);
  fix_crc(&b);
  expect_bad(b, "whitened component 4 has zero variance");
  // The same with the whiten flag off loads (a zero variance is fine there).
  put_u32(&b, 12, b[12] & ~1u);
  fix_crc(&b);
  featx::Pca p;
  CHECK(featx::Pca::from_memory(b.data(), b.size(), "mem", &p).ok());
}

TEST_CASE("pca: random damage never crashes the loader") {
  // A cheap in-process fuzz: flips, cuts and size fields rewritten (with the
  // checksum fixed, so the checks behind it run too). ASan builds run it as well.
  const std::vector<uint8_t> good = model_bytes(true);
  std::mt19937 rng(123);
  size_t loaded = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<uint8_t> b = good;
    const int kind = iter % 4;
    if (kind == 0) {
      b.resize(rng() % (good.size() + 8), 0x55);
    } else {
      for (int f = 0; f < 1 + int(rng() % 4); ++f) b[rng() % b.size()] ^= uint8_t(1u << (rng() % 8));
      if (kind >= 2) {
        if (kind == 3) put_u64(&b, 16 + 8 * (rng() % 3), uint64_t(rng()) << (rng() % 40));
        fix_crc(&b);
      }
    }
    featx::Pca p;
    const featx::Status st = featx::Pca::from_memory(b.data(), b.size(), "fuzz", &p);
    if (st.ok()) {
      ++loaded;
      CHECK(p.dims() == 6);
      std::vector<float> x(6, 1.f), y(p.components());
      CHECK(p.transform(x.data(), 1, 6, y.data(), y.size()).ok());
    } else {
      CHECK(st.message().rfind("fuzz: ", 0) == 0);
      CHECK(p.empty());
    }
  }
  MESSAGE("damaged files that still loaded (bit flips in values that pass every check): " << loaded);
}
