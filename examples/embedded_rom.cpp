// examples/embedded_rom.cpp: a prepacked model linked into the program as a
// const array (ROM on a microcontroller, .rodata here), run in place.
//
// The model is a prepacked .featx (export_weights.py --prepacked), linked by
// embedded_rom_model.S (.incbin, 64-byte aligned). Model::from_embedded
// reads its weights where they lie: nothing is folded or copied
// (folded_bytes() == 0), and the RAM a run needs is the plan's workspace,
// which the caller provides. The program runs the golden samples stored in
// the model through featx::Plan and featx::run, checks each against its
// tolerance, and prints the RAM figures. Exit 0 only when all of it holds.
//
//   embedded_rom              the linked model
//   embedded_rom MODEL.featx  Model::load of a file instead (to compare RAM)
//
// Build by hand (docs/embedded.md):
//   g++ -c -DFEATX_ROM_MODEL='"model_prepacked.featx"' examples/embedded_rom_model.S -o rom.o
//   g++ -O2 -std=c++17 -fopenmp -Iinclude examples/embedded_rom.cpp rom.o -o embedded_rom
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

// Only the model, plan and run headers: no image decoder in a ROM build.
#include <featx/model.hpp>
#include <featx/plan.hpp>
#include <featx/run.hpp>

// From embedded_rom_model.S.
extern "C" const unsigned char featx_model_rom[];
extern "C" const unsigned char featx_model_rom_end[];

namespace {

int fail(const std::string& what) {
  std::fprintf(stderr, "embedded_rom: %s\n", what.c_str());
  return 1;
}

bool pool_from_name(const std::string& name, featx::Pool* pool) {
  if (name.empty() || name == "avg") *pool = featx::Pool::avg;
  else if (name == "max") *pool = featx::Pool::max;
  else if (name == "none") *pool = featx::Pool::none;
  else return false;
  return true;
}

// Resident-set figures of this process in KiB: the peak (getrusage; Linux
// counts KiB), and from /proc/self/status the current split into anonymous
// memory (heap, stacks: RAM proper) and file-backed pages (the program's
// own .rodata, where the model lies, and mapped files: ROM or page cache).
struct Rss {
  long peak_kib = 0, anon_kib = -1, file_kib = -1;
};

Rss rss() {
  Rss r;
  struct rusage usage;
  if (getrusage(RUSAGE_SELF, &usage) == 0) r.peak_kib = usage.ru_maxrss;
  std::ifstream status("/proc/self/status");
  std::string key;
  long value;
  while (status >> key) {
    if (key == "RssAnon:" && status >> value) r.anon_kib = value;
    else if (key == "RssFile:" && status >> value) r.file_kib = value;
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 2) return fail("usage: embedded_rom [MODEL.featx]");
  std::shared_ptr<const featx::Model> model;
  featx::Status st;
  if (argc == 2) {
    st = featx::Model::load(argv[1], &model);
  } else {
    const size_t size = size_t(featx_model_rom_end - featx_model_rom);
    st = featx::Model::from_embedded(featx_model_rom, size, "featx_model_rom", &model);
  }
  if (!st.ok()) return fail(st.message());
  std::printf("model: %s, %zu bytes, %s, format version %u, %s\n", model->name().c_str(),
              model->file_bytes(), argc == 2 ? "Model::load" : "Model::from_embedded",
              model->format_version(), model->prepacked() ? "prepacked" : "not prepacked");
  const size_t folded = model->folded_bytes();
  std::printf("folded_bytes: %zu\n", folded);

  const auto goldens = model->goldens();
  if (goldens.empty()) return fail(model->name() + ": no golden samples stored (export with goldens)");
  int failures = 0;
  size_t largest_workspace = 0, largest_plan = 0;
  std::vector<unsigned char> workspace;  // grows to the largest plan's need
  for (const featx::GoldenView& g : goldens) {
    featx::PlanOptions options;
    options.height = g.height;
    options.width = g.width;
    options.batch = 1;
    if (!pool_from_name(g.pool, &options.pool)) return fail(g.name + ": unknown pool '" + g.pool + "'");
    featx::Plan plan;
    st = featx::Plan::make(model, options, &plan);
    if (!st.ok()) return fail(st.message());
    if (plan.output_elements_per_image() != g.output_size)
      return fail(g.name + ": the plan gives " + std::to_string(plan.output_elements_per_image()) +
                  " outputs, the golden has " + std::to_string(g.output_size));
    if (workspace.size() < plan.workspace_bytes()) workspace.resize(plan.workspace_bytes());
    largest_workspace = std::max(largest_workspace, plan.workspace_bytes());
    largest_plan = std::max(largest_plan, plan.plan_bytes());
    std::vector<float> output(plan.output_elements());
    st = featx::run(plan, g.input, 1, workspace.data(), workspace.size(), output.data(), output.size());
    if (!st.ok()) return fail(st.message());
    double max_abs = 0.0;
    for (size_t i = 0; i < g.output_size; ++i)
      max_abs = std::max(max_abs, std::fabs(double(output[i]) - double(g.output[i])));
    const bool pass = max_abs <= double(g.max_abs_tolerance);  // NaN fails too
    failures += !pass;
    std::printf("%s %s %dx%d max_abs_err %.3g (tolerance %.3g, reference %s)\n", pass ? "PASS" : "FAIL",
                g.name.c_str(), g.height, g.width, max_abs, double(g.max_abs_tolerance),
                g.reference.c_str());
  }
  const Rss r = rss();
  std::printf("workspace_bytes: %zu (largest plan), plan_bytes: %zu\n", largest_workspace, largest_plan);
  std::printf("peak_rss_kib: %ld (RssAnon %ld KiB, RssFile %ld KiB at exit)\n", r.peak_kib, r.anon_kib,
              r.file_kib);
  if (failures) return fail(std::to_string(failures) + " of " + std::to_string(goldens.size()) +
                            " golden samples outside their tolerance");
  if (argc == 1 && folded != 0)
    return fail("folded_bytes() is " + std::to_string(folded) +
                ", expected 0: link a prepacked model (export_weights.py --prepacked)");
  return 0;
}
