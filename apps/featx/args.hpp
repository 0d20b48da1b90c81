// Command-line parsing for the featx tool: flags with values, repeated
// positionals, one-line errors.
#pragma once

#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "featx/status.hpp"

namespace featx_cli {

struct Args {
  std::map<std::string, std::string> values;  // --flag value
  std::vector<std::string> positional;

  bool has(const std::string& k) const { return values.count(k) != 0; }
  std::string get(const std::string& k, const std::string& def = "") const {
    auto it = values.find(k);
    return it == values.end() ? def : it->second;
  }
};

// `with_value`: flags that take a value (aliases like -m map to --model).
inline featx::Status parse_args(int argc, char** argv, int first,
                                const std::map<std::string, std::string>& aliases,
                                const std::set<std::string>& with_value,
                                const std::set<std::string>& switches, Args* out) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    auto al = aliases.find(a);
    if (al != aliases.end()) a = al->second;
    if (a.size() > 1 && a[0] == '-' && !(a.size() > 1 && (isdigit(static_cast<unsigned char>(a[1])) || a[1] == '.'))) {
      std::string value;
      size_t eq = a.find('=');
      bool inline_value = a.rfind("--", 0) == 0 && eq != std::string::npos;
      if (inline_value) {
        value = a.substr(eq + 1);
        a = a.substr(0, eq);
      }
      if (switches.count(a)) {
        out->values[a] = "1";
        continue;
      }
      if (!with_value.count(a)) return featx::invalid_argument("unknown option " + a);
      if (!inline_value) {
        if (i + 1 >= argc) return featx::invalid_argument("option " + a + " needs a value");
        value = argv[++i];
      }
      out->values[a] = value;
    } else {
      out->positional.push_back(a);
    }
  }
  return featx::Status::Ok();
}

inline featx::Status parse_int(const std::string& name, const std::string& s, int lo, int hi,
                               int* out) {
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v < lo || v > hi)
    return featx::invalid_argument(name + " must be an integer in [" + std::to_string(lo) + ", " +
                                   std::to_string(hi) + "], got '" + s + "'");
  *out = int(v);
  return featx::Status::Ok();
}

// "HxW" or a single number for a square.
inline featx::Status parse_size(const std::string& s, int* h, int* w) {
  size_t x = s.find_first_of("xX");
  if (x == std::string::npos) {
    FEATX_RETURN_IF_ERROR(parse_int("--size", s, 1, 16384, h));
    *w = *h;
    return featx::Status::Ok();
  }
  FEATX_RETURN_IF_ERROR(parse_int("--size height", s.substr(0, x), 1, 16384, h));
  return parse_int("--size width", s.substr(x + 1), 1, 16384, w);
}

}  // namespace featx_cli
