// libFuzzer harness: VectorIndex::from_memory on the bytes (a whole .fxi
// file), then one query (k = 3) and the names of what it found.
#include <vector>

#include "featx/search.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return featx_fuzz::guarded([&] {
    featx::VectorIndex index;
    if (!featx_fuzz::check(featx::VectorIndex::from_memory(data, size, "fuzz.fxi", &index), "VectorIndex::from_memory"))
      return;
    if (index.dims() < 1) featx_fuzz::fail("VectorIndex::from_memory", "success with no dims");
    std::vector<float> query(index.dims());
    for (size_t i = 0; i < query.size(); ++i) query[i] = float(i % 3) - 1.0f;
    featx::SearchOptions options;
    options.k = 3;
    options.threads = 1;
    featx::SearchResults results;
    if (!featx_fuzz::check(index.search(query.data(), 1, query.size(), options, &results), "VectorIndex::search"))
      return;
    for (size_t i = 0; i < results.counts.at(0); ++i) {
      const uint64_t row = results.of(0)[i].index;
      if (row >= index.size()) featx_fuzz::fail("VectorIndex::search", "a neighbour past the last row");
      (void)index.name(size_t(row));
    }
  });
}
