// examples/similar.cpp: the nearest photos of each query by cosine
// similarity. Builds an index of VECTORS.npy (from batch_extract or `featx
// extract`), saves it as INDEX.fxi, opens that file again (memory-mapped,
// every byte checked, as a search service would) and searches it with the
// rows of QUERIES.npy. `featx index` / `featx search` are the CLI for this
// (docs/search.md).
//
//   similar VECTORS.npy QUERIES.npy INDEX.fxi [K]
// Prints each query's K nearest (default 3) with their scores, then how many
// queries have a nearest row of their own name (views of one photo find it).
#include <cstdio>
#include <cstdlib>

#include <featx/search.hpp>

#include "vectors_file.hpp"

int main(int argc, char** argv) {
  if (argc < 4 || argc > 5) return std::fprintf(stderr, "usage: similar VECTORS.npy QUERIES.npy INDEX.fxi [K]\n"), 2;
  Vectors database, queries;
  featx::Status st = read_vectors(argv[1], &database);
  if (st) st = read_vectors(argv[2], &queries);
  featx::VectorIndex built, index;
  if (st) st = featx::VectorIndex::build(database.data.data(), database.rows, database.dims, 0, database.names,
                                         argv[1], &built);
  if (st) st = built.save(argv[3]);
  if (st) st = featx::VectorIndex::open(argv[3], &index);
  featx::SearchOptions options;
  options.k = argc == 5 ? size_t(std::atoi(argv[4])) : 3;
  featx::SearchResults results;
  if (st) st = index.search(queries.data.data(), queries.rows, queries.dims, options, &results);
  if (!st) return std::fprintf(stderr, "similar: %s\n", st.message().c_str()), 1;

  size_t found_own = 0;
  for (size_t q = 0; q < queries.rows; ++q) {
    std::printf("%s\n", queries.names[q].c_str());
    for (size_t j = 0; j < results.counts[q]; ++j)
      std::printf("  %.4f  %s\n", results.of(q)[j].score, index.name(results.of(q)[j].index).c_str());
    found_own += results.counts[q] > 0 && index.name(results.of(q)[0].index) == queries.names[q];
  }
  std::printf("%zu of %zu queries: nearest is their own photo (index of %zu vectors, %zu bytes)\n", found_own,
              queries.rows, index.size(), index.file_bytes());
}
