// featx/status.hpp: errors as values.
//
// Every fallible library call returns a Status (or fills an out-parameter and
// returns one). Messages are one line and name the file or tensor and the
// problem, e.g. "model.featx: checksum mismatch (payload corrupt)". The
// exception-throwing convenience layer in featx.hpp is built on top and can be
// compiled out with FEATX_NO_EXCEPTIONS.
#pragma once

#include <string>
#include <utility>

namespace featx {

enum class StatusCode {
  ok = 0,
  invalid_argument,   // bad shapes, options or inputs from the caller
  not_found,          // a file or named layer that does not exist
  io_error,           // a file that exists but cannot be read
  corrupt,            // a model or image whose bytes are damaged or of the wrong kind
  unsupported,        // a valid file using something featx does not implement
  internal,
};

class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  // An error whose message is a string literal, made without allocating
  // (run() reports with these: it allocates on no path).
  static Status Literal(StatusCode code, const char* message) noexcept {
    Status s;
    s.code_ = code;
    s.literal_ = message;
    return s;
  }

  bool ok() const { return code_ == StatusCode::ok; }
  explicit operator bool() const { return ok(); }
  StatusCode code() const { return code_; }
  std::string message() const { return literal_ ? std::string(literal_) : message_; }

 private:
  StatusCode code_ = StatusCode::ok;
  std::string message_;
  const char* literal_ = nullptr;
};

inline Status invalid_argument(std::string m) { return Status(StatusCode::invalid_argument, std::move(m)); }
inline Status not_found(std::string m) { return Status(StatusCode::not_found, std::move(m)); }
inline Status io_error(std::string m) { return Status(StatusCode::io_error, std::move(m)); }
inline Status corrupt(std::string m) { return Status(StatusCode::corrupt, std::move(m)); }
inline Status unsupported(std::string m) { return Status(StatusCode::unsupported, std::move(m)); }

// Text read from a file (a layer or class name), fit for a one-line error
// message: control bytes (newlines too) become \xNN.
inline std::string printable(const std::string& text) {
  static const char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c != 0x7f) {
      out.push_back(ch);
    } else {
      out += "\\x";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

}  // namespace featx

// Propagates a non-ok Status to the caller.
#define FEATX_RETURN_IF_ERROR(expr)            \
  do {                                         \
    ::featx::Status featx_status_ = (expr);    \
    if (!featx_status_.ok()) return featx_status_; \
  } while (0)
