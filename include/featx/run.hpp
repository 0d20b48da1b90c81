// featx/run.hpp: runs a Plan on images, in buffers the caller owns.
//
//   Status run(plan, images, n, workspace, workspace_bytes, output, output_elements)
//
// images: n x height x width x 3 floats in [0, 1] (NHWC, the plan's size),
// 1 <= n <= plan.batch(). workspace: plan.workspace_bytes() bytes or more,
// any alignment, contents ignored (nothing carries over between runs).
// output: n * plan.output_elements_per_image() floats, image after image,
// in plan.output_shape(n).
//
// Allocates nothing and throws nothing on any path (a test counts every
// operator new and malloc inside it); the errors it returns are caller
// mistakes, reported with literal messages. Threads come from the plan;
// OpenMP's own thread pool is made by the runtime on the first parallel
// region of the process, not by featx.
#pragma once

#include <cstddef>

#include "featx/head.hpp"
#include "featx/plan.hpp"
#include "featx/scheduler.hpp"
#include "featx/status.hpp"

namespace featx {

// Plan's internals for run(): the schedules and step plans it made.
struct PlanAccess {
  static const Plan::Kind& kind_for(const Plan& p, int n) {
    const Schedule s = schedule_for(p.threads_, n, p.options_.profile);
    for (const Plan::Kind& k : p.kinds_)
      if (k.schedule.images_in_parallel == s.images_in_parallel) return k;
    return p.kinds_[0];
  }
  static int dense_last(const Plan& p) { return p.dense_last_; }
  static bool activate_last(const Plan& p) { return p.activate_last_; }
  static bool softmax_after(const Plan& p) { return p.softmax_after_; }
  static const KernelSet& kernels(const Plan& p) { return p.kernels_; }
};

// step_ms: null, or plan.step_count() doubles to which each step's time is
// added (a plan made with PlanOptions::profile runs its steps in order on
// the calling thread's team, so the times are the steps').
inline Status run(const Plan& plan, const float* images, int n, void* workspace, size_t workspace_bytes,
                  float* output, size_t output_elements, double* step_ms = nullptr) noexcept {
  if (!plan.valid()) return Status::Literal(StatusCode::invalid_argument, "run: the plan was not made (Plan::make)");
  if (!images || n < 1) return Status::Literal(StatusCode::invalid_argument, "run: no input images");
  if (n > plan.batch())
    return Status::Literal(StatusCode::invalid_argument, "run: more images than the plan's batch");
  if (!workspace || workspace_bytes < plan.workspace_bytes())
    return Status::Literal(StatusCode::invalid_argument, "run: workspace smaller than plan.workspace_bytes()");
  if (!output || output_elements < size_t(n) * plan.output_elements_per_image())
    return Status::Literal(StatusCode::invalid_argument,
                           "run: output smaller than n * plan.output_elements_per_image() floats");

  const auto& kind = PlanAccess::kind_for(plan, n);
  const KernelSet& k = PlanAccess::kernels(plan);
  const Model& model = plan.model();
  float* base = aligned_workspace(workspace);
  BatchRunner runner(model, k, kind.steps, kind.chunk_weights, kind.schedule, kind.layout, base,
                     plan.options().profile ? step_ms : nullptr);
  const TensorShape s = kind.steps.output_shape();
  const size_t per_image = plan.output_elements_per_image();
  const int dense_last = PlanAccess::dense_last(plan);
  if (dense_last < 0) {
    const Pool pool = plan.options().pool;
    runner.run_batch(images, n, [&](int i, const float* result, float*) {
      float* dst = output + size_t(i) * per_image;
      const size_t pixels = size_t(s.height) * size_t(s.width);
      if (pool == Pool::avg) k.avg_pool(result, pixels, s.channels, dst);
      else if (pool == Pool::max) k.max_pool(result, pixels, s.channels, dst);
      else std::copy(result, result + s.elements(), dst);
    });
  } else {
    const std::vector<DenseLayer>& head = model.head();
    const bool activate_last = PlanAccess::activate_last(plan), softmax_after = PlanAccess::softmax_after(plan);
    runner.run_batch(images, n, [&](int i, const float* result, float* features) {
      float* dst = output + size_t(i) * per_image;
      k.avg_pool(result, size_t(s.height) * size_t(s.width), s.channels, features);
      run_dense_head(head, size_t(dense_last), activate_last, features, features + s.channels, dst);
      if (softmax_after) head_detail::softmax(dst, int(per_image));
    });
  }
  return Status::Ok();
}

}  // namespace featx
