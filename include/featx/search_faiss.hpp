// featx/search_faiss.hpp: approximate search through FAISS, built from the
// same normalised vectors as a featx index (featx/search.hpp) and saved
// beside it (INDEX.fxi.faiss, faiss::write_index).
//
//   featx::FaissIndex ann;
//   st = featx::FaissIndex::build(index, featx::FaissBuildOptions{}, &ann);   // IVF-Flat, inner product
//   st = ann.save(featx::faiss_index_path("photos.fxi"));
//   st = featx::FaissIndex::load(featx::faiss_index_path("photos.fxi"), index, &ann);
//   st = ann.search(query, 1, 1280, featx::FaissSearchOptions{}, &results);   // same SearchResults
//
// Two index kinds:
//   IVF-Flat (default): k-means (spherical) cuts the vectors into nlist
//     lists; a query scans the nprobe lists whose centroids are nearest, with
//     exact inner products. Recall is set at query time (nprobe), memory is
//     the vectors plus 8 bytes each, and building is a matrix product: the
//     coarse quantizer is a faiss::IndexFlatIP whose search runs featx's
//     exact kernels (k-means assignment, adding, probing), because
//     Debian's FAISS 1.7.3 is a generic build on the reference BLAS (about
//     1-2 GFLOP/s here); FAISS does the clustering updates, the lists and the
//     list scans.
//   HNSW-Flat: a graph; better recall per distance computed on real data,
//     but built one vector at a time with FAISS's scalar distances (20000
//     vectors of 1280 dims took minutes here) and 2 x M x 4 more bytes per
//     vector. For small collections or when queries must be cheapest.
// Scores are inner products of the normalised query with the stored unit
// vectors: cosine similarities, as exact search gives them (within float
// rounding). Results are re-sorted by score, then index, like exact ones.
//
// Needs FAISS's headers and library (link faiss, BLAS, LAPACK), C++
// exceptions and RTTI (FAISS throws, and its reader and writer query
// types at run time; this header itself does not): every FAISS
// exception is caught here and returned as a featx::Status. Without them
// this header declares nothing (FEATX_SEARCH_FAISS stays undefined). The
// .faiss file is read by FAISS, which is not hardened against crafted
// files: treat it as trusted; it is checked to match its .fxi (kind,
// metric, dims, count, and a sample of stored vectors bit for bit).
// Searches of one FaissIndex are not concurrent (search parameters are set
// on the index), and threads > 0 calls omp_set_num_threads.
#pragma once

#include "featx/search.hpp"

#if defined(__has_include)
#if __has_include(<faiss/IndexIVFFlat.h>) && defined(__cpp_exceptions) && \
    (defined(__cpp_rtti) || defined(__GXX_RTTI))
#define FEATX_SEARCH_FAISS 1
#endif
#endif
#if defined(FEATX_HAVE_FAISS) && !defined(FEATX_SEARCH_FAISS)
#error "FEATX_HAVE_FAISS is set, but <faiss/IndexIVFFlat.h> is missing or exceptions / RTTI are off"
#endif

#ifdef FEATX_SEARCH_FAISS

#include <chrono>
#include <cmath>
#include <exception>
#include <memory>
#include <random>
#include <string>
#include <vector>

