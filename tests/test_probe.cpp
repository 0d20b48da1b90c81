// featx/probe.hpp: the nearest-mean and logistic probes on synthetic data
// (accuracy, optimality, determinism), the .fxp file round trip, and every
// kind of bad file refused in one line naming it.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "featx/probe.hpp"

namespace {

// Uniform in [0, 1) from mt19937's specified bit stream (the standard
// distributions differ between standard libraries).
double uniform(std::mt19937& rng) { return double(rng() >> 5) * (1.0 / 134217728.0); }

struct Data {
  size_t n = 0, d = 0, c = 0;
  std::vector<float> x;
  std::vector<int> y;
  std::vector<std::string> names;
};

// c well separated clusters of non-negative vectors (like ReLU6 features):
// each class lifts its own block of dimensions over shared noise.
Data separable(size_t c, size_t per_class, size_t d, uint32_t seed) {
  Data s;
  s.c = c;
  s.d = d;
  s.n = c * per_class;
  std::mt19937 rng(seed);
  for (size_t k = 0; k < c; ++k) s.names.push_back("class_" + std::to_string(k));
  for (size_t i = 0; i < s.n; ++i) {
    const size_t k = i % c;  // interleaved, so class order is not row order
    s.y.push_back(int(k));
    for (size_t j = 0; j < d; ++j) {
      double v = 0.5 * uniform(rng);
      if (j % c == k) v += 1.0 + 0.5 * uniform(rng);
      s.x.push_back(float(v));
    }
  }
  return s;
}

// The logistic objective's gradient written out plainly (not the library's
// code): normalise, logits, softmax, (p - onehot) x_hat / n + lambda W.
std::vector<double> plain_gradient(const featx::Probe& p, const Data& s, double lambda) {
  const size_t c = size_t(p.classes()), d = p.dims();
  std::vector<double> g(c * d + c, 0.0), xh(d), z(c);
  for (size_t i = 0; i < s.n; ++i) {
    p.normalize(&s.x[i * d], xh.data());
    double zmax = -1e300;
    for (size_t k = 0; k < c; ++k) {
      z[k] = p.bias()[k];
      for (size_t j = 0; j < d; ++j) z[k] += p.weights()[k * d + j] * xh[j];
      zmax = std::max(zmax, z[k]);
    }
    double sum = 0;
    for (size_t k = 0; k < c; ++k) sum += std::exp(z[k] - zmax);
    for (size_t k = 0; k < c; ++k) {
      const double r = std::exp(z[k] - zmax) / sum - (int(k) == s.y[i] ? 1.0 : 0.0);
      for (size_t j = 0; j < d; ++j) g[k * d + j] += r * xh[j] / double(s.n);
      g[c * d + k] += r / double(s.n);
    }
  }
  for (size_t k = 0; k < c * d; ++k) g[k] += lambda * p.weights()[k];
  return g;
}

double norm2(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

featx::Probe trained(const Data& s, featx::ProbeKind kind, featx::ProbeTrainReport* rep = nullptr) {
  featx::ProbeTrainOptions opt;
  opt.kind = kind;
  featx::Probe p;
  featx::Status st = featx::Probe::train(s.x.data(), s.n, s.d, s.y.data(), s.names, opt, &p, rep);
  REQUIRE_MESSAGE(st.ok(), st.message());
  return p;
}

std::vector<uint8_t> bytes_of(const featx::Probe& p) {
  std::vector<uint8_t> b;
  p.serialize(&b);
  return b;
}

void fix_crc(std::vector<uint8_t>* b) {
  const uint32_t crc = featx::crc32c(b->data(), b->size() - 4);
  for (int i = 0; i < 4; ++i) (*b)[b->size() - 4 + size_t(i)] = uint8_t(crc >> (8 * i));
}

void put32(std::vector<uint8_t>* b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*b)[at + size_t(i)] = uint8_t(v >> (8 * i));
}
void put64(std::vector<uint8_t>* b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) (*b)[at + size_t(i)] = uint8_t(v >> (8 * i));
}
void putf64(std::vector<uint8_t>* b, size_t at, double v) {
  uint64_t u;
  std::memcpy(&u, &v, 8);
  put64(b, at, u);
}

