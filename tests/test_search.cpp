// featx/search.hpp: the dot-product kernels of every ISA against the
// scalar reference, exact search against a brute force (same indices,
// ties broken by index), results independent of threads, tiles and query
// batches, the index file's round trip, and a one-line error naming the
// file for every kind of bad file (plus random corruptions: no crash).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "featx/search.hpp"
#include "test_support.hpp"

namespace {

using featx::Neighbor;

std::vector<featx::Isa> all_isas() {
  std::vector<featx::Isa> out;
  for (featx::Isa isa : {featx::Isa::scalar, featx::Isa::avx2, featx::Isa::avx512, featx::Isa::neon})
    if (featx::isa_supported(isa)) out.push_back(isa);
  return out;
}

std::vector<float> gaussian(std::mt19937& rng, size_t n) {
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = g(rng);
  return v;
}

std::vector<std::string> numbered(size_t n, const std::string& prefix) {
  std::vector<std::string> names;
  for (size_t i = 0; i < n; ++i) names.push_back(prefix + std::to_string(i));
  return names;
}

// The best k of every row, by the same kernel one pair at a time and a full sort.
std::vector<Neighbor> brute_force(const featx::VectorIndex& index, const float* query, size_t k, featx::Isa isa) {
  std::vector<float> q(index.stride());
  featx::search_detail::normalize_row(query, index.dims(), q.data(), index.stride());
  const featx::DotKernel kernel = featx::dot_kernel(isa);
  std::vector<Neighbor> all(index.size());
  for (size_t r = 0; r < index.size(); ++r) {
    all[r].index = r;
    kernel.tile(q.data(), 1, index.row(r), 1, index.stride(), &all[r].score, 1);
  }
  std::sort(all.begin(), all.end(), featx::neighbor_before);
  all.resize(std::min(k, all.size()));
  return all;
}

bool same(const featx::SearchResults& a, const featx::SearchResults& b) {
  if (a.k != b.k || a.queries != b.queries || a.neighbors.size() != b.neighbors.size()) return false;
  for (size_t i = 0; i < a.neighbors.size(); ++i)
    if (a.neighbors[i].index != b.neighbors[i].index ||
        std::memcmp(&a.neighbors[i].score, &b.neighbors[i].score, sizeof(float)) != 0)
      return false;
  return true;
}

std::vector<uint8_t> index_bytes(const std::vector<float>& v, size_t n, size_t dims, const std::vector<std::string>& names) {
  featx::VectorIndex ix;
  REQUIRE(featx::VectorIndex::build(v.data(), n, dims, 0, names, "<mem>", &ix).ok());
  const std::string path = test_support::temp_dir() + "/bytes.fxi";
  REQUIRE(ix.save(path).ok());
  return test_support::read_bytes(path);
}

void put32(std::vector<uint8_t>& b, size_t at, uint32_t v) { featx::search_detail::put_u32(b.data() + at, v); }
void put64(std::vector<uint8_t>& b, size_t at, uint64_t v) { featx::search_detail::put_u64(b.data() + at, v); }

// Opens `bytes` as a file: must fail with one line "PATH: ..." holding `phrase`.
void expect_bad(const std::vector<uint8_t>& bytes, const std::string& label, const std::string& phrase) {
  const std::string path = test_support::temp_dir() + "/bad_" + label + ".fxi";
  test_support::write_bytes(path, bytes);
  featx::VectorIndex ix;
  const featx::Status st = featx::VectorIndex::open(path, &ix);
  CAPTURE(label);
  CAPTURE(st.message());
  REQUIRE_FALSE(st.ok());
  CHECK(st.message().rfind(path + ": ", 0) == 0);
  CHECK(st.message().find('\n') == std::string::npos);
  CHECK(st.message().find(phrase) != std::string::npos);
  // The in-memory entry point says the same of the same bytes.
  const featx::Status mem = featx::VectorIndex::from_memory(bytes.data(), bytes.size(), path, &ix);
  CHECK(mem.message() == st.message());
}

}  // namespace

