// xnnpack_runner: MobileNetV2 feature vector through XNNPACK's subgraph API,
// fed the folded weights of a .featx model, as a speed peer for featx.
//
//   xnnpack_runner -m MODEL.featx [--threads N] [--batch B] [--size HxW]
//                  [--runs R] [--warmup W] [--input X.npy] [--dump OUT.npy]
//
// Prints xnnpack_ms_median / _min / _p90 (one xnn_invoke_runtime of the
// whole batch) and xnnpack_setup_ms (subgraph + runtime creation, which packs
// the weights). The weights come from featx::Model::load, i.e. batch norm is
// already folded by featx, so XNNPACK and featx start from the same floats;
// only the layout is changed here (TF HWIO -> XNNPACK OHWI).
//
// Input: NHWC float in [0, 1]. Either --input (a float32 .npy of shape
// (B,H,W,3)) or, by default, the same LCG pixels `featx bench` generates.
// The model's input normalisation (scale*x + offset) is part of the XNNPACK
// graph (Multiply + Add nodes with broadcast scalars), so it is inside the
// timed region, as it is for featx and for the ONNX graph ORT runs.
//
// Built against Debian bookworm's libxnnpack-dev (git snapshot 2022-02-16):
// xnn_define_* take explicit padding, kernel, stride, dilation, groups,
// output_min/output_max (ReLU6 is fused into the conv as a clamp).
#define FEATX_NO_IMAGE  // the runner needs the model loader and .npy IO only
#include <featx/featx.hpp>

#include <pthreadpool.h>
#include <xnnpack.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "xnnpack_runner: %s\n", msg.c_str());
  std::exit(2);
}

void check(xnn_status s, const std::string& what) {
  if (s != xnn_status_success) die(what + " failed (xnn_status " + std::to_string(int(s)) + ")");
}

struct Options {
  std::string model, input, dump;
  int threads = 1, batch = 1, height = 0, width = 0, runs = 20, warmup = 3;
};

int to_int(const char* flag, const char* s, int lo, int hi) {
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (!*s || *end || v < lo || v > hi) die(std::string(flag) + ": bad value '" + s + "'");
  return int(v);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) die("option " + a + " needs a value (or is unknown)");
    const char* v = argv[++i];
    if (a == "-m" || a == "--model") o.model = v;
    else if (a == "--threads") o.threads = to_int("--threads", v, 1, 256);
    else if (a == "--batch") o.batch = to_int("--batch", v, 1, 4096);
    else if (a == "--runs") o.runs = to_int("--runs", v, 1, 100000);
    else if (a == "--warmup") o.warmup = to_int("--warmup", v, 0, 100000);
    else if (a == "--input") o.input = v;
    else if (a == "--dump") o.dump = v;
    else if (a == "--size") {
      if (std::sscanf(v, "%dx%d", &o.height, &o.width) != 2 || o.height < 1 || o.width < 1)
        die(std::string("--size: expected HxW, got '") + v + "'");
    } else die("unknown option " + a);
  }
  if (o.model.empty()) die("missing -m MODEL.featx");
  return o;
}

// Owns every static buffer handed to XNNPACK: xnn_define_tensor_value keeps
// the pointer, so the data must outlive the subgraph and the runtime.
struct Graph {
  xnn_subgraph_t subgraph = nullptr;
  std::vector<std::unique_ptr<std::vector<float>>> statics;

  const float* keep(std::vector<float> v) {
    statics.push_back(std::make_unique<std::vector<float>>(std::move(v)));
    return statics.back()->data();
  }

  uint32_t tensor(std::vector<size_t> dims, const float* data = nullptr,
                  uint32_t external_id = XNN_INVALID_VALUE_ID, uint32_t flags = 0) {
    uint32_t id = 0;
    check(xnn_define_tensor_value(subgraph, xnn_datatype_fp32, dims.size(), dims.data(), data,
                                  external_id, flags, &id),
          "xnn_define_tensor_value");
    return id;
  }
};

// TF SAME output size for one axis.
int same_out(int in, int stride) { return (in + stride - 1) / stride; }

