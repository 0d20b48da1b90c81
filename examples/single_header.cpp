// examples/single_header.cpp: featx from one header, checked on the model's
// own goldens (outputs of an independent reference, ONNX Runtime, stored in
// the .featx file by the exporter), through the plan / workspace / run API.
//
//   c++ -std=c++17 -O2 -fopenmp -I single_include/featx examples/single_header.cpp -o golden_check
//   ./golden_check model.featx
//
// Prints one line per golden and exits 1 when any differs by more than its
// stored tolerance, 2 on usage errors. Needs no FlatBuffers or stb headers;
// it builds with -fno-exceptions -fno-rtti as well (tests/no_exceptions_test.sh
// also builds it through include/ instead of the single header).
#include "featx.hpp"

#include <cmath>
#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s MODEL.featx\n", argv[0]);
    return 2;
  }
  std::shared_ptr<const featx::Model> model;
  featx::Status st = featx::Model::load(argv[1], &model);
  if (!st.ok()) {
    std::fprintf(stderr, "golden check: %s\n", st.message().c_str());
    return 1;
  }
  const std::vector<featx::GoldenView> goldens = model->goldens();
  if (goldens.empty()) {
    std::fprintf(stderr, "golden check: %s: no golden samples stored\n", argv[1]);
    return 1;
  }
  int failures = 0;
  for (const featx::GoldenView& g : goldens) {
    // A plan for the golden's size and pooling; run() then works in buffers
    // this program owns and neither allocates nor throws.
    featx::PlanOptions options;
    options.height = g.height;
    options.width = g.width;
    st = featx::parse_pool(g.pool.empty() ? "avg" : g.pool, &options.pool);
    featx::Plan plan;
    if (st.ok()) st = featx::Plan::make(model, options, &plan);
    std::vector<unsigned char> workspace(st.ok() ? plan.workspace_bytes() : 0);
    std::vector<float> features(st.ok() ? plan.output_elements() : 0);
    if (st.ok())
      st = featx::run(plan, g.input, 1, workspace.data(), workspace.size(), features.data(), features.size());
    if (st.ok() && features.size() != g.output_size)
      st = featx::corrupt("golden '" + g.name + "' stores " + std::to_string(g.output_size) +
                          " outputs, featx gives " + std::to_string(features.size()));
    if (!st.ok()) {
      std::fprintf(stderr, "golden check: %s: %s\n", argv[1], st.message().c_str());
      return 1;
    }
    double max_abs = 0.0;
    bool nan = false;
    for (size_t i = 0; i < g.output_size; ++i) {
      const double d = std::fabs(double(features[i]) - double(g.output[i]));
      nan |= std::isnan(d);
      if (d > max_abs) max_abs = d;
    }
    const bool pass = !nan && max_abs <= double(g.max_abs_tolerance);
    failures += !pass;
    std::printf("%s %s %dx%d max_abs_err %.3g%s (tolerance %.3g, reference %s, isa %s)\n",
                pass ? "PASS" : "FAIL", g.name.c_str(), g.height, g.width, max_abs, nan ? " and NaN" : "",
                double(g.max_abs_tolerance), g.reference.c_str(), featx::isa_name(plan.isa()));
  }
  if (failures) {
    std::fprintf(stderr, "golden check: %s: %d of %zu goldens differ\n", argv[1], failures,
                 goldens.size());
    return 1;
  }
  return 0;
}
