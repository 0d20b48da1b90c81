// examples/vectors_file.hpp: the examples' one way to read what
// batch_extract (or `featx extract`) wrote: OUT.npy, float32 (rows, dims),
// and OUT.npy.names.txt, one name per row.
#pragma once

#include <fstream>
#include <string>
#include <vector>

#include <featx/npy.hpp>

struct Vectors {
  std::vector<float> data;  // rows x dims
  size_t rows = 0, dims = 0;
  std::vector<std::string> names;
  const float* row(size_t i) const { return data.data() + i * dims; }
};

inline featx::Status read_vectors(const std::string& npy_path, Vectors* out) {
  featx::NpyArray a;
  FEATX_RETURN_IF_ERROR(featx::read_npy(npy_path, &a));
  if (a.shape.size() != 2 || a.shape[0] < 1)
    return featx::invalid_argument(npy_path + ": expected a (rows, dims) array of at least one row, got rank " +
                                   std::to_string(a.shape.size()));
  out->rows = size_t(a.shape[0]);
  out->dims = size_t(a.shape[1]);
  out->data = std::move(a.data);
  const std::string names_path = npy_path + ".names.txt";
  std::ifstream in(names_path);
  if (!in) return featx::io_error(names_path + ": cannot open");
  out->names.clear();
  for (std::string line; std::getline(in, line);) out->names.push_back(line);
  if (out->names.size() != out->rows)
    return featx::corrupt(names_path + ": " + std::to_string(out->names.size()) + " names for " +
                          std::to_string(out->rows) + " rows");
  return featx::Status::Ok();
}
