// Where `featx extract` puts its rows: a streamed .npy (names and errors in
// text files beside it), a .csv or .jsonl file, or JSON lines on stdout.
//
// Files are written under a ".part" suffix and renamed when the run ends,
// the data file last, so a killed run never leaves a file that looks
// complete. The .npy output can be resumed (--resume): the ".part" files
// then hold every input that was committed, in input order: each input gave
// its rows (named in OUT.npy.names.txt.part) or one line in
// OUT.npy.errors.txt.part; rows past the last committed name are cut off,
// and OUT.npy.job.part must describe the same job (model, options, inputs).
#pragma once

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <unistd.h>

#include "featx/detail/checked_size.hpp"
#include "featx/npy_writer.hpp"
#include "featx/status.hpp"
#include "writers.hpp"

namespace featx_cli {

// One line per element; false when the file cannot be read. A last line
// without its '\n' (a write cut short) is not complete and not returned.
inline bool read_complete_lines(const std::string& path, std::vector<std::string>* lines) {
  lines->clear();
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  std::string line;
  int c;
  while ((c = std::fgetc(f)) != EOF) {
    if (c == '\n') {
      lines->push_back(line);
      line.clear();
    } else {
      line.push_back(char(c));
    }
  }
  std::fclose(f);
  return true;
}

inline bool file_exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

class ExtractOutput {
 public:
  ExtractOutput() = default;
  ExtractOutput(const ExtractOutput&) = delete;
  ExtractOutput& operator=(const ExtractOutput&) = delete;
  ~ExtractOutput() {
    for (std::FILE* f : {names_, errors_, text_})
      if (f && f != stdout) std::fclose(f);
  }

  // Opens the output for inputs[first..end). `job` describes the run (a
  // resumed one must match it). With `resume`, *resume_at is the first
  // input still to run; else first.
  featx::Status open(const std::string& path, const std::string& job, bool resume,
                     const std::vector<std::string>& inputs, size_t first, size_t end, size_t* resume_at) {
    path_ = path;
    *resume_at = first;
    const bool to_stdout = path.empty() || path == "-";
    npy_ = !to_stdout && ends_with(path, ".npy");
    csv_ = !to_stdout && ends_with(path, ".csv");
    if (!to_stdout && !npy_ && !csv_ && !ends_with(path, ".jsonl"))
      return featx::invalid_argument(path + ": unknown output format (use .npy, .csv or .jsonl)");
    if (resume && !npy_)
      return featx::invalid_argument((to_stdout ? std::string("stdout") : path) +
                                     ": --resume needs an .npy output (-o OUT.npy)");
    if (to_stdout) {
      text_ = stdout;
      return featx::Status::Ok();
    }
    errors_path_ = path + ".errors.txt";
    // A run killed while renaming its files at the end (or just after) has
    // some files final and others ".part": resuming takes the final ones
    // back, and the walk below then finds every input done.
    if (resume && npy_ && file_exists(part(path + ".job")))
      for (const std::string& f : {path, path + ".names.txt", errors_path_})
        if (!file_exists(part(f)) && file_exists(f) && std::rename(f.c_str(), part(f).c_str()) != 0)
          return featx::io_error(f + ": cannot rename it back to " + part(f));
    // A finished output of an earlier run would look like this run's.
    for (const std::string& old : {path, path + ".names.txt", errors_path_}) std::remove(old.c_str());
    if (!npy_) {
      text_ = std::fopen(part(path).c_str(), "wb");
      if (!text_) return featx::io_error(part(path) + ": cannot create (" + std::strerror(errno) + ")");
      return open_errors("wb");
    }
    names_path_ = path + ".names.txt";
    job_path_ = path + ".job";
    if (resume && file_exists(part(job_path_))) {
      FEATX_RETURN_IF_ERROR(reopen(job, inputs, first, end, resume_at));
    } else {
      FEATX_RETURN_IF_ERROR(write_text_file(part(job_path_), job));
      names_ = std::fopen(part(names_path_).c_str(), "wb");
      if (!names_) return featx::io_error(part(names_path_) + ": cannot create (" + std::strerror(errno) + ")");
      FEATX_RETURN_IF_ERROR(open_errors("wb"));
      std::remove(part(path).c_str());  // created with the first rows
    }
    return featx::Status::Ok();
  }

