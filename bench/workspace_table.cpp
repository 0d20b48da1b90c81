// bench/workspace_table.cpp: Plan::workspace_bytes() per width and
// resolution as a Markdown table, and plan_bytes() (bench/footprint.sh,
// README's Footprint section).
//
//   workspace_table [--threads 1,2] MODEL.featx...
//
// Each model is planned at its own resolution, batch 1, the feature vector,
// once per thread count and per ISA this machine runs. Only the input size
// and the channel counts matter, not the weights: random test models do.
// The table shows the first ISA's figures; a different figure on another
// ISA is an error (one line naming the model), since the table claims them
// for every ISA. Cells are kB (1000 bytes), rounded, "threads 1 / threads 2".
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "featx/model.hpp"
#include "featx/plan.hpp"

namespace {

int fail(const std::string& what) {
  std::fprintf(stderr, "workspace_table: %s\n", what.c_str());
  return 1;
}

std::string kilobytes(const std::vector<size_t>& bytes) {
  std::string s;
  for (size_t i = 0; i < bytes.size(); ++i) s += (i ? " / " : "") + std::to_string((bytes[i] + 500) / 1000);
  return s;
}

// 0.35, 0.5, 1.0, 1.4: as the models are named (the float is 1.39999...).
std::string width_label(float width) {
  char label[16];
  std::snprintf(label, sizeof label, "%.2f", double(width));
  std::string s = label;
  if (s.back() == '0') s.pop_back();
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> threads = {1, 2};
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) {
      threads.clear();
      std::stringstream list(argv[++i]);
      for (std::string t; std::getline(list, t, ',');) threads.push_back(std::atoi(t.c_str()));
    } else {
      paths.push_back(a);
    }
  }
  if (paths.empty() || threads.empty())
    return std::fprintf(stderr, "usage: workspace_table [--threads 1,2] MODEL.featx...\n"), 2;
  std::vector<featx::Isa> isas;
  for (featx::Isa isa : {featx::Isa::avx512, featx::Isa::avx2, featx::Isa::neon, featx::Isa::scalar})
    if (featx::isa_supported(isa)) isas.push_back(isa);

  std::map<float, std::map<int, std::vector<size_t>>> workspace;  // width -> resolution -> per thread count
  std::set<int> resolutions;
  size_t plan_min = SIZE_MAX, plan_max = 0;
  for (const std::string& path : paths) {
    std::shared_ptr<const featx::Model> model;
    featx::Status st = featx::Model::load(path, &model);
    if (!st) return fail(st.message());
    std::vector<size_t>& cell = workspace[model->width_multiplier()][model->resolution()];
    if (!cell.empty()) return fail(path + ": a second model of width " + std::to_string(model->width_multiplier()) +
                                   " at " + std::to_string(model->resolution()));
    resolutions.insert(model->resolution());
    for (int t : threads) {
      for (featx::Isa isa : isas) {
        featx::PlanOptions options;  // the model's resolution, batch 1, features
        options.threads = t;
        options.isa = featx::isa_name(isa);
        featx::Plan plan;
        st = featx::Plan::make(model, options, &plan);
        if (!st) return fail(path + ": " + st.message());
        if (plan.threads() != t)
          return fail(std::to_string(t) + " threads asked, the plan has " + std::to_string(plan.threads()) +
                      " (build with -fopenmp)");
        if (isa == isas.front()) cell.push_back(plan.workspace_bytes());
        else if (plan.workspace_bytes() != cell.back())
          return fail(path + ": workspace_bytes() " + std::to_string(plan.workspace_bytes()) + " on " +
                      featx::isa_name(isa) + ", " + std::to_string(cell.back()) + " on " +
                      featx::isa_name(isas.front()) + " (threads " + std::to_string(t) + ")");
        plan_min = std::min(plan_min, plan.plan_bytes());
        plan_max = std::max(plan_max, plan.plan_bytes());
      }
    }
  }

  std::string threads_label, isa_label;
  for (size_t i = 0; i < threads.size(); ++i) threads_label += (i ? " / " : "") + std::to_string(threads[i]);
  for (size_t i = 0; i < isas.size(); ++i) isa_label += (i ? ", " : "") + std::string(featx::isa_name(isas[i]));
  std::printf("workspace_bytes() in kB, batch 1, threads %s (the same on %s)\n\n", threads_label.c_str(),
              isa_label.c_str());
  std::printf("| width \\ resolution |");
  for (int r : resolutions) std::printf(" %d |", r);
  std::printf("\n| --- |");
  for (size_t i = 0; i < resolutions.size(); ++i) std::printf(" --- |");
  std::printf("\n");
  for (const auto& row : workspace) {
    std::printf("| %s |", width_label(row.first).c_str());
    for (int r : resolutions) {
      auto it = row.second.find(r);
      std::printf(" %s |", it == row.second.end() ? "" : kilobytes(it->second).c_str());
    }
    std::printf("\n");
  }
  std::printf("\nplan_bytes(): %zu to %zu bytes over these plans\n", plan_min, plan_max);
}
