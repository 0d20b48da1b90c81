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
    "  featx classify -m MODEL [--labels FILE] [-k 5] [--size HxW] [--crop F] [--preprocess P] IMAGE...\n"
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
      {"-r", "--recursive"}, {"-q", "--quiet"}};
  const std::set<std::string> switches = {"--profile", "--no-fuse", "--l2", "--recursive", "--resume", "--quiet"};
  const std::set<std::string> with_value = {"--model", "--output", "--top", "--threads", "--batch",
                                            "--pool", "--layer", "--labels", "--size", "--crop",
                                            "--runs", "--warmup", "--preprocess", "--list", "--shard",
                                            "--shards", "--decoders"};
  Args args;
  featx::Status st = parse_args(argc, argv, 2, aliases, with_value, switches, &args);
  if (st.ok()) {
    if (cmd == "extract") st = cmd_extract(args);
    else if (cmd == "merge") st = cmd_merge(args);
    else if (cmd == "classify") st = cmd_classify(args);
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