// FAISS's headers are not ours to keep warning-free.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_io.h>
#include <faiss/invlists/InvertedLists.h>
#pragma GCC diagnostic pop

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace featx {

enum class FaissKind { ivf_flat, hnsw_flat };

inline const char* faiss_kind_name(FaissKind k) { return k == FaissKind::hnsw_flat ? "hnsw" : "ivf"; }

struct FaissBuildOptions {
  FaissKind kind = FaissKind::ivf_flat;
  // IVF: lists; 0: sqrt(count) rounded, at most count / 39 (FAISS's fewest
  // training points per list), at least 1. FAISS suggests 4-16 x sqrt(count)
  // for speed at a given recall; more lists cost k-means time.
  size_t nlist = 0;
  int kmeans_iterations = 10;
  size_t train_points_per_list = 64;  // k-means sample: nlist x this vectors (at most all)
  int hnsw_m = 32;                    // HNSW: links per node
  int ef_construction = 40;
  int threads = 0;
  unsigned seed = 1234;
};

// Where a build's time went (seconds).
struct FaissBuildStats {
  double train_s = 0;  // IVF: k-means; HNSW: 0
  double add_s = 0;    // IVF: assigning and storing the vectors; HNSW: building the graph
};

struct FaissSearchOptions {
  size_t k = 10;
  size_t nprobe = 0;  // IVF lists scanned per query; 0: max(8, nlist / 16), at most nlist
  int ef_search = 0;  // HNSW candidate list; 0: max(64, 2 k)
  int threads = 0;
};

inline std::string faiss_index_path(const std::string& index_path) { return index_path + ".faiss"; }

namespace faiss_detail {

using idx_t = faiss::Index::idx_t;

// One line of a FAISS exception (its messages name the function and line).
inline std::string what_of(const std::exception& e) {
  std::string s = e.what();
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

inline void set_threads(int threads) {
#if defined(_OPENMP)
  if (threads > 0) omp_set_num_threads(threads);
#else
  (void)threads;
#endif
}

// The coarse quantizer: an IndexFlatIP (so faiss::write_index stores it as
// one, "IxFI") whose search is featx's exact search over its centroids.
struct FeatxFlatIP : faiss::IndexFlatIP {
  explicit FeatxFlatIP(idx_t d) : faiss::IndexFlatIP(d) {}

  void add(idx_t n, const float* x) override {
    faiss::IndexFlatIP::add(n, x);
    sync();
  }
  void reset() override {
    faiss::IndexFlatIP::reset();
    sync();
  }
  void search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
              const faiss::SearchParameters* = nullptr) const override {
    FAISS_THROW_IF_NOT(k > 0);
    SearchOptions so;
    so.k = size_t(k);
    SearchResults r;
    if (ntotal > 0) {
      const Status st = exact.search(x, size_t(n), size_t(d), so, &r);
      if (!st) FAISS_THROW_MSG("featx quantizer: " + st.message());
    }
    for (idx_t q = 0; q < n; ++q)
      for (idx_t i = 0; i < k; ++i) {
        const bool have = ntotal > 0 && size_t(i) < r.k;
        labels[q * k + i] = have ? idx_t(r.of(size_t(q))[i].index) : -1;
        distances[q * k + i] = have ? r.of(size_t(q))[i].score : -std::numeric_limits<float>::infinity();
      }
  }

  void sync() {
    exact = VectorIndex();
    if (ntotal == 0) return;
    const Status st = VectorIndex::build(get_xb(), size_t(ntotal), size_t(d), size_t(d), {}, "<faiss centroids>", &exact);
    if (!st) FAISS_THROW_MSG("featx quantizer: " + st.message());
  }

  VectorIndex exact;
};

// `exact`'s rows first..first+n packed to dims floats each (FAISS has no stride).
inline const float* packed_rows(const VectorIndex& exact, size_t first, size_t n, std::vector<float>* buf) {
  if (exact.stride() == exact.dims()) return exact.row(first);
  buf->resize(n * exact.dims());
  for (size_t i = 0; i < n; ++i)
    std::memcpy(buf->data() + i * exact.dims(), exact.row(first + i), exact.dims() * sizeof(float));
  return buf->data();
}

// A stored vector equals the .fxi's row, bit for bit.
inline bool same_row(const VectorIndex& exact, size_t row, const float* stored) {
  return std::memcmp(exact.row(row), stored, exact.dims() * sizeof(float)) == 0;
}

}  // namespace faiss_detail

class FaissIndex {
 public:
  FaissKind kind() const { return kind_; }
  size_t nlist() const { return ivf_ ? ivf_->nlist : 0; }
  size_t size() const { return index_ ? size_t(index_->ntotal) : 0; }

  size_t nprobe_for(const FaissSearchOptions& o) const {
    const size_t n = nlist();
    size_t p = o.nprobe ? o.nprobe : std::max<size_t>(8, n / 16);
    return std::max<size_t>(1, std::min(p, n));
  }
  static int ef_for(const FaissSearchOptions& o) {
    return o.ef_search > 0 ? o.ef_search : std::max(64, int(2 * o.k));
  }

  // "IVF-Flat nlist=1000 nprobe=62" / "HNSW-Flat M=32 efSearch=64".
  std::string describe(const FaissSearchOptions& o) const {
    if (ivf_) return "IVF-Flat nlist=" + std::to_string(nlist()) + " nprobe=" + std::to_string(nprobe_for(o));
    if (hnsw_) return "HNSW-Flat M=" + std::to_string(hnsw_->hnsw.nb_neighbors(1)) + " efSearch=" + std::to_string(ef_for(o));
    return "(empty)";
  }

  static Status build(const VectorIndex& exact, const FaissBuildOptions& options, FaissIndex* out,
                      FaissBuildStats* stats = nullptr) {
    using namespace faiss_detail;
    const std::string& name = exact.path();
    const size_t n = exact.size(), d = exact.dims();
    if (n == 0) return invalid_argument(name + ": no vectors to build a FAISS index of");
    if (n > size_t(std::numeric_limits<int>::max()))
      return invalid_argument(name + ": too many vectors for FAISS's 32-bit graph ids");
    set_threads(options.threads);
    FaissIndex fx;
    fx.kind_ = options.kind;
    std::vector<float> buf;
    FaissBuildStats local;
    if (!stats) stats = &local;
    using Clock = std::chrono::steady_clock;
    auto seconds = [](Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); };
    try {
      if (options.kind == FaissKind::hnsw_flat) {
        if (options.hnsw_m < 2 || options.hnsw_m > 512) return invalid_argument("HNSW M must be in [2, 512]");
        auto h = std::make_unique<faiss::IndexHNSWFlat>(int(d), options.hnsw_m, faiss::METRIC_INNER_PRODUCT);
        h->hnsw.efConstruction = std::max(1, options.ef_construction);
        const auto t0 = Clock::now();
        for (size_t i = 0; i < n; i += 65536) {
          const size_t m = std::min<size_t>(65536, n - i);
          h->add(idx_t(m), packed_rows(exact, i, m, &buf));
        }
        stats->add_s = seconds(t0);
        fx.hnsw_ = h.get();
        fx.index_ = std::move(h);
      } else {
        size_t nlist = options.nlist;
        if (nlist == 0)
          nlist = std::max<size_t>(1, std::min<size_t>(size_t(std::lround(std::sqrt(double(n)))), n / 39));
        if (nlist > n)
          return invalid_argument(name + ": nlist " + std::to_string(nlist) + " is more than its " +
                                  std::to_string(n) + " vectors");
        auto quantizer = std::make_unique<FeatxFlatIP>(idx_t(d));
        auto ivf = std::make_unique<faiss::IndexIVFFlat>(quantizer.get(), d, nlist, faiss::METRIC_INNER_PRODUCT);
        ivf->own_fields = true;
        quantizer.release();
        ivf->cp.niter = std::max(1, options.kmeans_iterations);
        ivf->cp.spherical = true;
        ivf->cp.seed = int(options.seed);
        ivf->cp.verbose = false;
        ivf->cp.min_points_per_centroid = 1;          // nlist is chosen above; no warnings
        ivf->cp.max_points_per_centroid = 1 << 30;    // the sample is drawn here
        // The k-means sample: a seeded choice of rows, in row order.
        const size_t sample = std::min(n, nlist * std::max<size_t>(1, options.train_points_per_list));
        std::vector<size_t> rows(n);
        for (size_t i = 0; i < n; ++i) rows[i] = i;
        if (sample < n) {
          std::mt19937_64 rng(options.seed);
          for (size_t i = 0; i < sample; ++i) std::swap(rows[i], rows[i + size_t(rng() % (n - i))]);
          rows.resize(sample);
          std::sort(rows.begin(), rows.end());
        }
        auto t0 = Clock::now();
        std::vector<float> train(sample * d);
        for (size_t i = 0; i < sample; ++i) std::memcpy(train.data() + i * d, exact.row(rows[i]), d * sizeof(float));
        ivf->train(idx_t(sample), train.data());
        std::vector<float>().swap(train);
        stats->train_s = seconds(t0);
        t0 = Clock::now();
        for (size_t i = 0; i < n; i += 65536) {
          const size_t m = std::min<size_t>(65536, n - i);
          ivf->add(idx_t(m), packed_rows(exact, i, m, &buf));
        }
        stats->add_s = seconds(t0);
        fx.ivf_ = ivf.get();
        fx.index_ = std::move(ivf);
      }
    } catch (const std::exception& e) {
      return Status(StatusCode::internal, name + ": FAISS failed: " + what_of(e));
    }
    *out = std::move(fx);
    return Status::Ok();
  }

  Status save(const std::string& path) const {
    if (!index_) return invalid_argument(path + ": no FAISS index to save");
    const std::string part = path + ".part";
    try {
      faiss::write_index(index_.get(), part.c_str());
    } catch (const std::exception& e) {
      std::remove(part.c_str());
      return io_error(path + ": FAISS could not write it: " + faiss_detail::what_of(e));
    }
    if (std::rename(part.c_str(), path.c_str()) != 0) {
      std::remove(part.c_str());
      return io_error(path + ": cannot rename (" + std::strerror(errno) + ")");
    }
    return Status::Ok();
  }

  // Reads `path` and checks that it indexes the rows of `exact`. The kind
  // comes from the file's FAISS type tag ("IwFl" IndexIVFFlat, "IHNf"
  // IndexHNSWFlat: read_index builds the class its tag names), so no
  // run-time type query is needed here; the quantizer and the HNSW storage
  // are read through their virtual reconstruct, whatever their class.
  static Status load(const std::string& path, const VectorIndex& exact, FaissIndex* out) {
    using namespace faiss_detail;
    char tag[4] = {0, 0, 0, 0};
    {
      std::FILE* f = std::fopen(path.c_str(), "rb");
      if (!f) return not_found(path + ": no such file (make it with featx index --faiss ivf|hnsw)");
      const size_t got = std::fread(tag, 1, 4, f);
      std::fclose(f);
      if (got < 4) return corrupt(path + ": truncated (not a FAISS index)");
    }
    const bool is_ivf = std::memcmp(tag, "IwFl", 4) == 0, is_hnsw = std::memcmp(tag, "IHNf", 4) == 0;
    const std::string other = " (is it the FAISS index of " + exact.path() + "? rebuild it with featx index --faiss)";
    if (!is_ivf && !is_hnsw) {
      std::string shown;
      for (char c : tag) shown += (c >= 32 && c < 127) ? c : '?';
      return unsupported(path + ": not a FAISS IVF-Flat or HNSW-Flat index (type tag '" + shown + "')" + other);
    }
    FaissIndex fx;
    try {
      fx.index_.reset(faiss::read_index(path.c_str()));
    } catch (const std::exception& e) {
      return corrupt(path + ": not a FAISS index FAISS can read (" + what_of(e) + ")");
    }
    faiss::Index* ix = fx.index_.get();
    if (ix->metric_type != faiss::METRIC_INNER_PRODUCT) return corrupt(path + ": not an inner-product index" + other);
    if (size_t(ix->d) != exact.dims())
      return corrupt(path + ": " + std::to_string(ix->d) + " dimensions, " + exact.path() + " has " +
                     std::to_string(exact.dims()) + other);
    if (size_t(ix->ntotal) != exact.size())
      return corrupt(path + ": " + std::to_string(ix->ntotal) + " vectors, " + exact.path() + " has " +
                     std::to_string(exact.size()) + other);
    const size_t d = exact.dims();
    try {
      if (is_ivf) {
        auto* ivf = static_cast<faiss::IndexIVFFlat*>(ix);
        faiss::Index* coarse = ivf->quantizer;
        if (!coarse || size_t(coarse->ntotal) != ivf->nlist || size_t(coarse->d) != d || !ivf->invlists ||
            ivf->code_size != d * sizeof(float))
          return corrupt(path + ": IVF lists or quantizer do not fit its " + std::to_string(ivf->nlist) + " lists" + other);
        // Each non-empty list's first vector must be the .fxi's row of that id.
        size_t listed = 0;
        for (size_t l = 0; l < ivf->nlist; ++l) {
          const size_t m = ivf->invlists->list_size(l);
          listed += m;
          if (m == 0) continue;
          const idx_t id = ivf->invlists->get_ids(l)[0];
          const float* v = reinterpret_cast<const float*>(ivf->invlists->get_codes(l));
          if (id < 0 || size_t(id) >= exact.size() || !same_row(exact, size_t(id), v))
            return corrupt(path + ": its vectors differ from " + exact.path() + other);
        }
        if (listed != exact.size()) return corrupt(path + ": lists hold " + std::to_string(listed) + " vectors" + other);
        std::vector<float> centroids(ivf->nlist * d);
        coarse->reconstruct_n(0, idx_t(ivf->nlist), centroids.data());
        auto q = std::make_unique<FeatxFlatIP>(idx_t(d));
        q->add(idx_t(ivf->nlist), centroids.data());
        if (ivf->own_fields) delete ivf->quantizer;
        ivf->quantizer = q.release();
        ivf->own_fields = true;
        fx.kind_ = FaissKind::ivf_flat;
        fx.ivf_ = ivf;
      } else {
        auto* h = static_cast<faiss::IndexHNSWFlat*>(ix);
        if (!h->storage || h->storage->ntotal != h->ntotal) return corrupt(path + ": HNSW storage does not fit" + other);
        const size_t n = exact.size(), step = std::max<size_t>(1, n / 1000);
        std::vector<float> v(d);
        for (size_t i = 0; i < n; i += step) {
          h->storage->reconstruct(idx_t(i), v.data());
          if (!same_row(exact, i, v.data())) return corrupt(path + ": its vectors differ from " + exact.path() + other);
        }
        fx.kind_ = FaissKind::hnsw_flat;
        fx.hnsw_ = h;
      }
    } catch (const std::exception& e) {
      return corrupt(path + ": " + what_of(e));
    }
    *out = std::move(fx);
    return Status::Ok();
  }

  Status search(const float* queries, size_t nq, size_t dims, const FaissSearchOptions& options,
                SearchResults* out) const {
    using namespace faiss_detail;
    out->queries = nq;
    out->k = 0;
    out->neighbors.clear();
    out->counts.clear();
    if (!index_) return invalid_argument("no FAISS index loaded");
    if (options.k == 0) return invalid_argument("k must be at least 1");
    if (dims != size_t(index_->d))
      return invalid_argument("queries of " + std::to_string(dims) + " dimensions for a FAISS index of " +
                              std::to_string(index_->d));
    const size_t k = std::min(options.k, size());
    out->k = k;
    out->counts.assign(nq, 0);
    if (k == 0 || nq == 0) return Status::Ok();
    detail::SizeCheck check;  // nq * dims: the caller's queries are in memory; nq * k may wrap
    const size_t results = check.mul(nq, k);
    check.mul(results, sizeof(Neighbor));
    if (check.overflow) {
      out->k = 0;
      out->counts.clear();
      return invalid_argument(std::to_string(nq) + " queries x " + std::to_string(k) +
                              " neighbours need more memory than this target can address");
    }
    std::vector<float> q(nq * dims), dist(results);
    std::vector<idx_t> labels(results);
    for (size_t i = 0; i < nq; ++i) {
      const size_t bad = search_detail::first_non_finite(queries + i * dims, dims);
      if (bad < dims)
        return invalid_argument("query " + std::to_string(i) + ", dimension " + std::to_string(bad) +
                                ": non-finite value");
      search_detail::normalize_row(queries + i * dims, dims, q.data() + i * dims, dims);
    }
    set_threads(options.threads);
#if defined(_OPENMP)
    const int threads = options.threads > 0 ? options.threads : omp_get_max_threads();
#else
    const int threads = 1;
#endif
    try {
      if (ivf_) {
        // FAISS splits queries over threads; fewer queries than threads
        // would leave threads idle, so split the lists of each query instead.
        ivf_->parallel_mode = int(nq) < threads ? 1 : 0;
        faiss::SearchParametersIVF params;
        params.nprobe = nprobe_for(options);
        index_->search(idx_t(nq), q.data(), idx_t(k), dist.data(), labels.data(), &params);
      } else {
        hnsw_->hnsw.efSearch = ef_for(options);
        index_->search(idx_t(nq), q.data(), idx_t(k), dist.data(), labels.data());
      }
    } catch (const std::exception& e) {
      return Status(StatusCode::internal, "FAISS search failed: " + what_of(e));
    }
    out->neighbors.assign(results, Neighbor{});
    for (size_t i = 0; i < nq; ++i) {
      Neighbor* dst = out->neighbors.data() + i * k;
      size_t found = 0;
      for (size_t j = 0; j < k; ++j) {
        const idx_t id = labels[i * k + j];
        if (id < 0 || size_t(id) >= size()) continue;
        dst[found++] = Neighbor{dist[i * k + j], uint64_t(id)};
      }
      std::sort(dst, dst + found, neighbor_before);
      out->counts[i] = found;
    }
    return Status::Ok();
  }

 private:
  std::unique_ptr<faiss::Index> index_;
  faiss::IndexIVFFlat* ivf_ = nullptr;
  faiss::IndexHNSWFlat* hnsw_ = nullptr;
  FaissKind kind_ = FaissKind::ivf_flat;
};

}  // namespace featx

#endif  // FEATX_SEARCH_FAISS