TEST_CASE("each ISA's dot kernel matches the reference on every tile shape") {
  std::mt19937 rng(7);
  for (featx::Isa isa : all_isas()) {
    const featx::DotKernel k = featx::dot_kernel(isa);
    REQUIRE(k.isa == isa);
    CAPTURE(featx::isa_name(isa));
    for (int trial = 0; trial < 40; ++trial) {
      const size_t nq = 1 + rng() % 13, nr = 1 + rng() % 29;
      const size_t stride = featx::kDotStrideAlign * (1 + rng() % (trial < 8 ? 80 : 6));
      const std::vector<float> q = gaussian(rng, nq * stride), r = gaussian(rng, nr * stride);
      std::vector<float> got(nq * nr), ref(nq * nr);
      k.tile(q.data(), nq, r.data(), nr, stride, got.data(), nr);
      featx::dot_tile_naive(q.data(), nq, r.data(), nr, stride, ref.data(), nr);
      for (size_t i = 0; i < nq; ++i)
        for (size_t j = 0; j < nr; ++j) {
          double mag = 0.0;  // sum |q_d r_d|: the scale of the rounding error
          for (size_t d = 0; d < stride; ++d) mag += std::fabs(double(q[i * stride + d]) * r[j * stride + d]);
          const double err = std::fabs(double(got[i * nr + j]) - double(ref[i * nr + j]));
          CHECK(err <= mag * double(stride) * std::ldexp(1.0, -24) + 1e-30);
          // A pair alone gives the bits it got inside the tile (tiling never changes a score).
          float alone = 0.0f;
          k.tile(q.data() + i * stride, 1, r.data() + j * stride, 1, stride, &alone, 1);
          CHECK(std::memcmp(&alone, &got[i * nr + j], sizeof(float)) == 0);
          if (isa == featx::Isa::scalar) {
            const float exact = featx::dot_ref(q.data() + i * stride, r.data() + j * stride, stride);
            CHECK(std::memcmp(&exact, &got[i * nr + j], sizeof(float)) == 0);
          }
        }
    }
  }
}

TEST_CASE("exact search equals a brute force, ties broken by index") {
  std::mt19937 rng(11);
  for (size_t dims : {size_t(1280), size_t(37)}) {
    CAPTURE(dims);
    const size_t n = dims == 1280 ? 1500 : 4000, nq = 23;
    std::vector<float> v = gaussian(rng, n * dims);
    // Exact ties: rows 100..149 repeat rows 0..49 (scaled: the same after normalising),
    // row 7 is zero.
    for (size_t r = 0; r < 50; ++r)
      for (size_t d = 0; d < dims; ++d) v[(100 + r) * dims + d] = 4.0f * v[r * dims + d];
    std::fill(v.begin() + 7 * std::ptrdiff_t(dims), v.begin() + 8 * std::ptrdiff_t(dims), 0.0f);
    featx::VectorIndex index;
    REQUIRE(featx::VectorIndex::build(v.data(), n, dims, 0, numbered(n, "v"), "<random>", &index).ok());
    std::vector<float> queries = gaussian(rng, nq * dims);
    std::copy(v.begin() + 3 * std::ptrdiff_t(dims), v.begin() + 4 * std::ptrdiff_t(dims), queries.begin());  // = row 3 and 103
    std::fill(queries.begin() + std::ptrdiff_t(dims), queries.begin() + 2 * std::ptrdiff_t(dims), 0.0f);  // zero query
    for (featx::Isa isa : all_isas()) {
      CAPTURE(featx::isa_name(isa));
      for (size_t k : {size_t(1), size_t(10), size_t(100), n + 5}) {
        CAPTURE(k);
        featx::SearchOptions so;
        so.k = k;
        so.isa = isa;
        featx::SearchResults res;
        REQUIRE(index.search(queries.data(), nq, dims, so, &res).ok());
        REQUIRE(res.k == std::min(k, n));
        for (size_t q = 0; q < nq; ++q) {
          const std::vector<Neighbor> ref = brute_force(index, queries.data() + q * dims, k, isa);
          for (size_t i = 0; i < res.k; ++i) {
            CHECK(res.of(q)[i].index == ref[i].index);
            CHECK(std::memcmp(&res.of(q)[i].score, &ref[i].score, sizeof(float)) == 0);
          }
        }
        // Query 0 is row 3: it and its copy, row 103, tie at the top: 3 first.
        CHECK(res.of(0)[0].index == 3);
        if (res.k > 1) {
          CHECK(res.of(0)[1].index == 103);
          CHECK(res.of(0)[0].score == res.of(0)[1].score);
        }
        CHECK(std::fabs(res.of(0)[0].score - 1.0f) < 1e-5f);
        // The zero query scores 0 everywhere: rows 0, 1, 2, ... in order.
        for (size_t i = 0; i < res.k; ++i) {
          CHECK(res.of(1)[i].score == 0.0f);
          CHECK(res.of(1)[i].index == i);
        }
      }
    }
    // Scores are cosine similarities: against float64 numpy-style arithmetic.
    featx::SearchResults res;
    featx::SearchOptions so;
    so.k = 5;
    REQUIRE(index.search(queries.data(), nq, dims, so, &res).ok());
    for (size_t q = 2; q < nq; ++q)
      for (size_t i = 0; i < res.k; ++i) {
        const float* a = queries.data() + q * dims;
        const float* b = v.data() + res.of(q)[i].index * dims;
        double ab = 0, aa = 0, bb = 0;
        for (size_t d = 0; d < dims; ++d) {
          ab += double(a[d]) * b[d];
          aa += double(a[d]) * a[d];
          bb += double(b[d]) * b[d];
        }
        CHECK(std::fabs(res.of(q)[i].score - ab / std::sqrt(aa * bb)) < 1e-5);
      }
  }
}

