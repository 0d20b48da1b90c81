// Command-line parsing for the featx tool: flags with values, repeated
// positionals, one-line errors.
#pragma once

#include <cstdio>
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

// What one command takes, by long name: switches (`--quiet`) and options
// with a value (`--output OUT`, `--output=OUT`). Aliases (-m for --model,
// table below) mean the same for every command. A command with subcommands
// has an entry per subcommand ("pca fit", "pca transform").
struct CommandOptions {
  std::string command;
  std::set<std::string> switches, with_value;
};

inline const std::map<std::string, std::string>& option_aliases() {
  static const std::map<std::string, std::string> aliases = {
      {"-m", "--model"}, {"-o", "--output"}, {"-k", "--top"}, {"-t", "--threads"}, {"-b", "--batch"},
      {"-r", "--recursive"}, {"-q", "--quiet"}, {"-i", "--index"}};
  return aliases;
}

// Parses argv[first..) as `spec.command`'s options; the rest are positional
// ("-" and negative numbers too). An option the command does not take is
// refused in one line naming it as typed and the command: "featx pca fit:
// option --pool does not apply" when another command takes it (`known`:
// every command's options), else "featx extract: unknown option --poll".
// With `skip_unknown`, such an option is skipped instead (taken for a
// switch): enough to find the positionals, e.g. which subcommand it is.
inline featx::Status parse_args(int argc, char** argv, int first, const CommandOptions& spec,
                                const std::set<std::string>& known, Args* out, bool skip_unknown = false) {
  for (int i = first; i < argc; ++i) {
    const std::string typed = argv[i];
    std::string a = typed;
    auto al = option_aliases().find(a);
    if (al != option_aliases().end()) a = al->second;
    if (a.size() > 1 && a[0] == '-' && !(a.size() > 1 && (isdigit(static_cast<unsigned char>(a[1])) || a[1] == '.'))) {
      std::string value;
      size_t eq = a.find('=');
      bool inline_value = a.rfind("--", 0) == 0 && eq != std::string::npos;
      if (inline_value) {
        value = a.substr(eq + 1);
        a = a.substr(0, eq);
      }
      if (spec.switches.count(a)) {
        out->values[a] = "1";
        continue;
      }
      if (!spec.with_value.count(a)) {
        if (skip_unknown) continue;
        const std::string name = featx::printable(inline_value ? a : typed);
        return featx::invalid_argument("featx " + spec.command + ": " +
                                       (known.count(a) ? "option " + name + " does not apply" : "unknown option " + name));
      }
      if (!inline_value) {
        if (i + 1 >= argc) return featx::invalid_argument("option " + featx::printable(a) + " needs a value");
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
                                   std::to_string(hi) + "], got '" + featx::printable(s) + "'");
  *out = int(v);
  return featx::Status::Ok();
}

inline featx::Status parse_double(const std::string& name, const std::string& s, double lo, double hi, double* out) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !(v >= lo && v <= hi)) {
    char range[64];
    std::snprintf(range, sizeof range, "[%g, %g]", lo, hi);
    return featx::invalid_argument(name + " must be a number in " + range + ", got '" + featx::printable(s) + "'");
  }
  *out = v;
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
