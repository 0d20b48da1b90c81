// featx/chunked_block.hpp: one block of a batch's grouped tail, a chunk of
// its expanded channels at a time (see step_plan.hpp, chunked blocks).
//
// The chunk's weights are cut once, when a Plan is made: the depthwise taps
// [kh * kw][chunk] and the project conv's rows of the chunk packed on their
// own, so the kernels read them as a whole conv with K = chunk. Running a
// chunked block then allocates nothing.
#pragma once

#include <algorithm>
#include <vector>

#include "featx/kernels/kernel_set.hpp"
#include "featx/kernels/packed_weights.hpp"
#include "featx/model.hpp"
#include "featx/step_plan.hpp"

namespace featx {

struct ChunkWeights {
  std::vector<AlignedFloats> depthwise, project;  // one of each per chunk
};

inline ChunkWeights cut_chunk_weights(const Model& model, const StepPlan& plan, const ChunkedBlock& c) {
  const ConvLayer& dw = model.layers()[size_t(plan.steps()[size_t(c.depthwise_step)].layer)];
  const ConvLayer& pr = model.layers()[size_t(plan.steps()[size_t(c.project_step)].layer)];
  const int channels = dw.out_channels, taps = dw.kernel_h * dw.kernel_w, out_c = pr.out_channels;
  ChunkWeights w;
  std::vector<float> rows;
  for (int c0 = 0; c0 < channels; c0 += c.chunk_channels) {
    const int n = std::min(c.chunk_channels, channels - c0);
    AlignedFloats taps_of_chunk(size_t(taps) * size_t(n));
    for (int t = 0; t < taps; ++t)
      for (int j = 0; j < n; ++j)
        taps_of_chunk[size_t(t) * size_t(n) + size_t(j)] = dw.weights[size_t(t) * size_t(channels) + size_t(c0 + j)];
    rows.assign(size_t(n) * size_t(out_c), 0.0f);
    for (int r = 0; r < n; ++r)
      for (int col = 0; col < out_c; ++col)
        rows[size_t(r) * size_t(out_c) + size_t(col)] = pr.weights[packed_index(channels, c0 + r, col)];
    w.depthwise.push_back(std::move(taps_of_chunk));
    w.project.push_back(pack_weights(rows.data(), n, out_c));
  }
  return w;
}

// Bytes a chunked block's cut weights hold.
inline size_t chunk_weight_bytes(const ChunkWeights& w) {
  size_t floats = 0;
  for (const auto* list : {&w.depthwise, &w.project})
    for (const AlignedFloats& v : *list) floats += v.size();
  return floats * sizeof(float);
}

// Runs chunked block `c` (weights `w`) over `images` images stacked in the
// group arena: per chunk, the expand conv's columns into the expanded slot,
// the depthwise conv into the depthwise slot (both [images][H][W][chunk]),
// then the project conv's rows of the chunk into the output: the first
// chunk starts at the bias, the others continue the stored chains (bias
// null), the last adds the residual and the activation.
inline void run_chunked_block(const KernelSet& k, const Model& model, const StepPlan& plan,
                              const ChunkedBlock& c, const ChunkWeights& w, float* group_arena,
                              int images) {
  const PlanStep& ex = plan.steps()[size_t(c.expand_step)];
  const PlanStep& dw = plan.steps()[size_t(c.depthwise_step)];
  const PlanStep& pr = plan.steps()[size_t(c.project_step)];
  const auto& layers = model.layers();
  const ConvLayer& expand = layers[size_t(ex.layer)];
  const ConvLayer& depthwise = layers[size_t(dw.layer)];
  const ConvLayer& project = layers[size_t(pr.layer)];
  auto slot = [&](int s) { return group_arena + plan.group_slot_offset(s); };
  const float* input = slot(ex.input_slot);
  float* expanded = slot(ex.output_slot);
  float* depthwise_out = slot(dw.output_slot);
  float* output = slot(pr.output_slot);
  const float* residual = pr.residual_slot >= 0 ? slot(pr.residual_slot) : nullptr;
  const ConvGeometry& gd = dw.geometry;
  const size_t in_pixels = size_t(images) * size_t(gd.in_h) * size_t(gd.in_w);
  const size_t out_pixels = size_t(images) * size_t(gd.out_h) * size_t(gd.out_w);
  const int channels = gd.in_c, out_c = pr.geometry.out_c;
  for (size_t i = 0, c0 = 0; c0 < size_t(channels); ++i, c0 += size_t(c.chunk_channels)) {
    const int n = std::min(c.chunk_channels, channels - int(c0));
    const bool first = i == 0, last = c0 + size_t(c.chunk_channels) >= size_t(channels);
    k.pointwise(input, 0, in_pixels, ex.geometry.in_c,
                packed_panel(expand.weights.data(), ex.geometry.in_c, int(c0)),
                expand.bias.data() + c0, n, expand.activation, nullptr, expanded, 0, n);
    ConvGeometry g = gd;
    g.in_c = g.out_c = n;
    const size_t image_in = size_t(gd.in_h) * size_t(gd.in_w) * size_t(n);
    const size_t image_out = size_t(gd.out_h) * size_t(gd.out_w) * size_t(n);
    for (int img = 0; img < images; ++img)
      k.depthwise(g, expanded + size_t(img) * image_in, w.depthwise[i].data(),
                  depthwise.bias.data() + c0, depthwise.activation,
                  depthwise_out + size_t(img) * image_out, 0, g.out_h);
    k.pointwise(depthwise_out, 0, out_pixels, n, w.project[i].data(),
                first ? project.bias.data() : nullptr, out_c,
                last ? project.activation : Activation::none, last ? residual : nullptr, output,
                0, out_c);
  }
}

}  // namespace featx