  // Rows of one batch (n x row_shape floats), named in order.
  featx::Status add_rows(const std::vector<std::string>& names, const float* rows, size_t n,
                         const std::vector<int64_t>& row_shape) {
    const bool first_rows = npy_ ? data_.row_floats() == 0 : row_shape_.empty();
    if (first_rows && npy_) FEATX_RETURN_IF_ERROR(featx::NpyRowWriter::create(part(path_), row_shape, &data_));
    if (first_rows) row_shape_ = row_shape;
    if (row_shape != row_shape_)
      return featx::invalid_argument(names.front() + ": output shape differs from earlier "
                                     "inputs (use --pool avg/max or inputs of one size)");
    featx::detail::SizeCheck size;  // the plan checked its output's size: a guard only
    const size_t per = size.product(row_shape);
    if (size.overflow) return featx::invalid_argument(names.front() + ": output rows of absurd shape");
    if (npy_) {
      FEATX_RETURN_IF_ERROR(data_.append(rows, n));
      pending_names_.insert(pending_names_.end(), names.begin(), names.begin() + std::ptrdiff_t(n));
      return featx::Status::Ok();
    }
    for (size_t i = 0; i < n; ++i)
      write_text_row(text_, csv_, Row{names[i], std::vector<float>(rows + i * per, rows + (i + 1) * per)},
                     row_shape);
    return featx::Status::Ok();
  }

  // An input that could not be read or run (`message` names it).
  void add_error(const std::string& input, const std::string& message) {
    pending_errors_.push_back(input + "\t" + message);
    ++errors_written_;
  }

  // Makes the rows and errors added so far part of the output: after this
  // a resumed run does not compute them again.
  featx::Status commit() {
    for (const std::string& n : pending_names_) std::fprintf(names_, "%s\n", n.c_str());
    for (const std::string& e : pending_errors_)
      if (errors_) std::fprintf(errors_, "%s\n", e.c_str());
    pending_names_.clear();
    pending_errors_.clear();
    bool failed = false;
    for (std::FILE* f : {names_, errors_, text_})
      if (f) failed |= std::fflush(f) != 0 || std::ferror(f) != 0;
    if (failed) return featx::io_error(path_ + ": write failed (" + std::strerror(errno) + ")");
    return featx::Status::Ok();
  }

  // Ends the run: the files take their final names (the data file last);
  // the errors file only when some input failed.
  featx::Status finish() {
    FEATX_RETURN_IF_ERROR(commit());
    if (text_ == stdout) return featx::Status::Ok();
    // No input gave rows: an empty array, shape (0,), keeps the files in step.
    if (npy_ && !data_.row_floats()) FEATX_RETURN_IF_ERROR(featx::NpyRowWriter::create(part(path_), {}, &data_));
    FEATX_RETURN_IF_ERROR(close_file(&names_, names_path_));
    FEATX_RETURN_IF_ERROR(close_file(&errors_, errors_path_));
    FEATX_RETURN_IF_ERROR(close_file(&text_, path_));
    if (npy_) FEATX_RETURN_IF_ERROR(data_.finish());
    if (!names_path_.empty()) FEATX_RETURN_IF_ERROR(rename_part(names_path_));
    if (errors_written_) FEATX_RETURN_IF_ERROR(rename_part(errors_path_));
    else std::remove(part(errors_path_).c_str());
    FEATX_RETURN_IF_ERROR(rename_part(path_));
    if (!job_path_.empty()) std::remove(part(job_path_).c_str());
    return featx::Status::Ok();
  }

  // After a failed run: removes the ".part" files when nothing was committed
  // (a resumed run could not reuse anything), keeps them otherwise.
  void abandon() {
    if (!names_path_.empty() && (data_.rows() || errors_written_)) return;
    for (std::FILE** f : {&names_, &errors_, &text_}) {
      if (*f && *f != stdout) std::fclose(*f);
      *f = nullptr;
    }
    if (path_.empty() || path_ == "-") return;
    for (const std::string& p : {path_, names_path_, errors_path_, job_path_})
      if (!p.empty()) std::remove(part(p).c_str());
  }

  size_t errors() const { return errors_written_; }
  // Rows and errors a resumed run found committed.
  size_t resumed_rows() const { return resumed_rows_; }
  const std::string& errors_path() const { return errors_path_; }

 private:
  static std::string part(const std::string& path) { return path + ".part"; }
  static bool ends_with(const std::string& s, const char* ext) {
    const size_t n = std::strlen(ext);
    return s.size() >= n && s.compare(s.size() - n, n, ext) == 0;
  }

