// `featx bench`: median wall time of one forward pass of a batch.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "args.hpp"
#include "featx/featx.hpp"

namespace featx_cli {

inline featx::Status cmd_bench(const Args& args) {
  if (!args.has("--model")) return featx::invalid_argument("missing -m MODEL");
  const auto t0 = std::chrono::steady_clock::now();
  std::shared_ptr<const featx::Model> m;
  FEATX_RETURN_IF_ERROR(featx::Model::load(args.get("--model"), &m));
  const double load_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  int h = m->resolution(), w = m->resolution(), batch = 1, threads = 0, runs = 20, warmup = 2;
  if (args.has("--size")) FEATX_RETURN_IF_ERROR(parse_size(args.get("--size"), &h, &w));
  if (args.has("--batch")) FEATX_RETURN_IF_ERROR(parse_int("--batch", args.get("--batch"), 1, 4096, &batch));
  if (args.has("--threads")) FEATX_RETURN_IF_ERROR(parse_int("--threads", args.get("--threads"), 1, 1024, &threads));
  if (args.has("--runs")) FEATX_RETURN_IF_ERROR(parse_int("--runs", args.get("--runs"), 1, 100000, &runs));
  if (args.has("--warmup")) FEATX_RETURN_IF_ERROR(parse_int("--warmup", args.get("--warmup"), 0, 100000, &warmup));
  std::vector<float> input(size_t(batch) * size_t(h) * size_t(w) * 3);
  uint32_t state = 12345;  // deterministic pseudo-random pixels
  for (float& v : input) {
    state = state * 1664525u + 1013904223u;
    v = float(state >> 8) / float(1u << 24);
  }
  featx::ExtractorOptions opt;
  opt.threads = threads;
  const bool profile = args.has("--profile");
  opt.fuse_blocks = !args.has("--no-fuse");
  featx::Extractor ex(m, opt);
  featx::Tensor out;
  for (int i = 0; i < warmup; ++i) FEATX_RETURN_IF_ERROR(ex.extract(input.data(), batch, h, w, &out));
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    const auto a = std::chrono::steady_clock::now();
    FEATX_RETURN_IF_ERROR(ex.extract(input.data(), batch, h, w, &out));
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  if (profile) {
    // Separate timed runs, so the per-layer clock does not disturb the medians above.
    opt.profile = true;
    featx::Extractor prof(m, opt);
    FEATX_RETURN_IF_ERROR(prof.extract(input.data(), batch, h, w, &out));
    prof.reset_profile();
    for (int i = 0; i < runs; ++i) FEATX_RETURN_IF_ERROR(prof.extract(input.data(), batch, h, w, &out));
    double total = 0.0;
    for (const auto& t : prof.profile()) total += t.ms;
    std::printf("profile (ms per forward pass of the batch, mean of %d runs):\n", runs);
    for (const auto& t : prof.profile())
      if (!t.name.empty())
        std::printf("  %-28s %8.3f  %5.1f%%\n", t.name.c_str(), t.ms / runs, 100.0 * t.ms / total);
    std::printf("  %-28s %8.3f\n", "total", total / runs);
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms.size() % 2 ? ms[ms.size() / 2] : 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
  std::printf("featx_ms_median %.3f\n", median);
  std::printf("featx_ms_min %.3f\n", ms.front());
  // Nearest rank: the pass 90% of the passes were no slower than.
  std::printf("featx_ms_p90 %.3f\n", ms[(ms.size() * 9 + 9) / 10 - 1]);
  std::printf("isa %s\n", featx::isa_name(ex.isa()));
  std::printf("batch %d size %dx%d threads %d runs %d\n", batch, h, w, threads, runs);
  std::printf("model_load_ms %.3f\n", load_ms);
  std::printf("workspace_bytes %zu\n", ex.plan().workspace_bytes());
  return featx::Status::Ok();
}

}  // namespace featx_cli
