// libFuzzer harness: the featx command line as main.cpp parses it, with its
// real command table (apps/featx/commands.hpp), then the option values the
// commands check before touching any file: --shard/--shards (shard.hpp, with
// the Slurm or Kubernetes variables), --size, the integer options, --l2/--tol.
// (--preprocess and --kind are compared with fixed names by parse_preset and
// parse_probe_kind; leaving them out keeps the image and Eigen code out of
// this build, which is then seconds, not minutes.)
// Input: one byte choosing the environment, then argv[1..] separated by NUL.
//   byte 0  0: no shard variables; 1: SLURM_ARRAY_TASK_{ID,COUNT,MIN};
//           2: JOB_COMPLETION_INDEX; 3: Slurm variables from argv's last word
#include <cstdlib>
#include <string>
#include <vector>

#include "commands.hpp"
#include "shard.hpp"
#include "fuzz_common.hpp"

namespace {

void set_environment(uint8_t choice, const std::string& last) {
  for (const char* v : {"SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "JOB_COMPLETION_INDEX"})
    unsetenv(v);
  switch (choice & 3) {
    case 1:
      setenv("SLURM_ARRAY_TASK_ID", "3", 1);
      setenv("SLURM_ARRAY_TASK_COUNT", "8", 1);
      setenv("SLURM_ARRAY_TASK_MIN", "1", 1);
      break;
    case 2:
      setenv("JOB_COMPLETION_INDEX", "2", 1);
      break;
    case 3:
      setenv("SLURM_ARRAY_TASK_ID", last.c_str(), 1);
      setenv("SLURM_ARRAY_TASK_COUNT", last.c_str(), 1);
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using featx_fuzz::check;
  return featx_fuzz::guarded([&] {
    featx_fuzz::Bytes in{data, size};
    const uint8_t env = in.take();
    std::vector<std::string> words{"featx"};
    std::string word;
    for (size_t i = 0; i < in.size; ++i) {
      if (in.data[i] == 0) {
        words.push_back(word);
        word.clear();
      } else {
        word.push_back(char(in.data[i]));
      }
    }
    words.push_back(word);
    if (words.size() < 2 || words[1] == "--version" || words[1] == "-h" || words[1] == "--help") return;
    set_environment(env, words.back());
    std::vector<char*> argv;
    for (std::string& w : words) argv.push_back(&w[0]);
    argv.push_back(nullptr);
    const featx_cli::CommandOptions* command = nullptr;
    featx_cli::Args args;
    if (!check(featx_cli::parse_command(words[1], int(words.size()), argv.data(), &command, &args), "parse_command"))
      return;
    if (command == nullptr) featx_fuzz::fail("parse_command", "success without a command");
    featx_cli::Shard shard;
    if (check(featx_cli::resolve_shard(args, &shard), "resolve_shard") &&
        (shard.count < 1 || shard.index < 0 || shard.index >= shard.count))
      featx_fuzz::fail("resolve_shard", "success with a shard out of range");
    int h = 0, w = 0, n = 0;
    if (args.has("--size")) check(featx_cli::parse_size(args.get("--size"), &h, &w), "parse_size");
    for (const char* option : {"--top", "--threads", "--batch", "--decoders", "--runs", "--nlist", "--max-iter"})
      if (args.has(option)) check(featx_cli::parse_int(option, args.get(option), 0, 1 << 20, &n), "parse_int");
    double x = 0;
    for (const char* option : {"--l2", "--tol"})
      if (args.has(option)) check(featx_cli::parse_double(option, args.get(option), 1e-15, 1e6, &x), "parse_double");
  });
}
