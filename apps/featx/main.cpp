// The featx command line. Contract: ../shared/DESIGN.md ("The featx command line").
// Every failure prints one line "featx: error: <file>: <problem>" and exits non-zero.
#include <cstdio>
#include <cstring>
#include <string>

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
    "                 [--batch B] [--size HxW] [--crop F] [--preprocess P]\n"
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
    "P: tf (default: TF's decode_jpeg + tf.image.resize), tf-antialias, keras (load_img), fast.\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace featx_cli;
  if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  if (cmd == "--version") {
    std::printf("featx %s\njpeg decoder: %s\n", FEATX_VERSION_STRING, featx::jpeg_decoder_name());
    return 0;
  }
  const std::map<std::string, std::string> aliases = {
      {"-m", "--model"}, {"-o", "--output"}, {"-k", "--top"}, {"-t", "--threads"}, {"-b", "--batch"},
      {"-r", "--recursive"}, {"-q", "--quiet"}, {"-i", "--index"}};
  std::set<std::string> switches = {"--profile", "--no-fuse", "--l2", "--recursive", "--resume", "--quiet",
                                    "--whiten", "--exact", "--labels-from-dirs"};
  std::set<std::string> with_value = {"--model", "--output", "--top", "--threads", "--batch",
                                            "--pool", "--layer", "--labels", "--size", "--crop",
                                            "--runs", "--warmup", "--preprocess", "--list", "--shard",
                                            "--shards", "--decoders", "--index", "--nlist", "--nprobe",
                                            "--hnsw-m", "--ef-construction", "--ef-search", "--html",
                                            "--probe", "--kind", "--max-iter", "--tol"};
  // `index --faiss ivf|hnsw` names a kind; `search --faiss` is a switch.
  (cmd == "search" ? switches : with_value).insert("--faiss");
  // `train-probe --l2 LAMBDA` is the regularisation; `extract --l2` a switch.
  if (cmd == "train-probe") {
    switches.erase("--l2");
    with_value.insert("--l2");
  }
  Args args;
  featx::Status st = parse_args(argc, argv, 2, aliases, with_value, switches, &args);
  if (st.ok()) {
    if (cmd == "extract") st = cmd_extract(args);
    else if (cmd == "merge") st = cmd_merge(args);
    else if (cmd == "pca") st = cmd_pca(args);
    else if (cmd == "index") st = cmd_index(args);
    else if (cmd == "search") st = cmd_search(args);
    else if (cmd == "classify") st = args.has("--probe") ? cmd_classify_probe(args) : cmd_classify(args);
    else if (cmd == "train-probe") st = cmd_train_probe(args);
    else if (cmd == "inspect") st = cmd_inspect(args);
    else if (cmd == "verify") st = cmd_verify(args);
    else if (cmd == "bench") st = cmd_bench(args);
    else st = featx::invalid_argument("unknown command '" + cmd + "' (try featx --help)");
  }
  if (!st.ok()) {
    std::fprintf(stderr, "featx: error: %s\n", st.message().c_str());
    return st.code() == featx::StatusCode::invalid_argument ? 2 : 1;
  }
  return 0;
}
