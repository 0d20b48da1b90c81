// Which share of the inputs one process takes (`featx extract --shard K/N`).
//
// The input list (arguments in order, directories expanded sorted) is cut
// into N contiguous blocks by index: shard K takes inputs
// [floor(K * M / N), floor((K + 1) * M / N)) of M. Every shard sees the
// same list, so the split is deterministic, and `featx merge` of the parts in
// K order is the unsharded output. Blocks rather than a hash: the merge is
// a concatenation, and a shard's inputs are neighbours on disk.
//
// Without --shard, a Slurm job array shards by itself (K =
// SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN, N = SLURM_ARRAY_TASK_COUNT);
// a Kubernetes indexed Job gives K in JOB_COMPLETION_INDEX and N through
// --shards N (Kubernetes has no variable for the count).
#pragma once

#include <cstdlib>
#include <string>

#include "args.hpp"
#include "featx/status.hpp"

namespace featx_cli {

struct Shard {
  int index = 0, count = 1;
  std::string from;  // where K/N came from, for the summary ("" without sharding)

  size_t begin(size_t inputs) const { return size_t(uint64_t(inputs) * uint64_t(index) / uint64_t(count)); }
  size_t end(size_t inputs) const { return size_t(uint64_t(inputs) * uint64_t(index + 1) / uint64_t(count)); }
  bool sharded() const { return count > 1 || !from.empty(); }
};

inline featx::Status parse_shard_env(const char* name, long* out) {
  const char* v = std::getenv(name);
  char* end = nullptr;
  *out = std::strtol(v, &end, 10);
  if (!*v || *end) return featx::invalid_argument(std::string(name) + "='" + featx::printable(v) + "' is not an integer");
  return featx::Status::Ok();
}

inline featx::Status resolve_shard(const Args& args, Shard* shard) {
  const int kMaxShards = 1 << 20;
  if (args.has("--shard")) {
    const std::string s = args.get("--shard");
    const size_t slash = s.find('/');
    if (slash == std::string::npos)
      return featx::invalid_argument("--shard must be K/N (K = 0..N-1), got '" + featx::printable(s) + "'");
    FEATX_RETURN_IF_ERROR(parse_int("--shard count N", s.substr(slash + 1), 1, kMaxShards, &shard->count));
    FEATX_RETURN_IF_ERROR(parse_int("--shard index K", s.substr(0, slash), 0, shard->count - 1, &shard->index));
    shard->from = "--shard";
    return featx::Status::Ok();
  }
  long index = 0, count = 0, min = 0;
  if (std::getenv("SLURM_ARRAY_TASK_ID") && std::getenv("SLURM_ARRAY_TASK_COUNT")) {
    FEATX_RETURN_IF_ERROR(parse_shard_env("SLURM_ARRAY_TASK_ID", &index));
    FEATX_RETURN_IF_ERROR(parse_shard_env("SLURM_ARRAY_TASK_COUNT", &count));
    if (std::getenv("SLURM_ARRAY_TASK_MIN")) FEATX_RETURN_IF_ERROR(parse_shard_env("SLURM_ARRAY_TASK_MIN", &min));
    index -= min;
    shard->from = "SLURM_ARRAY_TASK_ID";
    if (args.has("--shards")) {
      int n = 0;
      FEATX_RETURN_IF_ERROR(parse_int("--shards", args.get("--shards"), 1, kMaxShards, &n));
      count = n;
    }
  } else if (std::getenv("JOB_COMPLETION_INDEX")) {
    FEATX_RETURN_IF_ERROR(parse_shard_env("JOB_COMPLETION_INDEX", &index));
    if (!args.has("--shards"))
      return featx::invalid_argument("JOB_COMPLETION_INDEX is set: give the number of shards (--shards N, "
                                     "the Job's completions) or --shard K/N");
    int n = 0;
    FEATX_RETURN_IF_ERROR(parse_int("--shards", args.get("--shards"), 1, kMaxShards, &n));
    count = n;
    shard->from = "JOB_COMPLETION_INDEX";
  } else {
    if (args.has("--shards"))
      return featx::invalid_argument("--shards N takes the shard index from SLURM_ARRAY_TASK_ID or "
                                     "JOB_COMPLETION_INDEX, and neither is set (use --shard K/N)");
    return featx::Status::Ok();
  }
  if (count < 1 || count > kMaxShards || index < 0 || index >= count)
    return featx::invalid_argument(shard->from + ": shard " + std::to_string(index) + " of " + std::to_string(count) +
                                   " is out of range (an array with a step? use --shard K/N)");
  shard->index = int(index);
  shard->count = int(count);
  return featx::Status::Ok();
}

}  // namespace featx_cli
