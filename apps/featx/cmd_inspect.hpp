// `featx inspect MODEL`: what the file holds, layer by layer.
#pragma once

#include <cstdio>

#include "args.hpp"
#include "featx/featx.hpp"

namespace featx_cli {

// "48 KiB", "1 MiB", "?" (unknown).
inline std::string cache_size(size_t bytes) {
  if (!bytes) return "?";
  if (bytes % (size_t(1) << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
  return std::to_string(bytes >> 10) + " KiB";
}

// The CPU as featx reads it and the block sizes and tiles it takes from it.
inline void print_cpu_choices(const std::shared_ptr<const featx::Model>& m) {
  const featx::CpuInfo& cpu = featx::cpu_info();
  std::printf("cpu: %s\n", cpu.brand.empty() ? "(no brand string)" : cpu.brand.c_str());
  std::printf("microarchitecture: %s\n", featx::microarchitecture(cpu).c_str());
  std::printf("caches: L1d %s and L2 %s per core, L3 %s (%s)\n", cache_size(cpu.l1d_bytes).c_str(), cache_size(cpu.l2_bytes).c_str(),
              cache_size(cpu.l3_bytes).c_str(), cpu.cache_source.c_str());
  featx::PlanOptions o;
  o.threads = 1;
  featx::Plan plan;
  if (!featx::Plan::make(m, o, &plan).ok()) return;
  const featx::CacheTuning& t = plan.tuning();
  std::printf("tuning: for an L2 of %s (%s%s): 1x1 convs on one thread in pixel blocks of "
              "%s of input (half of L2), fused blocks in bands of %s of expanded rows (5/16 of L2)\n",
              cache_size(t.l2_bytes).c_str(), t.l2_source.c_str(),
              t.l2_source == "FEATX_L2_BYTES" ? "" : "; FEATX_L2_BYTES overrides", cache_size(t.pointwise_block_bytes).c_str(),
              cache_size(t.fused_band_bytes).c_str());
  std::string bands;
  for (const auto& b : plan.fused_band_rows())
    bands += (bands.empty() ? "" : ", ") + b.first.substr(0, b.first.find(" (fused)")) + " " + std::to_string(b.second);
  std::printf("band rows at %dx%d, 1 thread: %s\n", plan.height(), plan.width(), bands.empty() ? "none" : bands.c_str());
  std::printf("tiles: %s\n", featx::pointwise_tile_description(plan.isa()).c_str());
}

inline featx::Status cmd_inspect(const Args& args) {
  if (args.positional.size() != 1) return featx::invalid_argument("usage: featx inspect MODEL");
  std::shared_ptr<const featx::Model> m;
  FEATX_RETURN_IF_ERROR(featx::Model::load(args.positional[0], &m));
  std::printf("model: %s\n", m->name().c_str());
  std::printf("format_version: %u\n", m->format_version());
  std::printf("source: %s (%s), exporter %s\n", m->source().c_str(), m->source_format().c_str(),
              m->exporter_version().c_str());
  std::printf("architecture: mobilenet_v2, width multiplier %.4g, resolution %d\n",
              double(m->width_multiplier()), m->resolution());
  std::printf("input: RGB in [0, 1], internal = %.9g * x + %.9g\n", double(m->input_scale()),
              double(m->input_offset()));
  std::printf("feature_layer: %s, feature_dim: %d\n", m->feature_layer().c_str(), m->feature_dim());
  if (m->has_classifier())
    std::printf("classifier: %d classes (label offset %d, %zu labels in the model)\n",
                m->num_classes(), m->label_offset(), m->labels().size());
  else
    std::printf("classifier: none\n");
  std::printf("parameters: %zu, file bytes: %zu (%s), folded copies: %zu bytes\n",
              m->parameter_count(), m->file_bytes(), m->memory_mapped() ? "mmap" : "in memory",
              m->folded_bytes());
  std::printf("weights: %s\n", m->prepacked() ? "prepacked (folded and packed in the file, used in place)"
                                               : "folded and packed at load");
  // The memory a run needs at the model's resolution, as Plan::make sizes it.
  for (int threads : {1, featx::detail::resolve_threads(0)}) {
    featx::PlanOptions o;
    o.threads = threads;
    featx::Plan plan;
    FEATX_RETURN_IF_ERROR(featx::Plan::make(m, o, &plan));
    std::printf("workspace: %zu bytes at %dx%d, batch 1, %d thread%s (plan %zu bytes)\n", plan.workspace_bytes(),
                plan.height(), plan.width(), plan.threads(), plan.threads() == 1 ? "" : "s", plan.plan_bytes());
    if (threads == featx::detail::resolve_threads(0)) break;
  }
  std::printf("isa: %s (best on this CPU: %s; FEATX_ISA overrides)\n",
              featx::isa_name(featx::selected_isa()), featx::isa_name(featx::best_isa()));
  print_cpu_choices(m);
  std::printf("jpeg decoder: %s\n", featx::jpeg_decoder_name());
  std::printf("goldens: %zu\n", m->goldens().size());
  // Each output under its slim name and, where Keras has one, its Keras name.
  std::printf("layers: (slim name, Keras name)\n");
  for (const auto& l : m->layers())
    std::printf("  %-28s %-30s %-9s %dx%d s%d %5d -> %-5d %s\n", l.name.c_str(),
                featx::keras_name(*m, l.name).c_str(), l.depthwise ? "depthwise" : "conv",
                l.kernel_h, l.kernel_w, l.stride, l.in_channels, l.out_channels,
                featx::activation_name(l.activation));
  std::printf("blocks: (slim name, Keras name)\n");
  for (const auto& b : m->blocks())
    std::printf("  %-20s %-20s t=%d s=%d %4d -> %-4d%s\n", b.name.c_str(),
                featx::keras_name(*m, b.name).c_str(), b.expansion, b.stride, b.in_channels,
                b.out_channels, b.residual ? " residual" : "");
  std::printf("pooled: global_average_pooling2d (%d features)\n", m->feature_dim());
  std::printf("dense head:%s\n", m->head().empty() ? " none" : "");
  for (const auto& d : m->head())
    std::printf("  %-28s dense %5d -> %-5d %s%s\n", d.name.c_str(), d.in_features, d.out_features,
                featx::dense_activation_name(d.activation), d.bias.empty() ? " (no bias)" : "");
  return featx::Status::Ok();
}

}  // namespace featx_cli
