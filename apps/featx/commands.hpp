// The featx commands and each one's options, and how a command line is
// parsed against them: main.cpp runs the command chosen, fuzz/fuzz_args.cpp
// fuzzes parse_command with this very table (so it holds no code of the
// commands themselves, which the fuzzer would have to build).
#pragma once

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "args.hpp"

namespace featx_cli {

// Each command's options (long names; args.hpp has the aliases). Anything
// else given to a command is refused, naming the option and the command.
inline const std::vector<CommandOptions>& commands() {
  static const std::vector<CommandOptions> table = {
      {"extract",
       {"--l2", "--recursive", "--resume", "--quiet"},
       {"--model", "--pool", "--layer", "--threads", "--batch", "--size", "--crop", "--preprocess", "--output",
        "--list", "--shard", "--shards", "--decoders", "--max-image-pixels"}},
      {"merge", {}, {"--output"}},
      {"pca fit", {"--whiten"}, {"--output", "--top"}},
      {"pca transform", {}, {"--model", "--output"}},
      {"index", {"--quiet"}, {"--output", "--faiss", "--nlist", "--hnsw-m", "--ef-construction", "--threads"}},
      {"search",
       {"--faiss", "--exact", "--recursive"},
       {"--index", "--top", "--model", "--size", "--crop", "--preprocess", "--threads", "--nprobe", "--ef-search",
        "--html", "--list", "--max-image-pixels"}},
      {"classify",
       {"--recursive"},
       {"--model", "--labels", "--top", "--size", "--crop", "--preprocess", "--batch", "--threads", "--list",
        "--probe", "--max-image-pixels"}},
      {"train-probe", {"--labels-from-dirs"}, {"--output", "--kind", "--l2", "--max-iter", "--tol"}},
      {"inspect", {}, {}},
      {"verify", {}, {}},
      {"bench", {"--profile", "--no-fuse"}, {"--model", "--threads", "--batch", "--size", "--runs", "--warmup"}},
  };
  return table;
}

// Parses `featx CMD ...` with CMD's options. For a command with
// subcommands ("pca fit", "pca transform") the first positional names the
// subcommand (found with all their options, which agree on which take a
// value), whose options are then the ones taken.
inline featx::Status parse_command(const std::string& cmd, int argc, char** argv, const CommandOptions** chosen, Args* args) {
  std::set<std::string> known;
  std::vector<const CommandOptions*> matches;
  CommandOptions all{cmd, {}, {}};
  for (const CommandOptions& c : commands()) {
    known.insert(c.switches.begin(), c.switches.end());
    known.insert(c.with_value.begin(), c.with_value.end());
    if (c.command != cmd && c.command.rfind(cmd + " ", 0) != 0) continue;
    matches.push_back(&c);
    all.switches.insert(c.switches.begin(), c.switches.end());
    all.with_value.insert(c.with_value.begin(), c.with_value.end());
  }
  if (matches.empty()) return featx::invalid_argument("unknown command '" + featx::printable(cmd) + "' (try featx --help)");
  *chosen = matches.front();
  if (matches.size() > 1) {
    Args found;
    FEATX_RETURN_IF_ERROR(parse_args(argc, argv, 2, all, known, &found, /*skip_unknown=*/true));
    const std::string sub = found.positional.empty() ? "" : cmd + " " + found.positional.front();
    auto it = std::find_if(matches.begin(), matches.end(), [&](const CommandOptions* c) { return c->command == sub; });
    // Not a subcommand: all their options, and the command says what it wants.
    if (it == matches.end()) return parse_args(argc, argv, 2, all, known, args);
    *chosen = *it;
  }
  return parse_args(argc, argv, 2, **chosen, known, args);
}

}  // namespace featx_cli
