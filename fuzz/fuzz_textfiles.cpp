// libFuzzer harness: the text files the featx CLI reads, from a temporary
// file holding the bytes (these readers take paths). The first byte picks:
//   0  featx merge's shard record (cmd_merge.hpp read_shard_part: PART.npy
//      .shard.txt beside a PART.npy, here a small valid one)
//   1  a labels file (featx/labels.hpp read_labels)
//   2  a list of inputs (inputs.hpp read_path_list, extract/search --list)
//   3  the lines of a names file (extract_output.hpp read_complete_lines,
//      what --resume reads back)
// (cmd_probe.hpp's read_text_lines is left out: that header pulls in the
// whole extractor, minutes of sanitizer build, for a ten-line loop.)
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cmd_merge.hpp"
#include "featx/labels.hpp"
#include "featx/npy.hpp"
#include "fuzz_common.hpp"
#include "inputs.hpp"

namespace {

std::string g_dir;

void remove_work_dir() {
  for (const char* f : {"/part.npy", "/part.npy.shard.txt", "/text.txt"}) std::remove((g_dir + f).c_str());
  rmdir(g_dir.c_str());
}

// One directory per process: part.npy, part.npy.shard.txt and text.txt,
// removed at exit.
const std::string& work_dir() {
  static const std::string dir = [] {
    // $TMPDIR first: the campaign points it at a tmpfs, since every
    // execution writes a file.
    const char* tmp = std::getenv("TMPDIR");
    std::string name = std::string(tmp && *tmp ? tmp : "/tmp") + "/featx-fuzz-XXXXXX";
    if (!mkdtemp(&name[0])) featx_fuzz::fail("textfiles", "cannot create a temporary directory in " + name);
    const std::string d = name;
    const float row[3] = {1, 2, 3};
    g_dir = d;
    std::atexit(remove_work_dir);
    if (!featx::write_npy(d + "/part.npy", {1, 3}, row)) featx_fuzz::fail("textfiles", "cannot write part.npy");
    return d;
  }();
  return dir;
}

void write_bytes(const std::string& path, const uint8_t* data, size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(data, 1, size, f) != size || std::fclose(f) != 0)
    featx_fuzz::fail("textfiles", "cannot write " + path);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using featx_fuzz::check;
  return featx_fuzz::guarded([&] {
    featx_fuzz::Bytes in{data, size};
    const uint8_t which = in.take() & 3;
    const std::string dir = work_dir();
    const std::string text = which == 0 ? dir + "/part.npy.shard.txt" : dir + "/text.txt";
    write_bytes(text, in.data, in.size);
    std::vector<std::string> lines;
    switch (which) {
      case 0: {
        featx_cli::ShardPart part;
        if (check(featx_cli::read_shard_part(dir + "/part.npy", &part), "read_shard_part") &&
            (part.index < 0 || part.index >= part.count || part.first > part.end))
          featx_fuzz::fail("read_shard_part", "success with a record out of range");
        break;
      }
      case 1:
        if (check(featx::read_labels(text, &lines), "read_labels") && lines.empty())
          featx_fuzz::fail("read_labels", "success with no labels");
        break;
      case 2:
        check(featx_cli::read_path_list(text, &lines), "read_path_list");
        for (const std::string& l : lines)
          if (l.empty()) featx_fuzz::fail("read_path_list", "an empty path");
        break;
      case 3:
        if (!featx_cli::read_complete_lines(text, &lines)) featx_fuzz::fail("read_complete_lines", "cannot read");
        break;
    }
  });
}