  static featx::Status write_text_file(const std::string& path, const std::string& text) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return featx::io_error(path + ": cannot create (" + std::strerror(errno) + ")");
    const bool wrote = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    if (std::fclose(f) != 0 || !wrote) return featx::io_error(path + ": write failed");
    return featx::Status::Ok();
  }

  featx::Status open_errors(const char* mode) {
    errors_ = std::fopen(part(errors_path_).c_str(), mode);
    if (!errors_) return featx::io_error(part(errors_path_) + ": cannot create (" + std::strerror(errno) + ")");
    return featx::Status::Ok();
  }

  // Closes *f (flushed to disk) if open.
  featx::Status close_file(std::FILE** f, const std::string& final_path) {
    if (!*f) return featx::Status::Ok();
    const bool ok = std::fflush(*f) == 0 && ::fsync(::fileno(*f)) == 0;
    const bool closed = std::fclose(*f) == 0;
    *f = nullptr;
    if (!ok || !closed) return featx::io_error(part(final_path) + ": write failed (" + std::strerror(errno) + ")");
    return featx::Status::Ok();
  }

  featx::Status rename_part(const std::string& final_path) {
    if (std::rename(part(final_path).c_str(), final_path.c_str()) != 0)
      return featx::io_error(final_path + ": cannot rename " + part(final_path) + " (" + std::strerror(errno) + ")");
    return featx::Status::Ok();
  }

  // Picks up a killed run: which inputs it committed, then its files cut
  // back to exactly those.
  featx::Status reopen(const std::string& job, const std::vector<std::string>& inputs, size_t first, size_t end,
                       size_t* resume_at) {
    std::vector<std::string> job_lines, names, errors;
    std::string stored;
    if (!read_complete_lines(part(job_path_), &job_lines))
      return featx::io_error(part(job_path_) + ": cannot read");
    for (const std::string& l : job_lines) stored += l + "\n";
    if (stored != job)
      return featx::invalid_argument(part(job_path_) + ": the unfinished run of " + path_ +
                                     " had another model, options or inputs (run without --resume to start over)");
    if (!read_complete_lines(part(names_path_), &names))
      return featx::io_error(path_ + ": the unfinished run lacks its names file " + part(names_path_) +
                             " (run without --resume to start over)");
    read_complete_lines(part(errors_path_), &errors);  // absent once a run without failures finished
    size_t rows = names.size();
    if (file_exists(part(path_))) {
      FEATX_RETURN_IF_ERROR(featx::NpyRowWriter::reopen(part(path_), rows, &data_));
      rows = data_.rows();
      row_shape_ = data_.row_shape();
    } else {
      rows = 0;
    }
    // Walk the inputs in order: each committed one is its rows' names or
    // its error line, the first one that is neither is where the run goes on.
    size_t r = 0, e = 0, i = first;
    for (; i < end; ++i) {
      const std::string& in = inputs[i];
      if (r < rows && names[r] == in) {
        ++r;
      } else if (r < rows && names[r].compare(0, in.size() + 1, in + "[") == 0) {
        size_t k = 0;
        while (r + k < rows && names[r + k] == in + "[" + std::to_string(k) + "]") ++k;
        r += k;
      } else if (e < errors.size() && errors[e].compare(0, in.size() + 1, in + "\t") == 0) {
        ++e;
      } else {
        break;
      }
    }
    *resume_at = i;
    resumed_rows_ = r;
    errors_written_ = e;
    if (data_.row_floats()) FEATX_RETURN_IF_ERROR(data_.truncate_to(r));
    names_ = std::fopen(part(names_path_).c_str(), "wb");
    FEATX_RETURN_IF_ERROR(open_errors("wb"));
    if (!names_) return featx::io_error(part(names_path_) + ": cannot write");
    pending_names_.assign(names.begin(), names.begin() + std::ptrdiff_t(r));
    pending_errors_.assign(errors.begin(), errors.begin() + std::ptrdiff_t(e));
    return commit();
  }

  std::string path_, names_path_, errors_path_, job_path_;
  bool npy_ = false, csv_ = false;
  featx::NpyRowWriter data_;
  std::vector<int64_t> row_shape_;  // text outputs
  std::FILE* names_ = nullptr;
  std::FILE* errors_ = nullptr;
  std::FILE* text_ = nullptr;
  std::vector<std::string> pending_names_, pending_errors_;
  size_t errors_written_ = 0, resumed_rows_ = 0;
};

}  // namespace featx_cli
