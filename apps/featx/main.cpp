// The featx command line. Contract: ../shared/DESIGN.md ("The featx command line").
// Every failure prints one line "featx: error: <file>: <problem>" and exits non-zero.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
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

#ifndef FEATX_VERSION_STRING
#define FEATX_VERSION_STRING "(version unknown)"
#endif

namespace {

const char* kUsage =
    "usage:\n"
    "  featx extract  -m MODEL [--pool avg|max|none] [--layer NAME] [--threads N]\n"
    "                 [--batch B] [--size HxW] [--crop F] [--preprocess P] [--max-image-pixels N]\n"
    "                 [-o OUT.npy|OUT.csv|OUT.jsonl] [--l2] [--list FILE|-] [--recursive]\n"
    "                 [--shard K/N | --shards N] [--resume] [--quiet] [--decoders D] INPUT...\n"
    "  featx merge    -o OUT.npy PART.npy...\n"
    "  featx pca fit  -o MODEL.pca [-k K] [--whiten] VECTORS.npy\n"
    "  featx pca transform -m MODEL.pca -o OUT.npy VECTORS.npy\n"
    "  featx index    -o INDEX.fxi [--faiss ivf|hnsw] [--nlist N] [--hnsw-m M] [--ef-construction E]\n"
    "                 [--threads N] [--quiet] VECTORS.npy...\n"
    "  featx search   -i INDEX.fxi [-k 10] [-m MODEL [--size HxW] [--crop F] [--preprocess P]]\n"
    "                 [--faiss | --exact] [--nprobe N] [--ef-search E] [--threads N] [--html OUT.html] QUERY...\n"
    "  featx classify -m MODEL [--labels FILE] [-k 5] [--size HxW] [--crop F] [--preprocess P] IMAGE...\n"
    "  featx train-probe -o PROBE.fxp [--kind logistic|mean] [--l2 LAMBDA] [--max-iter N] [--tol G]\n"
    "                 VECTORS.npy (LABELS.txt | --labels-from-dirs)\n"
    "  featx classify --probe PROBE.fxp [-k 5] (-m MODEL [--size HxW] [--crop F] [--preprocess P] IMAGE... | VECTORS.npy...)\n"
    "  featx inspect  MODEL\n"
    "  featx verify   MODEL\n"
    "  featx bench    -m MODEL [--threads N] [--batch B] [--size HxW] [--runs R] [--profile] [--no-fuse]\n"
    "  featx --version\n"
    "INPUT: an image file, a directory of images, or a float32 .npy (N,H,W,3) in [0, 1].\n"
    "P: tf (default: TF's decode_jpeg + tf.image.resize), tf-antialias, keras (load_img), fast.\n"
    "--max-image-pixels N: refuse (skip) images whose header states more than N pixels.\n";

using namespace featx_cli;

// Each command's options (long names; args.hpp has the aliases). Anything
// else given to a command is refused, naming the option and the command.
struct Command {
  CommandOptions options;
  featx::Status (*run)(const Args&);
};

featx::Status cmd_classify_any(const Args& args) {
  return args.has("--probe") ? cmd_classify_probe(args) : cmd_classify(args);
}

const std::vector<Command>& commands() {
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
featx::Status parse_command(const std::string& cmd, int argc, char** argv, const Command** chosen, Args* args) {
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
  if (matches.empty()) return featx::invalid_argument("unknown command '" + cmd + "' (try featx --help)");
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

}  // namespace

int main(int argc, char** argv) {
#ifdef SIGXFSZ
  // Past a file-size limit (ulimit -f) a write would kill featx without a
  // word; ignored, the write fails with EFBIG and gets the one-line error a
  // full disk gets, and the .part files stay resumable.
  std::signal(SIGXFSZ, SIG_IGN);
#endif
  if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  if (cmd == "--version") {
    std::printf("featx %s\njpeg decoder: %s\n", FEATX_VERSION_STRING, featx::jpeg_decoder_name());
    return 0;
  }
  Args args;
  const Command* command = nullptr;
  featx::Status st = parse_command(cmd, argc, argv, &command, &args);
  if (st.ok()) st = command->run(args);
  if (!st.ok()) {
    std::fprintf(stderr, "featx: error: %s\n", st.message().c_str());
    return st.code() == featx::StatusCode::invalid_argument ? 2 : 1;
  }
  return 0;
}
