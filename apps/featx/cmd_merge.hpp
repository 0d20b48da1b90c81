// `featx merge -o OUT.npy PART.npy...`: the outputs of `featx extract
// --shard K/N` joined into the unsharded output, byte for byte: rows, names
// and errors in input order. Parts may be given in any order; each one's
// PART.npy.shard.txt says which block of which input list it holds, and
// all N blocks of one list must be there, once each.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "args.hpp"
#include "extract_output.hpp"
#include "featx/npy.hpp"
#include "featx/npy_writer.hpp"
#include "featx/status.hpp"

namespace featx_cli {

struct ShardPart {
  std::string path;
  int index = 0, count = 0;
  size_t first = 0, end = 0;
  std::string run;  // the run's model, options and input list (extract's job without the shard)
  std::vector<int64_t> shape;
  size_t data_offset = 0;
};

inline featx::Status read_shard_part(const std::string& path, ShardPart* part) {
  part->path = path;
  std::vector<std::string> lines;
  const std::string record = path + ".shard.txt";
  if (!read_complete_lines(record, &lines))
    return featx::not_found(path + ": no " + record + " beside it (not an output of featx extract --shard)");
  if (lines.size() < 5 || lines[0] != "featx shard 2" ||
      std::sscanf(lines[1].c_str(), "shard %d %d", &part->index, &part->count) != 2 ||
      std::sscanf(lines[2].c_str(), "range %zu %zu", &part->first, &part->end) != 2 ||
      lines[3].compare(0, 19, "featx extract job 1") != 0 || part->count < 1 || part->index < 0 ||
      part->index >= part->count || part->first > part->end)
    return featx::corrupt(record + ": not a featx shard record");
  for (size_t i = 3; i < lines.size(); ++i) part->run += lines[i] + "\n";
  uint8_t head[featx::kStreamHeaderBytes] = {};
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return featx::not_found(path + ": cannot open");
  const size_t got = std::fread(head, 1, sizeof head, f);
  const int err = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (err) return featx::io_error(path + ": read failed (" + std::strerror(err) + ")");
  if (got == 0) return featx::corrupt(path + ": empty file (not an .npy file)");
  FEATX_RETURN_IF_ERROR(featx::read_npy_header(head, got, path, &part->shape, &part->data_offset));
  // Its size bounds what cmd_merge copies (rows x row floats x 4 bytes).
  size_t count = 0;
  if (!featx::npy_detail::element_count(part->shape, &count))
    return featx::corrupt(path + ": absurd shape " + featx::npy_detail::shape_string(part->shape) +
                          " (size overflows)");
  return featx::Status::Ok();
}

// Appends `bytes` bytes of `from`, starting at `offset`, to `to`.
inline featx::Status copy_bytes(const std::string& from, size_t offset, size_t bytes, featx::NpyRowWriter* to,
                                size_t row_floats) {
  std::FILE* f = std::fopen(from.c_str(), "rb");
  if (!f) return featx::not_found(from + ": cannot open");
  std::vector<float> chunk;
  const size_t rows_per_chunk = std::max<size_t>(1, (size_t(4) << 20) / (row_floats * sizeof(float)));
  featx::Status st = featx::Status::Ok();
  if (std::fseek(f, long(offset), SEEK_SET) != 0) st = featx::io_error(from + ": cannot seek");
  for (size_t left = bytes / (row_floats * sizeof(float)); st.ok() && left > 0;) {
    const size_t rows = std::min(left, rows_per_chunk);
    chunk.resize(rows * row_floats);
    if (std::fread(chunk.data(), sizeof(float), chunk.size(), f) != chunk.size())
      st = featx::corrupt(from + ": truncated data");
    else st = to->append(chunk.data(), rows);
    left -= rows;
  }
  std::fclose(f);
  return st;
}

// Appends the lines of `from` (when it exists) to `to`.
inline featx::Status append_lines(const std::string& from, std::FILE* to, size_t* count) {
  std::vector<std::string> lines;
  if (!read_complete_lines(from, &lines)) return featx::Status::Ok();
  for (const std::string& l : lines) std::fprintf(to, "%s\n", l.c_str());
  *count += lines.size();
  return featx::Status::Ok();
}

inline featx::Status cmd_merge(const Args& args) {
  const std::string out = args.get("--output");
  if (out.size() < 5 || out.compare(out.size() - 4, 4, ".npy") != 0)
    return featx::invalid_argument("featx merge needs -o OUT.npy");
  if (args.positional.empty()) return featx::invalid_argument("featx merge: no parts given");
  std::vector<ShardPart> parts(args.positional.size());
  for (size_t i = 0; i < parts.size(); ++i) FEATX_RETURN_IF_ERROR(read_shard_part(args.positional[i], &parts[i]));
  std::sort(parts.begin(), parts.end(), [](const ShardPart& a, const ShardPart& b) { return a.index < b.index; });
  const ShardPart& p0 = parts.front();
  std::vector<int64_t> row_shape;
  for (size_t i = 0; i < parts.size(); ++i) {
    const ShardPart& p = parts[i];
    if (p.count != p0.count || p.run != p0.run)
      return featx::invalid_argument(p.path + ".shard.txt: shard of another run than " + p0.path +
                                     ".shard.txt (another model, options, input list or shard count)");
    if (i > 0 && p.index == parts[i - 1].index)
      return featx::invalid_argument(p.path + ": shard " + std::to_string(p.index) + " given twice (also " +
                                     parts[i - 1].path + ")");
    if (p.index != int(i))
      return featx::invalid_argument(p0.path + ": shard " + std::to_string(i) + " of " + std::to_string(p0.count) +
                                     " is missing");
    if (p.shape.size() > 1 || (p.shape.size() == 1 && p.shape[0] != 0)) {  // shape (0,): no rows
      const std::vector<int64_t> rows(p.shape.begin() + 1, p.shape.end());
      if (!row_shape.empty() && rows != row_shape)
        return featx::invalid_argument(p.path + ": rows of shape " + featx::npy_detail::shape_string(rows) +
                                       ", other parts have " + featx::npy_detail::shape_string(row_shape));
      row_shape = rows;
    }
  }
  if (int(parts.size()) != p0.count)
    return featx::invalid_argument(p0.path + ": shard " + std::to_string(parts.size()) + " of " +
                                   std::to_string(p0.count) + " is missing");

  const std::string names_path = out + ".names.txt", errors_path = out + ".errors.txt";
  // An earlier output of this name (its errors file above all) is not this merge's.
  for (const std::string& old : {out, names_path, errors_path}) std::remove(old.c_str());
  featx::NpyRowWriter data;
  FEATX_RETURN_IF_ERROR(featx::NpyRowWriter::create(out + ".part", row_shape, &data));
  std::FILE* names = std::fopen((names_path + ".part").c_str(), "wb");
  std::FILE* errors = std::fopen((errors_path + ".part").c_str(), "wb");
  featx::Status st = names && errors ? featx::Status::Ok() : featx::io_error(out + ": cannot create its names or errors file");
  size_t name_count = 0, error_count = 0;
  for (const ShardPart& p : parts) {
    if (!st) break;
    size_t rows = 0;
    if (!row_shape.empty() && p.shape.size() > 1) {
      rows = size_t(p.shape[0]);
      st = copy_bytes(p.path, p.data_offset, rows * data.row_floats() * sizeof(float), &data, data.row_floats());
    }
    const size_t before = name_count;
    if (st) st = append_lines(p.path + ".names.txt", names, &name_count);
    if (st && name_count - before != rows)
      st = featx::corrupt(p.path + ".names.txt: " + std::to_string(name_count - before) + " names for " +
                          std::to_string(rows) + " rows");
    if (st) st = append_lines(p.path + ".errors.txt", errors, &error_count);
  }
  if (names && std::fclose(names) != 0 && st) st = featx::io_error(names_path + ": write failed");
  if (errors && std::fclose(errors) != 0 && st) st = featx::io_error(errors_path + ": write failed");
  if (st) st = data.finish();
  if (st && std::rename((names_path + ".part").c_str(), names_path.c_str()) != 0)
    st = featx::io_error(names_path + ": cannot rename");
  if (st && error_count && std::rename((errors_path + ".part").c_str(), errors_path.c_str()) != 0)
    st = featx::io_error(errors_path + ": cannot rename");
  if (st && std::rename((out + ".part").c_str(), out.c_str()) != 0) st = featx::io_error(out + ": cannot rename");
  if (!error_count || !st) std::remove((errors_path + ".part").c_str());
  if (!st) {
    std::remove((out + ".part").c_str());
    std::remove((names_path + ".part").c_str());
  }
  return st;
}

}  // namespace featx_cli