// A refusal: not ok, one line, naming the file, and the probe left empty.
void check_refused(const std::vector<uint8_t>& b, const std::string& name, const char* expect = nullptr) {
  featx::Probe p;
  featx::Status st = featx::Probe::from_memory(b.data(), b.size(), name, &p);
  REQUIRE_FALSE(st.ok());
  const std::string m = st.message();
  CHECK_MESSAGE(m.rfind(name + ": ", 0) == 0, m);
  CHECK_MESSAGE(m.find('\n') == std::string::npos, m);
  CHECK(p.empty());
  if (expect) CHECK_MESSAGE(m.find(expect) != std::string::npos, m << " (expected '" << expect << "')");
}

std::string temp_path(const std::string& leaf) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir && *dir ? dir : "/tmp") + "/featx_test_probe_" + std::to_string(::getpid()) + "_" + leaf;
}

}  // namespace

TEST_CASE("probe: separable data trains to 100% with both kinds") {
  const Data s = separable(4, 15, 24, 7);
  for (featx::ProbeKind kind : {featx::ProbeKind::mean, featx::ProbeKind::logistic}) {
    featx::ProbeTrainReport rep;
    const featx::Probe p = trained(s, kind, &rep);
    CAPTURE(featx::probe_kind_name(kind));
    CHECK(rep.samples == s.n);
    CHECK(rep.correct == s.n);
    CHECK(rep.accuracy() == 1.0);
    CHECK(rep.converged);
    std::vector<float> prob(s.n * s.c);
    REQUIRE(p.predict(s.x.data(), s.n, s.d, prob.data(), prob.size()).ok());
    for (size_t i = 0; i < s.n; ++i) {
      double sum = 0;
      for (size_t k = 0; k < s.c; ++k) sum += prob[i * s.c + k];
      CHECK(sum == doctest::Approx(1.0).epsilon(1e-6));
      CHECK(featx::Probe::top_k(&prob[i * s.c], int(s.c), 1)[0] == s.y[i]);
    }
    if (kind == featx::ProbeKind::mean) {
      CHECK(rep.iterations == 0);
      for (size_t k = 0; k < s.c; ++k) {  // imprinted rows are unit length
        double n2 = 0;
        for (size_t j = 0; j < s.d; ++j) n2 += p.weights()[k * s.d + j] * p.weights()[k * s.d + j];
        CHECK(n2 == doctest::Approx(1.0).epsilon(1e-12));
      }
    } else {
      CHECK(rep.iterations > 0);
      CHECK(rep.iterations < 1000);
    }
  }
}

TEST_CASE("probe: the logistic gradient at the optimum is ~0") {
  const Data s = separable(3, 20, 16, 11);
  featx::ProbeTrainReport rep;
  const featx::Probe p = trained(s, featx::ProbeKind::logistic, &rep);
  const double lambda = featx::ProbeTrainOptions().l2;
  CHECK(p.lambda() == lambda);
  CHECK(rep.converged);
  CHECK(rep.gradient_norm <= featx::ProbeTrainOptions().gradient_tolerance);
  // Recomputed independently from the stored weights (the bias was
  // re-centred after training, which the softmax ignores).
  const std::vector<double> g = plain_gradient(p, s, lambda);
  MESSAGE("gradient norm: reported " << rep.gradient_norm << ", recomputed " << norm2(g));
  CHECK(norm2(g) <= 1e-7);
  double f = 0;
  std::vector<double> g2;
  REQUIRE(p.objective(s.x.data(), s.n, s.d, s.y.data(), lambda, &f, &g2).ok());
  CHECK(f == doctest::Approx(rep.loss).epsilon(1e-12));
  CHECK(norm2(g2) <= 1e-7);
  // And the weights are not the trivial ones: the data term really fits.
  CHECK(norm2(p.weights()) > 1.0);
  double bsum = 0;
  for (double b : p.bias()) bsum += b;
  CHECK(std::fabs(bsum) < 1e-12);
}

TEST_CASE("probe: training is deterministic (bit-identical files, any thread count)") {
  const Data s = separable(5, 12, 40, 3);
  for (featx::ProbeKind kind : {featx::ProbeKind::mean, featx::ProbeKind::logistic}) {
    const std::vector<uint8_t> a = bytes_of(trained(s, kind));
#ifdef _OPENMP
    const int before = omp_get_max_threads();
    omp_set_num_threads(before > 1 ? 1 : 2);
#endif
    const std::vector<uint8_t> b = bytes_of(trained(s, kind));
#ifdef _OPENMP
    omp_set_num_threads(before);
#endif
    CHECK(a == b);
  }
}