TEST_CASE("results do not depend on threads, tiles or query batches") {
  std::mt19937 rng(5);
  const size_t n = 3001, dims = 1280, nq = 50;
  const std::vector<float> v = gaussian(rng, n * dims), queries = gaussian(rng, nq * dims);
  featx::VectorIndex index;
  REQUIRE(featx::VectorIndex::build(v.data(), n, dims, 0, {}, "<random>", &index).ok());
  for (featx::Isa isa : all_isas()) {
    CAPTURE(featx::isa_name(isa));
    featx::SearchOptions base;
    base.k = 17;
    base.isa = isa;
    base.threads = 1;
    featx::SearchResults ref;
    REQUIRE(index.search(queries.data(), nq, dims, base, &ref).ok());
    for (int threads : {2, 3, 4})
      for (size_t tile_bytes : {size_t(1), size_t(100) << 10, size_t(256) << 10, size_t(64) << 20}) {
        featx::SearchOptions so = base;
        so.threads = threads;
        so.tile_bytes = tile_bytes;
        featx::SearchResults res;
        REQUIRE(index.search(queries.data(), nq, dims, so, &res).ok());
        CAPTURE(threads);
        CAPTURE(tile_bytes);
        CHECK(same(res, ref));
      }
    // One query at a time gives the rows of the batch.
    for (size_t q = 0; q < nq; q += 7) {
      featx::SearchOptions so = base;
      so.threads = 2;
      featx::SearchResults one;
      REQUIRE(index.search(queries.data() + q * dims, 1, dims, so, &one).ok());
      for (size_t i = 0; i < one.k; ++i) {
        CHECK(one.of(0)[i].index == ref.of(q)[i].index);
        CHECK(one.of(0)[i].score == ref.of(q)[i].score);
      }
    }
  }
}

TEST_CASE("an index survives save and open; the streaming writer makes the same file") {
  std::mt19937 rng(3);
  const size_t n = 257, dims = 100;
  const std::vector<float> v = gaussian(rng, n * dims);
  std::vector<std::string> names = numbered(n, "photos/img_");
  names[5] = "name with spaces, tabs\tand ünïcode";
  names[6] = "";
  featx::VectorIndex built;
  REQUIRE(featx::VectorIndex::build(v.data(), n, dims, 0, names, "<mem>", &built).ok());
  const std::string a = test_support::temp_dir() + "/round.fxi", b = test_support::temp_dir() + "/stream.fxi";
  REQUIRE(built.save(a).ok());
  {
    featx::IndexWriter w;
    REQUIRE(w.open(b, dims).ok());
    REQUIRE(w.add(v.data(), 100, 0, names.data(), "src").ok());
    REQUIRE(w.add(v.data() + 100 * dims, n - 100, dims, names.data() + 100, "src", 100).ok());
    REQUIRE(w.finish().ok());
  }
  CHECK(test_support::read_bytes(a) == test_support::read_bytes(b));
  CHECK(!test_support::exists(b + ".part"));
  featx::VectorIndex loaded;
  const featx::Status st = featx::VectorIndex::open(a, &loaded);
  REQUIRE_MESSAGE(st.ok(), st.message());
  CHECK(loaded.size() == n);
  CHECK(loaded.dims() == dims);
  CHECK(loaded.stride() == 112);
  CHECK(reinterpret_cast<uintptr_t>(loaded.rows()) % 64 == 0);
  CHECK(loaded.file_bytes() == 64 + n * 112 * 4 + [&] { size_t s = 0; for (auto& x : names) s += x.size() + 1; return s; }());
  for (size_t i = 0; i < n; ++i) {
    CHECK(loaded.name(i) == names[i]);
    CHECK(std::memcmp(loaded.row(i), built.row(i), loaded.stride() * sizeof(float)) == 0);
    double norm = 0;
    for (size_t d = 0; d < dims; ++d) norm += double(loaded.row(i)[d]) * loaded.row(i)[d];
    CHECK(std::fabs(norm - 1.0) < 1e-6);
  }
  featx::SearchResults r1, r2;
  featx::SearchOptions so;
  REQUIRE(built.search(v.data(), 10, dims, so, &r1).ok());
  REQUIRE(loaded.search(v.data(), 10, dims, so, &r2).ok());
  CHECK(same(r1, r2));
  for (size_t q = 0; q < 10; ++q) CHECK(r2.of(q)[0].index == q);  // each row finds itself first
  // An empty index opens, and a search of it finds nothing.
  featx::VectorIndex empty;
  REQUIRE(featx::VectorIndex::build(nullptr, 0, dims, 0, {}, "<empty>", &empty).ok());
  featx::SearchResults none;
  REQUIRE(empty.search(v.data(), 2, dims, so, &none).ok());
  CHECK(none.k == 0);
}

