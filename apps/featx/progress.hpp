// The progress line of `featx extract` on a terminal: a bar, counts, rate
// and ETA on stderr, redrawn at most ten times a second. Silent when stderr
// is not a terminal (logs, pipes) or with --quiet.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

#include <unistd.h>

namespace featx_cli {

class Progress {
 public:
  // `total`: inputs this run goes through (after --resume's skipped ones).
  Progress(size_t total, bool quiet) : total_(total), enabled_(!quiet && ::isatty(2)), start_(Clock::now()) {}

  void update(size_t done, size_t failed) {
    done_ = done;
    failed_ = failed;
    if (!enabled_) return;
    const Clock::time_point now = Clock::now();
    if (drawn_ && now - last_ < std::chrono::milliseconds(100) && done != total_) return;
    last_ = now;
    drawn_ = true;
    const double rate = images_per_second();
    const int width = 30;
    const int filled = total_ ? int(double(width) * double(done) / double(total_)) : width;
    std::string bar(size_t(filled), '#');
    bar.append(size_t(width - filled), '.');
    std::string eta = "--:--";
    if (rate > 0 && done < total_) eta = clock_text(double(total_ - done) / rate);
    std::fprintf(stderr, "\r[%s] %zu/%zu%s  %.1f images/s  ETA %s \033[K", bar.c_str(), done, total_,
                 failed ? (", " + std::to_string(failed) + " failed").c_str() : "", rate, eta.c_str());
    std::fflush(stderr);
  }

  // Clears the bar so that another line can be printed; the next update
  // draws it again.
  void clear_line() {
    if (enabled_ && drawn_) std::fputs("\r\033[K", stderr);
    drawn_ = false;
  }

  // Ends the line the bar was drawn on.
  void finish() {
    if (enabled_ && drawn_) std::fputc('\n', stderr);
    drawn_ = false;
  }

  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  double images_per_second() const {
    const double s = seconds();
    return s > 0 ? double(done_) / s : 0.0;
  }

 private:
  using Clock = std::chrono::steady_clock;

  static std::string clock_text(double seconds) {
    const long s = long(seconds + 0.5);
    char buf[32];
    if (s >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
    return buf;
  }

  size_t total_, done_ = 0, failed_ = 0;
  bool enabled_, drawn_ = false;
  Clock::time_point start_, last_;
};

}  // namespace featx_cli
