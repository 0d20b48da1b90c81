// Similarity-search timing: featx exact search and FAISS on one index, driven
// command by command from standard input so bench/search_bench.py can
// interleave them with numpy in one long-lived process (loading a 5 GB index
// once, not per round).
//
//   featx_search_bench --index DB.fxi [--faiss NAME=X.faiss]... --queries SET=Q.npy...
//                      [--threads N] [--k 10] [--tile-kb KB]
// (a FAISS index of the same vectors, e.g. ivf=DB.fxi.faiss, hnsw=OTHER.fxi.faiss)
// stdin, one command per line; one JSON line on stdout per command:
//   exact SET single COUNT             COUNT searches of one query each: {"ms": [...]}
//   exact SET batch COUNT              one search of the first COUNT queries: {"ms": [x]}
//   NAME SET single|batch COUNT PARAM  the FAISS index NAME; PARAM: nprobe (IVF) or efSearch (HNSW), 0: default
//   recall NAME SET COUNT              recall@k of NAME's last batch of SET against exact's
//   ids ENGINE SET COUNT               the neighbours of ENGINE's last batch of SET, first COUNT queries
//   quit
// The first line printed reports the load times.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "featx/npy.hpp"
#include "featx/search.hpp"
#ifdef FEATX_HAVE_FAISS
#include "featx/search_faiss.hpp"
#endif

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

[[noreturn]] void die(const std::string& m) {
  std::fprintf(stderr, "search_bench: %s\n", m.c_str());
  std::exit(1);
}

void check(const featx::Status& st) {
  if (!st) die(st.message());
}

std::string ms_list(const std::vector<double>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    char b[32];
    std::snprintf(b, sizeof b, "%s%.4f", i ? ", " : "", v[i]);
    s += b;
  }
  return s + "]";
}

}  // namespace

int main(int argc, char** argv) {
  std::string index_path;
  std::map<std::string, std::string> faiss_paths;
  std::map<std::string, featx::NpyArray> sets;
  int threads = 0;
  size_t k = 10, tile_kb = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--index") index_path = value();
    else if (a == "--faiss") {
      const std::string v = value();
      const size_t eq = v.find('=');
      if (eq == std::string::npos) die("--faiss NAME=FILE.faiss");
      faiss_paths[v.substr(0, eq)] = v.substr(eq + 1);
    }
    else if (a == "--threads") threads = std::atoi(value().c_str());
    else if (a == "--k") k = size_t(std::atol(value().c_str()));
    else if (a == "--tile-kb") tile_kb = size_t(std::atol(value().c_str()));
    else if (a == "--queries") {
      const std::string v = value();
      const size_t eq = v.find('=');
      if (eq == std::string::npos) die("--queries NAME=FILE.npy");
      check(featx::read_npy(v.substr(eq + 1), &sets[v.substr(0, eq)]));
    } else die("unknown option " + a);
  }
  if (index_path.empty() || sets.empty()) die("usage: --index DB.fxi --queries NAME=Q.npy [--faiss DB.fxi.faiss]");

  auto t0 = Clock::now();
  featx::VectorIndex index;
  check(featx::VectorIndex::open(index_path, &index));
  const double load_ms = ms_since(t0);
  const size_t dims = index.dims();
  for (auto& kv : sets)
    if (kv.second.shape.size() != 2 || size_t(kv.second.shape[1]) != dims) die(kv.first + ": queries must be (N, dims)");
  std::string faiss_json;
#ifdef FEATX_HAVE_FAISS
  std::map<std::string, featx::FaissIndex> anns;
  for (const auto& kv : faiss_paths) {
    t0 = Clock::now();
    check(featx::FaissIndex::load(kv.second, index, &anns[kv.first]));
    char b[256];
    std::snprintf(b, sizeof b, "%s\"%s\": {\"load_ms\": %.1f, \"describe\": \"%s\"}", faiss_json.empty() ? "" : ", ",
                  kv.first.c_str(), ms_since(t0), anns[kv.first].describe(featx::FaissSearchOptions{}).c_str());
    faiss_json += b;
  }