TEST_CASE("bad index files: one line naming the file and the problem") {
  std::mt19937 rng(13);
  const size_t n = 6, dims = 37, stride = 48;
  const std::vector<float> v = gaussian(rng, n * dims);
  const std::vector<uint8_t> good = index_bytes(v, n, dims, numbered(n, "n"));
  const size_t names_at = 64 + n * stride * 4;
  REQUIRE(good.size() == names_at + 6 * 3);
  auto with = [&](auto change) {
    std::vector<uint8_t> b = good;
    change(b);
    return b;
  };
  auto set_float = [&](std::vector<uint8_t>& b, size_t row, size_t col, float x) {
    std::memcpy(b.data() + 64 + (row * stride + col) * 4, &x, 4);
  };
  expect_bad({}, "empty", "empty file");
  expect_bad(std::vector<uint8_t>(good.begin(), good.begin() + 30), "short_header", "truncated header");
  expect_bad(std::vector<uint8_t>(good.begin(), good.begin() + 5), "tiny", "truncated header");
  expect_bad(with([](auto& b) { b[0] = 'X'; }), "magic", "bad magic");
  expect_bad(std::vector<uint8_t>{0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0}, "npy", "bad magic");
  expect_bad(with([](auto& b) { put32(b, 8, 2); }), "version", "version 2 is not supported");
  expect_bad(with([](auto& b) { put32(b, 12, 128); }), "header_size", "header size 128");
  expect_bad(with([](auto& b) { put32(b, 16, 0); }), "dims0", "absurd dimension count 0");
  expect_bad(with([](auto& b) { put32(b, 16, 1u << 30); }), "dims_huge", "absurd dimension count");
  expect_bad(with([](auto& b) { put32(b, 20, 37); }), "stride", "row stride 37");
  expect_bad(with([](auto& b) { put32(b, 56, 0); }), "flags", "unknown flags");
  expect_bad(with([](auto& b) { put32(b, 60, 1); }), "reserved", "reserved header field");
  expect_bad(with([](auto& b) { put64(b, 32, 128); }), "vectors_at", "vectors at offset 128");
  expect_bad(with([](auto& b) { put64(b, 24, uint64_t(1) << 50); }), "count_huge", "absurd vector count");
  expect_bad(with([](auto& b) { put64(b, 24, ~uint64_t(0)); }), "count_max", "absurd vector count");
  expect_bad(with([](auto& b) { put64(b, 24, 1000); }), "count_big", "truncated vectors");
  expect_bad(std::vector<uint8_t>(good.begin(), good.begin() + 64 + 3 * stride * 4 + 10), "cut_rows",
             "truncated vectors");
  expect_bad(with([](auto& b) { put64(b, 40, 64); }), "names_at", "names at offset 64");
  expect_bad(std::vector<uint8_t>(good.begin(), good.end() - 3), "cut_names", "truncated names");
  expect_bad(with([](auto& b) { b.push_back('x'); }), "trailing", "1 unexpected bytes after the names");
  expect_bad(with([&](auto& b) { b[names_at + 2] = 'x'; }), "names_count", "holds 5 complete names for 6");
  expect_bad(with([&](auto& b) {
               b[names_at + 1] = '\n';
               b[names_at + 4] = '\n';
             }),
             "names_many", "more names than");
  expect_bad(with([&](auto& b) { b[names_at] = '\0'; }), "names_nul", "NUL byte");
  expect_bad(with([&](auto& b) { set_float(b, 2, 5, std::nanf("")); }), "nan", "row 2, dimension 5: non-finite");
  expect_bad(with([&](auto& b) { set_float(b, 4, 0, -INFINITY); }), "inf", "row 4, dimension 0: non-finite");
  expect_bad(with([&](auto& b) { set_float(b, 1, 40, 0.5f); }), "padding", "row 1: padding after dimension 37");
  expect_bad(with([&](auto& b) { set_float(b, 3, 1, 5.0f); }), "norm", "row 3: norm");
  expect_bad(with([&](auto& b) { set_float(b, 5, 1, 3e38f); }), "norm_overflow", "row 5: norm");
  featx::VectorIndex ix;
  const std::string missing_path = test_support::temp_dir() + "/missing.fxi";
  const featx::Status missing = featx::VectorIndex::open(missing_path, &ix);
  CHECK(missing.code() == featx::StatusCode::not_found);
  CHECK(missing.message().rfind(missing_path + ": ", 0) == 0);
  const featx::Status dir = featx::VectorIndex::open(test_support::temp_dir(), &ix);
  CHECK_FALSE(dir.ok());
  CHECK(dir.message().rfind(test_support::temp_dir() + ": ", 0) == 0);
}

