// fuzz/fuzz_common.hpp: what every featx libFuzzer harness shares.
//
// The contract each harness checks: a reader given arbitrary bytes either
// succeeds or returns a failing Status whose message is one non-empty line.
// Anything else (an exception escaping, an empty or multi-line message, a
// sanitizer report) aborts, which libFuzzer records as a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "featx/status.hpp"

namespace featx_fuzz {

[[noreturn]] inline void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "featx fuzz: %s: %s\n", what, detail.c_str());
  std::abort();
}

// Accepts success or a one-line error; returns st.ok().
inline bool check(const featx::Status& st, const char* what) {
  if (st.ok()) return true;
  const std::string m = st.message();
  if (m.empty()) fail(what, "failing Status with an empty message");
  if (m.find_first_of("\n\r") != std::string::npos) fail(what, "multi-line error message: " + m);
  return false;
}

// Runs the harness body; an exception escaping it is a finding.
template <class Body>
int guarded(Body&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    fail("exception escaped", e.what());
  } catch (...) {
    fail("exception escaped", "(not a std::exception)");
  }
  return 0;
}

// Takes option bytes off the front of the input; 0 once it is exhausted.
struct Bytes {
  const uint8_t* data;
  size_t size;
  uint8_t take() {
    if (size == 0) return 0;
    --size;
    return *data++;
  }
};

}  // namespace featx_fuzz
