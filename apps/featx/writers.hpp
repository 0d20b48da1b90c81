// Text rows for the featx tool: .csv (name then values) and .jsonl (one
// object per input); the .npy output is streamed (extract_output.hpp).
// Floats are printed with 9 significant digits: they read back bit-exact.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

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

// One row as a CSV line (name, then values) or a JSON line.
inline void write_text_row(std::FILE* f, bool csv, const Row& r, const std::vector<int64_t>& item_shape) {
  if (csv) {
    std::fputs(csv_field(r.name).c_str(), f);
    for (float v : r.values) { std::fputc(',', f); write_float(f, v); }
    std::fputc('\n', f);
    return;
  }
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

}  // namespace featx_cli
