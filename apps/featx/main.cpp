// The featx command line. Contract: ../shared/DESIGN.md ("The featx command line").
// Every failure prints one line "featx: error: <file>: <problem>" and exits non-zero.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "cmd_bench.hpp"
#include "cmd_extract.hpp"
#include "cmd_inspect.hpp"
#include "cmd_merge.hpp"
#include "cmd_pca.hpp"
#include "cmd_probe.hpp"
#include "cmd_search.hpp"
#include "cmd_verify.hpp"
#include "commands.hpp"

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

// Runs the command commands.hpp's table chose, by its name there.
featx::Status run_command(const std::string& name, const Args& args) {
  if (name == "extract") return cmd_extract(args);
  if (name == "merge") return cmd_merge(args);
  if (name == "pca fit" || name == "pca transform") return cmd_pca(args);
  if (name == "index") return cmd_index(args);
  if (name == "search") return cmd_search(args);
  if (name == "classify") return args.has("--probe") ? cmd_classify_probe(args) : cmd_classify(args);
  if (name == "train-probe") return cmd_train_probe(args);
  if (name == "inspect") return cmd_inspect(args);
  if (name == "verify") return cmd_verify(args);
  if (name == "bench") return cmd_bench(args);
  return featx::Status(featx::StatusCode::internal, "no code for the command '" + name + "'");
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
  const CommandOptions* command = nullptr;
  featx::Status st = parse_command(cmd, argc, argv, &command, &args);
  if (st.ok()) st = run_command(command->command, args);
  if (!st.ok()) {
    std::fprintf(stderr, "featx: error: %s\n", st.message().c_str());
    return st.code() == featx::StatusCode::invalid_argument ? 2 : 1;
  }
  return 0;
}
