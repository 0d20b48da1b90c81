// Helpers shared by the C++ tests: paths configured by CMake, temp files.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#ifndef FEATX_SHARED_DIR
#define FEATX_SHARED_DIR "../shared"
#endif
#ifndef FEATX_TEST_MODELS_DIR
#define FEATX_TEST_MODELS_DIR "test_models"
#endif
#ifndef FEATX_SOURCE_DIR
#define FEATX_SOURCE_DIR "."
#endif

namespace test_support {

struct alignas(16) Aligned16 { uint8_t b[16]; };

inline std::string shared_dir() { return FEATX_SHARED_DIR; }
inline std::string models_dir() { return FEATX_TEST_MODELS_DIR; }
inline std::string source_dir() { return FEATX_SOURCE_DIR; }

inline bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

inline bool have_shared() { return exists(shared_dir() + "/models") && exists(shared_dir() + "/images"); }

// The smallest test model: MobileNetV2 0.35 (random weights).
inline std::string small_model_path() { return models_dir() + "/random_a0.35_r96_s1_c0.featx"; }

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

inline std::string temp_dir() {
  static std::string dir = [] {
    char tmpl[] = "/tmp/featx_test_XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    return std::string(d ? d : "/tmp");
  }();
  return dir;
}

}  // namespace test_support
