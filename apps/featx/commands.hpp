// The featx commands: each one's options and the function that runs it, and
// how a command line is parsed against them (main.cpp runs the result;
// fuzz/fuzz_args.cpp fuzzes parse_command with this very table).
#pragma once

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "args.hpp"
#include "cmd_bench.hpp"
#include "cmd_extract.hpp"
#include "cmd_inspect.hpp"
#include "cmd_merge.hpp"
#include "cmd_pca.hpp"
#include "cmd_probe.hpp"
#include "cmd_search.hpp"
#include "cmd_verify.hpp"

namespace featx_cli {

// Each command's options (long names; args.hpp has the aliases). Anything
// else given to a command is refused, naming the option and the command.
struct Command {
  CommandOptions options;
  featx::Status (*run)(const Args&);
};

inline featx::Status cmd_classify_any(const Args& args) {
  return args.has("--probe") ? cmd_classify_probe(args) : cmd_classify(args);
}

inline const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {{"extract", {"--l2", "--recursive", "--resume", "--quiet"},
        {"--model", "--pool", "--layer", "--threads", "--batch", "--size", "--crop", "--preprocess", "--output",
         "--list", "--shard", "--shards", "--decoders", "--max-image-pixels"}},
       cmd_extract},
      {{"merge", {}, {"--output"}}, cmd_merge},
      {{"pca fit", {"--whiten"}, {"--output", "--top"}}, cmd_pca},
      {{"pca transform", {}, {"--model", "--output"}}, cmd_pca},
      {{"index", {"--quiet"}, {"--output", "--faiss", "--nlist", "--hnsw-m", "--ef-construction", "--threads"}},
       cmd_index},
      {{"search", {"--faiss", "--exact", "--recursive"},
        {"--index", "--top", "--model", "--size", "--crop", "--preprocess", "--threads", "--nprobe", "--ef-search",
         "--html", "--list", "--max-image-pixels"}},
       cmd_search},
      {{"classify", {"--recursive"},
        {"--model", "--labels", "--top", "--size", "--crop", "--preprocess", "--batch", "--threads", "--list",
         "--probe", "--max-image-pixels"}},
       cmd_classify_any},
      {{"train-probe", {"--labels-from-dirs"}, {"--output", "--kind", "--l2", "--max-iter", "--tol"}},
       cmd_train_probe},
      {{"inspect", {}, {}}, cmd_inspect},
      {{"verify", {}, {}}, cmd_verify},
      {{"bench", {"--profile", "--no-fuse"}, {"--model", "--threads", "--batch", "--size", "--runs", "--warmup"}},
       cmd_bench},
  };
  return table;
}

// Parses `featx CMD ...` with CMD's options. For a command with
// subcommands ("pca fit", "pca transform") the first positional names the
// subcommand (found with all their options, which agree on which take a
// value), whose options are then the ones taken.
inline featx::Status parse_command(const std::string& cmd, int argc, char** argv, const Command** chosen, Args* args) {
  std::set<std::string> known;
  std::vector<const Command*> matches;
  CommandOptions all{cmd, {}, {}};
  for (const Command& c : commands()) {
    known.insert(c.options.switches.begin(), c.options.switches.end());
    known.insert(c.options.with_value.begin(), c.options.with_value.end());
    if (c.options.command != cmd && c.options.command.rfind(cmd + " ", 0) != 0) continue;
    matches.push_back(&c);
    all.switches.insert(c.options.switches.begin(), c.options.switches.end());
    all.with_value.insert(c.options.with_value.begin(), c.options.with_value.end());
  }
  if (matches.empty()) return featx::invalid_argument("unknown command '" + featx::printable(cmd) + "' (try featx --help)");
  *chosen = matches.front();
  if (matches.size() > 1) {
    Args found;
    FEATX_RETURN_IF_ERROR(parse_args(argc, argv, 2, all, known, &found, /*skip_unknown=*/true));
    const std::string sub = found.positional.empty() ? "" : cmd + " " + found.positional.front();
    auto it = std::find_if(matches.begin(), matches.end(), [&](const Command* c) { return c->options.command == sub; });
    // Not a subcommand: all their options, and the command says what it wants.
    if (it == matches.end()) return parse_args(argc, argv, 2, all, known, args);
    *chosen = *it;
  }
  return parse_args(argc, argv, 2, (*chosen)->options, known, args);
}

}  // namespace featx_cli