// One featx conv layer as an XNNPACK node; returns the output value id.
uint32_t add_conv(Graph& g, const featx::ConvLayer& L, uint32_t x, size_t batch, int* h, int* w) {
  const int oh = same_out(*h, L.stride), ow = same_out(*w, L.stride);
  const float inf = std::numeric_limits<float>::infinity();
  float lo = -inf, hi = inf;
  if (L.activation == featx::Activation::relu6) lo = 0.0f, hi = 6.0f;
  else if (L.activation == featx::Activation::relu) lo = 0.0f;
  const size_t kh = size_t(L.kernel_h), kw = size_t(L.kernel_w);
  const size_t ci = size_t(L.in_channels), co = size_t(L.out_channels);
  const uint32_t bias = g.tensor({co}, g.keep(std::vector<float>(L.bias.begin(), L.bias.end())));
  const uint32_t y = g.tensor({batch, size_t(oh), size_t(ow), co});
  if (L.depthwise) {
    // featx [kh][kw][c] is already XNNPACK's [1][kh][kw][c] in memory.
    const uint32_t filter = g.tensor({1, kh, kw, ci}, g.keep(std::vector<float>(L.weights.begin(), L.weights.end())));
    check(xnn_define_depthwise_convolution_2d(
              g.subgraph, 0, 0, 0, 0, uint32_t(kh), uint32_t(kw), uint32_t(L.stride),
              uint32_t(L.stride), 1, 1, /*depth_multiplier=*/1, ci, lo, hi, x, filter, bias, y,
              XNN_FLAG_TENSORFLOW_SAME_PADDING),
          "xnn_define_depthwise_convolution_2d " + L.name);
  } else {
    // featx's packed TF [kh][kw][in][out] -> XNNPACK OHWI [out][kh][kw][in].
    std::vector<float> ohwi(co * kh * kw * ci);
    for (size_t o = 0; o < co; ++o)
      for (size_t r = 0; r < kh; ++r)
        for (size_t s = 0; s < kw; ++s)
          for (size_t i = 0; i < ci; ++i)
            ohwi[((o * kh + r) * kw + s) * ci + i] = L.kernel_value(int(r), int(s), int(i), int(o));
    const uint32_t filter = g.tensor({co, kh, kw, ci}, g.keep(std::move(ohwi)));
    check(xnn_define_convolution_2d(g.subgraph, 0, 0, 0, 0, uint32_t(kh), uint32_t(kw),
                                    uint32_t(L.stride), uint32_t(L.stride), 1, 1, /*groups=*/1, ci,
                                    co, lo, hi, x, filter, bias, y,
                                    XNN_FLAG_TENSORFLOW_SAME_PADDING),
          "xnn_define_convolution_2d " + L.name);
  }
  *h = oh;
  *w = ow;
  return y;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Nearest rank, as featx bench prints it.
double p90(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[(v.size() * 9 + 9) / 10 - 1];
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  std::shared_ptr<const featx::Model> model;
  featx::Status st = featx::Model::load(opt.model, &model);
  if (!st) die(st.message());

  // Input: an .npy, or featx bench's deterministic pixels.
  int h = opt.height ? opt.height : model->resolution();
  int w = opt.width ? opt.width : model->resolution();
  size_t batch = size_t(opt.batch);
  std::vector<float> input;
  if (!opt.input.empty()) {
    featx::NpyArray a;
    st = featx::read_npy(opt.input, &a);
    if (!st) die(st.message());
    if (a.shape.size() != 4 || a.shape[3] != 3) die(opt.input + ": expected shape (B,H,W,3)");
    batch = size_t(a.shape[0]);
    h = int(a.shape[1]);
    w = int(a.shape[2]);
    input = std::move(a.data);
  } else {
    input.resize(batch * size_t(h) * size_t(w) * 3);
    uint32_t state = 12345;  // the same LCG as `featx bench`
    for (float& v : input) {
      state = state * 1664525u + 1013904223u;
      v = float(state >> 8) / float(1u << 24);
    }
  }

  check(xnn_initialize(nullptr), "xnn_initialize");
  const auto t_setup = std::chrono::steady_clock::now();
  Graph g;
  check(xnn_create_subgraph(/*external_value_ids=*/2, 0, &g.subgraph), "xnn_create_subgraph");
  const uint32_t kInputId = 0, kOutputId = 1;
  const uint32_t in = g.tensor({batch, size_t(h), size_t(w), 3}, nullptr, kInputId,
                               XNN_VALUE_FLAG_EXTERNAL_INPUT);

  // Normalisation inside the graph: x*scale + offset, scalars broadcast.
  const float inf = std::numeric_limits<float>::infinity();
  const uint32_t scale = g.tensor({1}, g.keep({model->input_scale()}));
  const uint32_t offset = g.tensor({1}, g.keep({model->input_offset()}));
  const uint32_t scaled = g.tensor({batch, size_t(h), size_t(w), 3});
  const uint32_t normed = g.tensor({batch, size_t(h), size_t(w), 3});
  check(xnn_define_multiply2(g.subgraph, -inf, inf, in, scale, scaled, 0), "xnn_define_multiply2");
  check(xnn_define_add2(g.subgraph, -inf, inf, scaled, offset, normed, 0), "xnn_define_add2");

  // Stem, the inverted-residual blocks (by the indices featx records), head.
  const auto& layers = model->layers();
  int ch = h, cw = w;
  uint32_t x = add_conv(g, layers.front(), normed, batch, &ch, &cw);
  size_t used = 1;
  for (const featx::BlockInfo& b : model->blocks()) {
    uint32_t y = x;
    for (int idx : {b.expand, b.depthwise, b.project}) {
      if (idx < 0) continue;
      y = add_conv(g, layers[size_t(idx)], y, batch, &ch, &cw);
      ++used;
    }
    if (b.residual) {
      const uint32_t sum = g.tensor({batch, size_t(ch), size_t(cw), size_t(b.out_channels)});
      check(xnn_define_add2(g.subgraph, -inf, inf, x, y, sum, 0), "xnn_define_add2 " + b.name);
      y = sum;
    }
    x = y;
  }
  x = add_conv(g, layers.back(), x, batch, &ch, &cw);
  ++used;
  if (used != layers.size())
    die(opt.model + ": blocks reference " + std::to_string(used) + " of " +
        std::to_string(layers.size()) + " layers; unexpected network shape");
  const size_t dim = size_t(layers.back().out_channels);
  const uint32_t out = g.tensor({batch, 1, 1, dim}, nullptr, kOutputId,
                                XNN_VALUE_FLAG_EXTERNAL_OUTPUT);
  check(xnn_define_global_average_pooling_2d(g.subgraph, -inf, inf, x, out, 0),
        "xnn_define_global_average_pooling_2d");

  // A pool of N threads (the caller is one of them), like --threads for featx.
  pthreadpool_t pool = pthreadpool_create(size_t(opt.threads));
  if (!pool) die("pthreadpool_create failed");
  xnn_runtime_t runtime = nullptr;
  check(xnn_create_runtime_v2(g.subgraph, pool, 0, &runtime), "xnn_create_runtime_v2");
  std::vector<float> features(batch * dim);
  const xnn_external_value ext[2] = {{kInputId, input.data()}, {kOutputId, features.data()}};
  check(xnn_setup_runtime(runtime, 2, ext), "xnn_setup_runtime");
  const double setup_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_setup).count();

  for (int i = 0; i < opt.warmup; ++i) check(xnn_invoke_runtime(runtime), "xnn_invoke_runtime");
  std::vector<double> ms;
  for (int i = 0; i < opt.runs; ++i) {
    const auto a = std::chrono::steady_clock::now();
    check(xnn_invoke_runtime(runtime), "xnn_invoke_runtime");
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::printf("xnnpack_ms_median %.3f\n", median(ms));
  std::printf("xnnpack_ms_min %.3f\n", *std::min_element(ms.begin(), ms.end()));
  std::printf("xnnpack_ms_p90 %.3f\n", p90(ms));
  std::printf("xnnpack_setup_ms %.3f\n", setup_ms);
  std::printf("batch %zu size %dx%d threads %d runs %d\n", batch, h, w, opt.threads, opt.runs);

  if (!opt.dump.empty()) {
    st = featx::write_npy(opt.dump, {int64_t(batch), int64_t(dim)}, features.data());
    if (!st) die(st.message());
  }
  xnn_delete_runtime(runtime);
  xnn_delete_subgraph(g.subgraph);
  pthreadpool_destroy(pool);
  xnn_deinitialize();
  return 0;
}