TEST_CASE("random corruptions of an index file never crash and always name it") {
  std::mt19937 rng(17);
  const size_t n = 9, dims = 20;
  const std::vector<uint8_t> good = index_bytes(gaussian(rng, n * dims), n, dims, numbered(n, "row"));
  size_t opened = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<uint8_t> b = good;
    const int mode = trial % 3;
    if (mode == 0) {
      b.resize(rng() % (good.size() + 1));
    } else {
      for (int flips = 1 + int(rng() % 4); flips > 0; --flips) {
        // Mostly the header and names, where parsing decisions live.
        const size_t at = rng() % 2 ? rng() % 64 : rng() % b.size();
        b[at] = mode == 1 ? uint8_t(b[at] ^ (1u << (rng() % 8))) : uint8_t(rng());
      }
    }
    featx::VectorIndex ix;
    const featx::Status st = featx::VectorIndex::from_memory(b.data(), b.size(), "fuzzed.fxi", &ix);
    if (st.ok()) {
      ++opened;  // e.g. a flipped bit in a name: then it must be searchable
      featx::SearchResults res;
      std::vector<float> q(ix.dims(), 1.0f);
      CHECK(ix.search(q.data(), 1, ix.dims(), featx::SearchOptions{}, &res).ok());
      for (size_t i = 0; i < ix.size(); ++i) CHECK(ix.name(i).find('\n') == std::string::npos);
      continue;
    }
    CHECK(st.message().rfind("fuzzed.fxi: ", 0) == 0);
    CHECK(st.message().find('\n') == std::string::npos);
  }
  MESSAGE("corrupt variants that still open (a changed name or a tiny value change): " << opened);
}

TEST_CASE("writer and search refuse bad input with one line") {
  std::vector<float> v(3 * 8, 1.0f);
  v[13] = NAN;
  const std::string path = test_support::temp_dir() + "/refused.fxi";
  const featx::Status st = featx::write_index(path, v.data(), 3, 8, numbered(3, "r"));
  CHECK(st.message() == path + ": row 1, dimension 5: non-finite value (cannot index it)");
  CHECK(!test_support::exists(path));
  CHECK(!test_support::exists(path + ".part"));
  v[13] = 1.0f;
  const featx::Status nl = featx::write_index(path, v.data(), 3, 8, {"a", "b\nc", "d"});
  CHECK(nl.message().find("row 1 holds a newline") != std::string::npos);
  CHECK(featx::write_index(path, v.data(), 3, 0, numbered(3, "r")).message().find("0 dimensions") != std::string::npos);

  featx::VectorIndex ix;
  REQUIRE(featx::VectorIndex::build(v.data(), 3, 8, 0, {}, "small.fxi", &ix).ok());
  featx::SearchResults res;
  featx::SearchOptions so;
  CHECK(ix.search(v.data(), 1, 7, so, &res).message().find("7 dimensions for small.fxi") != std::string::npos);
  so.k = 0;
  CHECK_FALSE(ix.search(v.data(), 1, 8, so, &res).ok());
  so.k = 2;
  std::vector<float> q(8, 0.5f);
  q[2] = INFINITY;
  CHECK(ix.search(q.data(), 1, 8, so, &res).message() == "query 0, dimension 2: non-finite value");
}
