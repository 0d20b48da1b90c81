// Input handling for the featx tool: image files, directories of images, and
// .npy float32 tensors (N,H,W,3) or (H,W,3) in [0, 1] that skip decoding.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <dirent.h>
#include <sys/stat.h>

#include "featx/image.hpp"
#include "featx/npy.hpp"
#include "featx/status.hpp"

namespace featx_cli {

struct InputItem {
  std::string name;
  int height = 0, width = 0;
  std::vector<float> rgb;  // height x width x 3 in [0, 1]
};

inline bool ends_with_ci(const std::string& s, const std::string& suffix) {
  if (s.size() < suffix.size()) return false;
  for (size_t i = 0; i < suffix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[s.size() - suffix.size() + i])) != suffix[i])
      return false;
  return true;
}

inline bool is_npy(const std::string& path) { return ends_with_ci(path, ".npy"); }

inline bool has_image_extension(const std::string& path) {
  static const char* exts[] = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tga",
                               ".pnm", ".ppm",  ".pgm", ".npy"};
  for (const char* e : exts)
    if (ends_with_ci(path, e)) return true;
  return false;
}

// Files of directory `dir` with an image or .npy extension, sorted by path;
// with `recursive` also those of its subdirectories (not of symlinked ones,
// which could loop), each directory's entries sorted by name, depth first.
inline featx::Status list_directory(const std::string& dir, bool recursive, std::vector<std::string>* files) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return featx::io_error(dir + ": cannot read directory");
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (!name.empty() && name[0] != '.') names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    const std::string path = dir + (dir.back() == '/' ? "" : "/") + name;
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) continue;
    if (S_ISREG(st.st_mode) && has_image_extension(name)) {
      files->push_back(path);
    } else if (recursive && S_ISDIR(st.st_mode)) {
      struct stat lst;
      if (::lstat(path.c_str(), &lst) == 0 && !S_ISLNK(lst.st_mode))
        FEATX_RETURN_IF_ERROR(list_directory(path, true, files));
    }
  }
  return featx::Status::Ok();
}

// Paths listed one per line in `list` ("-": standard input); blank lines are
// skipped, a trailing CR is dropped (lists written on Windows).
inline featx::Status read_path_list(const std::string& list, std::vector<std::string>* files) {
  const bool from_stdin = list == "-";
  std::FILE* f = from_stdin ? stdin : std::fopen(list.c_str(), "r");
  if (!f) return featx::not_found(list + ": cannot open the list of inputs");
  std::string line;
  int c;
  auto take = [&]() {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) files->push_back(line);
    line.clear();
  };
  bool binary = false;
  while (!binary && (c = std::fgetc(f)) != EOF) {
    if (c == '\n') take();
    else line.push_back(char(c));
    binary = c == 0;
  }
  take();
  const bool failed = std::ferror(f) != 0;
  if (!from_stdin) std::fclose(f);
  const std::string name = from_stdin ? std::string("standard input") : list;
  if (failed) return featx::io_error(name + ": read failed");
  if (binary) return featx::invalid_argument(name + ": holds a NUL byte: binary data, not a list of paths");
  return featx::Status::Ok();
}

// The inputs of a run, in order: each argument (a directory: its image and
// .npy files, see list_directory), then the paths of `list` when given.
// A path that does not exist stays in the list: loading it fails and names it.
inline featx::Status gather_inputs(const std::vector<std::string>& args, bool recursive, const std::string& list,
                                   std::vector<std::string>* files) {
  for (const std::string& a : args) {
    struct stat st;
    if (::stat(a.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      files->push_back(a);
      continue;
    }
    const size_t before = files->size();
    FEATX_RETURN_IF_ERROR(list_directory(a, recursive, files));
    if (files->size() == before)
      return featx::not_found(a + ": directory holds no image or .npy files" +
                              (recursive ? "" : " (--recursive for its subdirectories)"));
  }
  if (!list.empty()) FEATX_RETURN_IF_ERROR(read_path_list(list, files));
  return featx::Status::Ok();
}

// Loads one input file as one or more items (an (N,H,W,3) .npy gives N).
inline featx::Status load_input(const std::string& path, const featx::PreprocessOptions& pre,
                                std::vector<InputItem>* items) {
  if (!is_npy(path)) {
    featx::Image img;
    FEATX_RETURN_IF_ERROR(featx::load_image(path, pre, &img));
    items->push_back(InputItem{path, img.height, img.width, std::move(img.rgb)});
    return featx::Status::Ok();
  }
  featx::NpyArray arr;
  FEATX_RETURN_IF_ERROR(featx::read_npy(path, &arr));
  std::vector<int64_t> shape = arr.shape;
  if (shape.size() == 3) shape.insert(shape.begin(), 1);
  auto shape_text = [&]() {
    std::string s = "(";
    for (size_t i = 0; i < arr.shape.size(); ++i) s += (i ? ", " : "") + std::to_string(arr.shape[i]);
    return s + (arr.shape.size() == 1 ? ",)" : ")");
  };
  if (shape.size() != 4 || shape[3] != 3 || shape[0] < 1 || shape[1] < 1 || shape[2] < 1)
    return featx::invalid_argument(path + ": tensor of shape " + shape_text() +
                                   ", expected (N, H, W, 3) or (H, W, 3) RGB");
  if (shape[1] > 16384 || shape[2] > 16384)
    return featx::invalid_argument(path + ": tensor of shape " + shape_text() + " is too large");
  float lo = 0.0f, hi = 0.0f;
  for (size_t i = 0; i < arr.data.size(); ++i) {
    const float v = arr.data[i];
    if (!std::isfinite(v))
      return featx::invalid_argument(path + ": tensor holds a non-finite value at index " +
                                     std::to_string(i));
    lo = i ? std::min(lo, v) : v;
    hi = i ? std::max(hi, v) : v;
  }
  if (lo < 0.0f || hi > 1.0f)
    return featx::invalid_argument(path + ": values span [" + std::to_string(lo) + ", " +
                                   std::to_string(hi) +
                                   "], expected RGB in [0, 1] (featx applies the model's "
                                   "own input normalisation)");
  const size_t per = size_t(shape[1]) * size_t(shape[2]) * 3;
  for (int64_t i = 0; i < shape[0]; ++i) {
    InputItem item;
    item.name = shape[0] == 1 && arr.shape.size() == 3 ? path : path + "[" + std::to_string(i) + "]";
    item.height = int(shape[1]);
    item.width = int(shape[2]);
    item.rgb.assign(arr.data.begin() + std::ptrdiff_t(size_t(i) * per),
                    arr.data.begin() + std::ptrdiff_t(size_t(i + 1) * per));
    items->push_back(std::move(item));
  }
  return featx::Status::Ok();
}

}  // namespace featx_cli
