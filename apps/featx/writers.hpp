// Output writers for the featx tool: .npy (float32, numpy-readable, names in
// a sidecar OUT.names.txt), .csv (name then values) and .jsonl (one object
// per input). Floats are printed with 9 significant digits: they read back
// bit-exact.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "featx/npy.hpp"
#include "featx/status.hpp"

namespace featx_cli {

struct Row {
  std::string name;
  std::vector<float> values;
};

inline std::string json_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') { out += '\\'; out += char(c); }
    else if (c < 0x20) { char buf[8]; std::snprintf(buf, sizeof buf, "\\u%04x", c); out += buf; }
    else out += char(c);
  }
  return out;
}

inline std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) { if (c == '"') out += '"'; out += c; }
  return out + "\"";
}

inline void write_float(std::FILE* f, float v) { std::fprintf(f, "%.9g", double(v)); }

inline featx::Status write_rows(const std::string& path, const std::vector<Row>& rows,
                                const std::vector<int64_t>& item_shape) {
  const bool to_stdout = path.empty() || path == "-";
  auto ends = [&](const char* ext) {
    std::string e = ext;
    return path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
  };
  if (!to_stdout && ends(".npy")) {
    std::vector<int64_t> shape{int64_t(rows.size())};
    shape.insert(shape.end(), item_shape.begin(), item_shape.end());
    std::vector<float> flat;
    for (const Row& r : rows) flat.insert(flat.end(), r.values.begin(), r.values.end());
    FEATX_RETURN_IF_ERROR(featx::write_npy(path, shape, flat.data()));
    std::FILE* names = std::fopen((path + ".names.txt").c_str(), "w");
    if (!names) return featx::io_error(path + ".names.txt: cannot write");
    for (const Row& r : rows) std::fprintf(names, "%s\n", r.name.c_str());
    std::fclose(names);
    return featx::Status::Ok();
  }
  const bool csv = !to_stdout && ends(".csv");
  if (!to_stdout && !csv && !ends(".jsonl"))
    return featx::invalid_argument(path + ": unknown output format (use .npy, .csv or .jsonl)");
  std::FILE* f = to_stdout ? stdout : std::fopen(path.c_str(), "w");
  if (!f) return featx::io_error(path + ": cannot write");
  for (const Row& r : rows) {
    if (csv) {
      std::fputs(csv_field(r.name).c_str(), f);
      for (float v : r.values) { std::fputc(',', f); write_float(f, v); }
      std::fputc('\n', f);
    } else {
      std::fprintf(f, "{\"name\": \"%s\", \"shape\": [", json_escape(r.name).c_str());
      for (size_t i = 0; i < item_shape.size(); ++i)
        std::fprintf(f, "%s%lld", i ? ", " : "", static_cast<long long>(item_shape[i]));
      std::fputs("], \"features\": [", f);
      for (size_t i = 0; i < r.values.size(); ++i) {
        if (i) std::fputs(", ", f);
        write_float(f, r.values[i]);
      }
      std::fputs("]}\n", f);
    }
  }
  bool failed = std::ferror(f) != 0;
  if (!to_stdout) failed = (std::fclose(f) != 0) || failed;
  else std::fflush(f);
  if (failed) return featx::io_error((to_stdout ? std::string("stdout") : path) + ": write failed");
  return featx::Status::Ok();
}

}  // namespace featx_cli