TEST_CASE("probe: string labels give sorted classes whatever the row order") {
  const Data s = separable(3, 10, 12, 5);
  std::vector<std::string> labels;
  const char* names[] = {"zebra", "apple", "mango"};
  for (int y : s.y) labels.push_back(names[y]);
  featx::Probe p;
  REQUIRE(featx::Probe::train(s.x.data(), s.n, s.d, labels, featx::ProbeTrainOptions(), &p).ok());
  CHECK(p.class_names() == std::vector<std::string>{"apple", "mango", "zebra"});
  std::vector<float> prob(s.n * 3);
  REQUIRE(p.predict(s.x.data(), s.n, s.d, prob.data(), prob.size()).ok());
  for (size_t i = 0; i < s.n; ++i)
    CHECK(p.class_names()[size_t(featx::Probe::top_k(&prob[i * 3], 3, 1)[0])] == labels[i]);
}

TEST_CASE("probe: save / load round trip") {
  const Data s = separable(4, 8, 20, 9);
  for (featx::ProbeKind kind : {featx::ProbeKind::mean, featx::ProbeKind::logistic}) {
    const featx::Probe p = trained(s, kind);
    const std::string path = temp_path("roundtrip.fxp");
    REQUIRE(p.save(path).ok());
    featx::Probe q;
    featx::Status st = featx::Probe::load(path, &q);
    std::remove(path.c_str());
    REQUIRE_MESSAGE(st.ok(), st.message());
    CHECK(q.kind() == p.kind());
    CHECK(q.classes() == p.classes());
    CHECK(q.dims() == p.dims());
    CHECK(q.samples() == s.n);
    CHECK(q.lambda() == p.lambda());
    CHECK(q.scale() == p.scale());
    CHECK(q.logit_scale() == p.logit_scale());
    CHECK(q.class_names() == p.class_names());
    CHECK(q.mean() == p.mean());
    CHECK(q.weights() == p.weights());
    CHECK(q.bias() == p.bias());
    CHECK(bytes_of(q) == bytes_of(p));
    std::vector<float> a(s.n * s.c), b(s.n * s.c);
    REQUIRE(p.predict(s.x.data(), s.n, s.d, a.data(), a.size()).ok());
    REQUIRE(q.predict(s.x.data(), s.n, s.d, b.data(), b.size()).ok());
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("probe: bad files are refused in one line naming the file") {
  const Data s = separable(3, 6, 10, 13);
  const std::vector<uint8_t> good = bytes_of(trained(s, featx::ProbeKind::logistic));
  const std::string name = "bad.fxp";
  const size_t names_at = featx::Probe::kHeaderBytes;
  size_t data_at = names_at;
  for (const std::string& n : s.names) data_at += 4 + n.size();
  const size_t weights_at = data_at + 8 * s.d, bias_at = weights_at + 8 * s.c * s.d;
  {
    featx::Probe p;
    REQUIRE(featx::Probe::from_memory(good.data(), good.size(), name, &p).ok());
  }
  SUBCASE("empty and every truncation") {
    for (size_t len = 0; len < good.size(); ++len) {
      std::vector<uint8_t> b(good.begin(), good.begin() + long(len));
      check_refused(b, name);
    }
    check_refused({}, name, "empty");
    check_refused(std::vector<uint8_t>(good.begin(), good.end() - 1), name, "truncated");
  }
  SUBCASE("trailing bytes") {
    std::vector<uint8_t> b = good;
    b.push_back(0);
    check_refused(b, name, "trailing");
  }
  SUBCASE("wrong magic, version, kind, normalisation") {
    std::vector<uint8_t> b = good;
    b[0] = 'X';
    check_refused(b, name, "not a featx probe");
    check_refused(std::vector<uint8_t>{'h', 'i'}, name, "not a featx probe");
    b = good;
    put32(&b, 8, 2);
    check_refused(b, name, "version 2");
    b = good;
    put32(&b, 12, 3);
    check_refused(b, name, "kind 3");
    b = good;
    put32(&b, 16, 0);
    check_refused(b, name, "normalisation");
  }
  SUBCASE("absurd sizes") {
    for (uint32_t c : {0u, 1u, 65537u, 0xFFFFFFFFu}) {
      std::vector<uint8_t> b = good;
      put32(&b, 20, c);
      check_refused(b, name, "classes");
    }
    for (uint64_t d : {uint64_t(0), (uint64_t(1) << 20) + 1, uint64_t(1) << 40, ~uint64_t(0)}) {
      std::vector<uint8_t> b = good;
      put64(&b, 24, d);
      check_refused(b, name, "dims");
    }
    std::vector<uint8_t> b = good;
    put32(&b, 20, 65536);
    put64(&b, 24, uint64_t(1) << 20);
    check_refused(b, name, "absurdly many");
    b = good;
    put64(&b, 24, s.d + 1);  // plausible, but the file is too short for it
    check_refused(b, name, "truncated");
    // Near 2^32 and 2^64 (docs/RELIABILITY.md, "Size arithmetic"): 65536
    // classes x 65536 dims is 2^32 weights, 0 in a 32-bit size_t; 2^32 + d
    // dims is d when truncated to 32 bits; the largest valid sizes need an
    // exact byte count, not a wrapped one.
    b = good;
    put32(&b, 20, 65536);
    put64(&b, 24, uint64_t(1) << 16);
    check_refused(b, name, "65536 classes x 65536 dims is absurdly many weights");
    for (uint64_t d : {(uint64_t(1) << 32) + s.d, (uint64_t(1) << 63) + s.d, UINT64_MAX - 2}) {
      b = good;
      put64(&b, 24, d);
      check_refused(b, name, (std::to_string(d) + " dims").c_str());
    }
    b = good;
    const uint64_t d = uint64_t(1) << 20, numbers = d + uint64_t(s.c) * d + s.c;
    put64(&b, 24, d);
    check_refused(b, name, ("need " + std::to_string(data_at + 8 * numbers + 4)).c_str());
    for (uint32_t len : {0u, 1025u, 0xFFFFFFFFu, 200u}) {
      b = good;
      put32(&b, names_at, len);
      check_refused(b, name);
    }
  }
  SUBCASE("checksum") {
    std::vector<uint8_t> b = good;
    b[weights_at + 3] ^= 0x10;
    check_refused(b, name, "checksum");
  }
  SUBCASE("non-finite values (checksum made to match)") {
    const double bad_values[] = {std::nan(""), INFINITY, -INFINITY};
    for (double v : bad_values) {
      for (size_t at : {data_at, weights_at + 8 * 5, bias_at + 8}) {
        std::vector<uint8_t> b = good;
        putf64(&b, at, v);
        fix_crc(&b);
        check_refused(b, name, "non-finite");
      }
      for (size_t at : {size_t(40), size_t(48), size_t(56)}) {  // lambda, scale, logit scale
        std::vector<uint8_t> b = good;
        putf64(&b, at, v);
        fix_crc(&b);
        check_refused(b, name);
      }
    }
    for (size_t at : {size_t(48), size_t(56)}) {  // scales must be > 0
      std::vector<uint8_t> b = good;
      putf64(&b, at, 0.0);
      fix_crc(&b);
      check_refused(b, name, "scale");
    }
  }
  SUBCASE("empty, duplicate and unprintable class names") {
    // class_0 / class_1: same length, so the layout stays valid.
    std::vector<uint8_t> b = good;
    b[names_at + 4 + 7 + 4 + 6] = '0';  // "class_1" -> "class_0"
    fix_crc(&b);
    check_refused(b, name, "duplicate class name 'class_0'");
    b = good;
    b[names_at + 4 + 2] = '\t';
    fix_crc(&b);
    check_refused(b, name, "control character");
    // An empty name: a new file with a zero length.
    b.assign(good.begin(), good.begin() + long(names_at));
    featx::probe_detail::put_u32(&b, 0);
    b.insert(b.end(), good.begin() + long(names_at + 4 + 7), good.end());
    fix_crc(&b);
    check_refused(b, name, "empty name");
  }
  SUBCASE("random corruption: a probe or one line, never a crash") {
    std::mt19937 rng(2024);
    int loaded = 0;
    for (int round = 0; round < 3000; ++round) {
      std::vector<uint8_t> b = good;
      const int flips = 1 + int(rng() % 4);
      for (int f = 0; f < flips; ++f) {
        const size_t at = rng() % (round % 3 == 0 ? std::min<size_t>(b.size(), 96) : b.size());
        b[at] = uint8_t(rng());
      }
      if (round % 5 == 0) b.resize(rng() % (b.size() + 1));
      if (round % 2 == 0 && b.size() >= 4) fix_crc(&b);  // let the damage past the checksum
      featx::Probe p;
      featx::Status st = featx::Probe::from_memory(b.data(), b.size(), name, &p);
      if (st.ok()) {
        ++loaded;
        CHECK(!p.empty());
      } else {
        const std::string m = st.message();
        CHECK_MESSAGE(m.rfind(name + ": ", 0) == 0, m);
        CHECK_MESSAGE(m.find('\n') == std::string::npos, m);
      }
    }
    MESSAGE(loaded << " of 3000 corrupted files still parsed (values changed, structure intact)");
  }
  SUBCASE("files on disk: missing, empty, a directory, truncated") {
    featx::Probe p;
    featx::Status st = featx::Probe::load("/nonexistent/dir/x.fxp", &p);
    REQUIRE_FALSE(st.ok());
    CHECK(st.message().rfind("/nonexistent/dir/x.fxp: ", 0) == 0);
    st = featx::Probe::load("/tmp", &p);
    REQUIRE_FALSE(st.ok());
    CHECK(st.message().rfind("/tmp: ", 0) == 0);
    const std::string path = temp_path("truncated.fxp");
    for (size_t len : {size_t(0), size_t(30), good.size() - 9}) {
      std::FILE* f = std::fopen(path.c_str(), "wb");
      REQUIRE(f);
      if (len) std::fwrite(good.data(), 1, len, f);
      std::fclose(f);
      st = featx::Probe::load(path, &p);
      REQUIRE_FALSE(st.ok());
      CHECK_MESSAGE(st.message().rfind(path + ": ", 0) == 0, st.message());
      CHECK(st.message().find('\n') == std::string::npos);
    }
    std::remove(path.c_str());
  }
}

TEST_CASE("probe: training and prediction refuse bad input") {
  const Data s = separable(3, 4, 8, 1);
  featx::ProbeTrainOptions opt;
  featx::Probe p;
  std::vector<std::string> one = {"only"};
  std::vector<int> zeros(s.n, 0);
  CHECK_FALSE(featx::Probe::train(s.x.data(), s.n, s.d, zeros.data(), one, opt, &p).ok());
  std::vector<std::string> dup = {"a", "b", "a"};
  featx::Status st = featx::Probe::train(s.x.data(), s.n, s.d, s.y.data(), dup, opt, &p);
  CHECK(st.message().find("duplicate") != std::string::npos);
  std::vector<std::string> empty_name = {"a", "", "c"};
  CHECK_FALSE(featx::Probe::train(s.x.data(), s.n, s.d, s.y.data(), empty_name, opt, &p).ok());
  std::vector<int> out_of_range = s.y;
  out_of_range[2] = 3;
  CHECK_FALSE(featx::Probe::train(s.x.data(), s.n, s.d, out_of_range.data(), s.names, opt, &p).ok());
  std::vector<float> nan_x = s.x;
  nan_x[5] = std::nanf("");
  st = featx::Probe::train(nan_x.data(), s.n, s.d, s.y.data(), s.names, opt, &p);
  CHECK(st.message().find("non-finite") != std::string::npos);
  std::vector<int> missing_class(s.n, 0);
  missing_class[1] = 1;
  st = featx::Probe::train(s.x.data(), s.n, s.d, missing_class.data(), s.names, opt, &p);
  CHECK(st.message().find("has no vectors") != std::string::npos);
  opt.l2 = 0;
  CHECK_FALSE(featx::Probe::train(s.x.data(), s.n, s.d, s.y.data(), s.names, opt, &p).ok());
  CHECK(p.empty());

  const featx::Probe good = trained(s, featx::ProbeKind::logistic);
  std::vector<float> prob(s.c * s.n);
  CHECK_FALSE(good.predict(s.x.data(), 1, s.d + 1, prob.data(), prob.size()).ok());  // dims
  CHECK_FALSE(good.predict(s.x.data(), s.n, s.d, prob.data(), s.c).ok());            // room
  CHECK_FALSE(good.predict(nan_x.data(), 2, s.d, prob.data(), prob.size()).ok());    // non-finite
  CHECK_FALSE(featx::Probe().predict(s.x.data(), 1, s.d, prob.data(), prob.size()).ok());
  // A zero vector has no direction: it stays zero and still gets probabilities.
  std::vector<float> zero(s.d, 0.0f);
  REQUIRE(good.predict(zero.data(), 1, s.d, prob.data(), prob.size()).ok());
  double sum = 0;
  for (size_t k = 0; k < s.c; ++k) sum += prob[k];
  CHECK(sum == doctest::Approx(1.0).epsilon(1e-6));
}

TEST_CASE("probe: top_k order and ties") {
  const float p[] = {0.1f, 0.4f, 0.1f, 0.4f};
  CHECK(featx::Probe::top_k(p, 4, 3) == std::vector<int>{1, 3, 0});
  CHECK(featx::Probe::top_k(p, 4, 10) == std::vector<int>{1, 3, 0, 2});
  CHECK(featx::Probe::top_k(p, 4, 0).empty());
}