#else
  if (!faiss_paths.empty()) die("built without FAISS");
#endif
  featx::SearchOptions so;
  so.k = k;
  so.threads = threads;
  if (tile_kb) so.tile_bytes = tile_kb << 10;
  std::printf("{\"load_ms\": %.1f, \"count\": %zu, \"dims\": %zu, \"isa\": \"%s\", \"threads\": %d, "
              "\"faiss\": {%s}}\n",
              load_ms, index.size(), dims, featx::isa_name(featx::dot_kernel(so.isa).isa),
              featx::detail::resolve_threads(threads), faiss_json.c_str());
  std::fflush(stdout);

  std::map<std::string, featx::SearchResults> last;  // by "ENGINE SET"
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string engine, set, mode;
    size_t count = 0;
    in >> engine;
    if (engine == "quit" || engine.empty()) break;
    in >> set >> mode;
    if (engine == "ids") {  // ids ENGINE SET COUNT: the last batch's neighbours
      in >> count;
      const featx::SearchResults& r = last[set + " " + mode];
      if (r.queries < count) die("ids before a batch of " + set + " " + mode);
      std::string s = "[";
      for (size_t q = 0; q < count; ++q) {
        s += q ? ", [" : "[";
        for (size_t i = 0; i < r.counts[q]; ++i) s += (i ? ", " : "") + std::to_string(r.of(q)[i].index);
        s += "]";
      }
      std::printf("{\"ids\": %s]}\n", s.c_str());
      std::fflush(stdout);
      continue;
    }
    if (engine == "recall") {
      in >> count;
      const featx::SearchResults& e = last["exact " + mode];
      const featx::SearchResults& f = last[set + " " + mode];
      if (e.queries < count || f.queries < count) die("recall before exact and " + set + " batches of " + mode);
      size_t hits = 0, first = 0;
      for (size_t q = 0; q < count; ++q) {
        std::set<uint64_t> truth;
        for (size_t i = 0; i < e.k; ++i) truth.insert(e.of(q)[i].index);
        for (size_t i = 0; i < f.counts[q]; ++i) hits += truth.count(f.of(q)[i].index);
        first += f.counts[q] > 0 && f.of(q)[0].index == e.of(q)[0].index;
      }
      std::printf("{\"recall_at_k\": %.4f, \"recall_at_1\": %.4f, \"k\": %zu}\n", double(hits) / double(count * e.k),
                  double(first) / double(count), e.k);
      std::fflush(stdout);
      continue;
    }
    size_t param = 0;
    in >> count >> param;
    auto it = sets.find(set);
    if (it == sets.end()) die("no query set " + set);
    const featx::NpyArray& qs = it->second;
    count = std::min(count, size_t(qs.shape[0]));
    std::vector<double> times;
    auto run = [&](const float* q, size_t n, featx::SearchResults* r) {
      if (engine == "exact") {
        check(index.search(q, n, dims, so, r));
        return;
      }
#ifdef FEATX_HAVE_FAISS
      auto a = anns.find(engine);
      if (a == anns.end()) die("unknown engine " + engine);
      featx::FaissSearchOptions fo;
      fo.k = k;
      fo.nprobe = param;
      fo.ef_search = int(param);
      fo.threads = threads;
      check(a->second.search(q, n, dims, fo, r));
#else
      die("built without FAISS");
#endif
    };
    featx::SearchResults r;
    if (mode == "single") {
      for (size_t q = 0; q < count; ++q) {
        t0 = Clock::now();
        run(qs.data.data() + q * dims, 1, &r);
        times.push_back(ms_since(t0));
      }
    } else if (mode == "batch") {
      t0 = Clock::now();
      run(qs.data.data(), count, &r);
      times.push_back(ms_since(t0));
      last[engine + " " + set] = r;
    } else {
      die("unknown mode " + mode);
    }
    std::printf("{\"ms\": %s}\n", ms_list(times).c_str());
    std::fflush(stdout);
  }
  return 0;
}
