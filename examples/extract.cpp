// examples/extract.cpp: an image's feature vector in three steps: load, plan, run.
#include <cstdio>
#include <vector>

#include <featx/featx.hpp>

int main(int argc, char** argv) {
  if (argc != 3) return std::fprintf(stderr, "usage: extract MODEL.featx IMAGE\n"), 2;
  std::shared_ptr<const featx::Model> model;
  featx::Status st = featx::Model::load(argv[1], &model);
  featx::Plan plan;  // the model's resolution, batch 1, every core
  if (st) st = featx::Plan::make(model, featx::PlanOptions(), &plan);
  featx::Image image;
  if (st) st = featx::load_image(argv[2], {plan.height(), plan.width()}, &image);
  std::vector<unsigned char> workspace(plan.workspace_bytes());  // or a static buffer
  std::vector<float> features(plan.output_elements());
  if (st) st = featx::run(plan, image.rgb.data(), 1, workspace.data(), workspace.size(), features.data(), features.size());
  if (!st) return std::fprintf(stderr, "extract: %s\n", st.message().c_str()), 1;
  std::printf("%zu features, workspace %zu bytes: %.6f %.6f ... %.6f\n", features.size(), workspace.size(),
              features[0], features[1], features.back());
}
