// featx/layer_names.hpp: what a layer name means, in slim's or Keras's words.
//
// featx names its layers as TF-slim does (`Conv`, `expanded_conv_3/expand`,
// `expanded_conv_3` for a block after its residual add, `Conv_1`); Keras
// users know keras.applications.MobileNetV2's names. Both are accepted
// wherever a layer is named, plus the pooled feature vector and the user's
// Dense layers:
//
//   Keras                          featx (slim)
//   Conv1_relu                     Conv
//   expanded_conv_depthwise_relu   expanded_conv/depthwise
//   expanded_conv_project_BN       expanded_conv/project
//   block_N_expand_relu            expanded_conv_N/expand
//   block_N_depthwise_relu         expanded_conv_N/depthwise
//   block_N_project_BN             expanded_conv_N/project (before the add)
//   block_N_add                    expanded_conv_N (residual blocks only)
//   out_relu                       Conv_1
//   global_average_pooling2d       the feature vector (average pooling)
//   <Dense name>                   that Dense layer's output, after its activation
//
// featx folds batch norm into the conv and fuses the activation into its
// store, so the Keras outputs in between (Conv1, bn_Conv1, block_N_expand,
// block_N_expand_BN, block_N_depthwise(_BN), block_N_project, block_N_pad,
// Conv_1_bn) never exist; naming one is an error that names the nearest
// output that does. Keras's `Conv_1` (the last conv before its batch norm)
// is also slim's name for that layer's ReLU6 output: slim's meaning wins.
#pragma once

#include <cstdlib>
#include <string>

#include "featx/model.hpp"
#include "featx/status.hpp"

namespace featx {

struct ResolvedLayer {
  enum class Kind { network, pooled_features, dense };
  Kind kind = Kind::network;
  std::string network_layer;  // slim name of a conv layer or block ("" = the feature layer)
  int dense = -1;             // index into Model::head() when kind == dense
};

namespace layer_names_detail {

inline bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

inline std::string slim_block(int index) {
  return index == 0 ? "expanded_conv" : "expanded_conv_" + std::to_string(index);
}

inline std::string keras_block(int index) {
  return index == 0 ? "expanded_conv" : "block_" + std::to_string(index);
}

// "block_12_expand_relu" -> block 12, suffix "expand_relu"; "expanded_conv_x"
// -> block 0, suffix "x". False when `name` is not a Keras block name.
inline bool split_keras_block(const std::string& name, int* block, std::string* suffix) {
  if (starts_with(name, "expanded_conv_") && name.find('/') == std::string::npos) {
    const std::string rest = name.substr(14);
    if (!rest.empty() && (rest[0] < '0' || rest[0] > '9')) {
      *block = 0;
      *suffix = rest;
      return true;
    }
    return false;
  }
  // Keras numbers blocks 1..16 without leading zeros; block 0 is "expanded_conv".
  if (!starts_with(name, "block_") || name.size() < 7 || name[6] < '1' || name[6] > '9') return false;
  size_t i = 6, digits = 0;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9') ++i, ++digits;
  if (digits > 3 || i >= name.size() || name[i] != '_') return false;
  *block = std::atoi(name.c_str() + 6);
  *suffix = name.substr(i + 1);
  return true;
}

}  // namespace layer_names_detail

// The Keras name of the output featx computes for slim layer or block
// `slim` ("" when Keras has no layer with that output, e.g. the project of a
// residual block is `block_N_project_BN`, its block `block_N_add`).
inline std::string keras_name(const Model& model, const std::string& slim) {
  using namespace layer_names_detail;
  if (slim == "Conv") return "Conv1_relu";
  if (slim == model.feature_layer()) return "out_relu";
  for (size_t b = 0; b < model.blocks().size(); ++b) {
    const BlockInfo& info = model.blocks()[b];
    const std::string k = keras_block(int(b));
    if (slim == info.name) return info.residual ? k + "_add" : k + "_project_BN";
    if (slim == info.name + "/expand") return k + "_expand_relu";
    if (slim == info.name + "/depthwise") return k + "_depthwise_relu";
    if (slim == info.name + "/project") return k + "_project_BN";
  }
  return "";
}

// Resolves `name` (slim, Keras, "global_average_pooling2d" or a Dense
// layer's name; "" = the feature layer) for `model`. Keras names of outputs
// featx does not compute are refused naming the nearest one that it does.
inline Status resolve_layer(const Model& model, const std::string& name, ResolvedLayer* out) {
  using namespace layer_names_detail;
  *out = ResolvedLayer{};
  if (name.empty()) return Status::Ok();
  if (model.find_layer(name) >= 0 || model.find_block(name) >= 0) {
    out->network_layer = name;
    return Status::Ok();
  }
  const int dense = model.find_dense(name);
  if (dense >= 0) {
    out->kind = ResolvedLayer::Kind::dense;
    out->dense = dense;
    return Status::Ok();
  }
  if (name == "global_average_pooling2d") {
    out->kind = ResolvedLayer::Kind::pooled_features;
    return Status::Ok();
  }
  auto refuse = [&](const std::string& nearest) {
    return not_found(model.name() + ": Keras layer '" + name +
                     "' is an output featx never computes (batch norm is folded, the activation "
                     "fused into the conv and padding done inside it); the nearest is '" + nearest + "'");
  };
  // Keras names of outputs featx computes: keras_name() is the one table.
  for (const ConvLayer& l : model.layers())
    if (keras_name(model, l.name) == name) return resolve_layer(model, l.name, out);
  for (const BlockInfo& b : model.blocks())
    if (keras_name(model, b.name) == name) return resolve_layer(model, b.name, out);
  if (name == "Conv1" || name == "bn_Conv1" || name == "Conv1_pad") return refuse("Conv1_relu");
  if (name == "Conv_1_bn") return refuse("out_relu");
  int block = -1;
  std::string suffix;
  if (split_keras_block(name, &block, &suffix) && block >= 0 &&
      block < int(model.blocks().size())) {
    const BlockInfo& info = model.blocks()[size_t(block)];
    const std::string k = keras_block(block);
    if ((suffix == "expand" || suffix == "expand_BN") && info.expand >= 0) return refuse(k + "_expand_relu");
    if (suffix == "pad") return refuse(info.expand >= 0 ? k + "_expand_relu" : "Conv1_relu");
    if (suffix == "depthwise" || suffix == "depthwise_BN") return refuse(k + "_depthwise_relu");
    if (suffix == "project") return refuse(k + "_project_BN");
    if (suffix == "add")
      return not_found(model.name() + ": '" + name + "': block " + std::to_string(block) +
                       " has no residual add; its output is '" + k + "_project_BN'");
  }
  return not_found("no layer or block named '" + name + "' in " + model.name() +
                   " (featx inspect lists the slim and Keras names)");
}

}  // namespace featx
