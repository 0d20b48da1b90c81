// Every reference kernel against a naive loop written independently
// (explicit zero-padded copy, then a plain sum), on random shapes including
// channel counts that are not multiples of 8 or 16.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "featx/kernels/conv_ref.hpp"
#include "featx/kernels/dense_ref.hpp"
#include "featx/kernels/depthwise_ref.hpp"
#include "featx/kernels/padding.hpp"
#include "featx/kernels/packed_weights.hpp"
#include "featx/kernels/pointwise_ref.hpp"
#include "featx/kernels/pool_ref.hpp"

namespace {

std::vector<float> random_vector(std::mt19937& rng, size_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

double act(double x, featx::Activation a) {
  if (a == featx::Activation::relu6) return std::min(std::max(x, 0.0), 6.0);
  if (a == featx::Activation::relu) return std::max(x, 0.0);
  return x;
}

// TF SAME by definition: pad so that out = ceil(in/s), extra padding at the end.
struct NaiveConv {
  int h, w, cin, cout, k, s;
  bool depthwise;
  featx::Activation a;
  std::vector<double> run(const std::vector<float>& in, const std::vector<float>& wts,
                          const std::vector<float>& bias, int* oh, int* ow) const {
    *oh = (h + s - 1) / s;
    *ow = (w + s - 1) / s;
    const int pad_h = std::max((*oh - 1) * s + k - h, 0), pad_w = std::max((*ow - 1) * s + k - w, 0);
    const int top = pad_h / 2, left = pad_w / 2;
    const int ph = h + pad_h, pw = w + pad_w;
    std::vector<double> padded(size_t(ph) * pw * cin, 0.0);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < cin; ++c)
          padded[(size_t(y + top) * pw + (x + left)) * cin + c] = in[(size_t(y) * w + x) * cin + c];
    std::vector<double> out(size_t(*oh) * *ow * cout);
    for (int y = 0; y < *oh; ++y)
      for (int x = 0; x < *ow; ++x)
        for (int co = 0; co < cout; ++co) {
          double sum = bias[co];
          for (int ky = 0; ky < k; ++ky)
            for (int kx = 0; kx < k; ++kx) {
              const double* p = &padded[(size_t(y * s + ky) * pw + (x * s + kx)) * cin];
              if (depthwise) {
                sum += p[co] * wts[(size_t(ky) * k + kx) * cout + co];
              } else {
                for (int ci = 0; ci < cin; ++ci)
                  sum += p[ci] * wts[((size_t(ky) * k + kx) * cin + ci) * cout + co];
              }
            }
          out[(size_t(y) * *ow + x) * cout + co] = act(sum, a);
        }
    return out;
  }
};

void check_close(const std::vector<float>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  double max_err = 0.0;
  for (size_t i = 0; i < got.size(); ++i)
    max_err = std::max(max_err, std::fabs(double(got[i]) - want[i]) / (1.0 + std::fabs(want[i])));
  // Both sides sum in double; the only difference is the final rounding to float.
  CHECK(max_err <= 1.2e-7);
}

}  // namespace

TEST_CASE("same_padding matches TensorFlow's rule") {
  // 224 stride 2, k3: out 112, total pad 1 -> 0 before, 1 after.
  CHECK(featx::same_padding(224, 3, 2).out == 112);
  CHECK(featx::same_padding(224, 3, 2).pad_before == 0);
  // 193 stride 2, k3: out 97, total (96*2+3-193)=2 -> 1 before, 1 after.
  CHECK(featx::same_padding(193, 3, 2).out == 97);
  CHECK(featx::same_padding(193, 3, 2).pad_before == 1);
  CHECK(featx::same_padding(7, 3, 1).pad_before == 1);
  CHECK(featx::same_padding(1, 3, 2).out == 1);
  CHECK(featx::same_padding(1, 3, 2).pad_before == 1);  // total 2 -> 1 before, 1 after
  CHECK(featx::same_padding(5, 1, 1).pad_before == 0);
}

TEST_CASE("conv2d_ref and depthwise_ref match a naive padded convolution") {
  std::mt19937 rng(7);
  const featx::Activation acts[] = {featx::Activation::none, featx::Activation::relu6,
                                    featx::Activation::relu};
  for (int trial = 0; trial < 40; ++trial) {
    std::uniform_int_distribution<int> dim(1, 13), ch(1, 37), stride(1, 2), kern(0, 2);
    const bool depthwise = trial % 2 == 1;
    NaiveConv n{dim(rng), dim(rng), ch(rng), 0, 1 + 2 * kern(rng), stride(rng), depthwise,
                acts[trial % 3]};
    n.cout = depthwise ? n.cin : ch(rng);
    CAPTURE(n.h); CAPTURE(n.w); CAPTURE(n.cin); CAPTURE(n.cout); CAPTURE(n.k); CAPTURE(n.s);
    auto in = random_vector(rng, size_t(n.h) * n.w * n.cin, -3.0f, 3.0f);
    auto wts = random_vector(rng, size_t(n.k) * n.k * (depthwise ? 1 : n.cin) * n.cout);
    auto bias = random_vector(rng, size_t(n.cout));
    int oh, ow;
    auto want = n.run(in, wts, bias, &oh, &ow);
    featx::SamePadding py = featx::same_padding(n.h, n.k, n.s), px = featx::same_padding(n.w, n.k, n.s);
    featx::ConvGeometry g{n.h, n.w, n.cin, py.out, px.out, n.cout, n.k, n.k, n.s, py.pad_before, px.pad_before};
    std::vector<float> got(size_t(oh) * ow * n.cout, -1.0f);
    // Two row ranges: splitting rows must not change anything.
    const int mid = oh / 2;
    if (depthwise) {
      featx::depthwise_ref(g, in.data(), wts.data(), bias.data(), n.a, got.data(), 0, mid);
      featx::depthwise_ref(g, in.data(), wts.data(), bias.data(), n.a, got.data(), mid, oh);
    } else {
      const auto packed = featx::pack_weights(wts.data(), n.k * n.k * n.cin, n.cout);
      featx::conv2d_ref(g, in.data(), packed.data(), bias.data(), n.a, got.data(), 0, mid);
      featx::conv2d_ref(g, in.data(), packed.data(), bias.data(), n.a, got.data(), mid, oh);
    }
    check_close(got, want);
  }
}

TEST_CASE("pointwise_ref matches a naive matrix product, with and without residual") {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 30; ++trial) {
    std::uniform_int_distribution<int> pix(1, 50), ch(1, 150);
    const int pixels = pix(rng), cin = ch(rng), cout = ch(rng);
    const bool with_residual = trial % 2 == 0;
    const featx::Activation a = trial % 3 == 0 ? featx::Activation::relu6 : featx::Activation::none;
    auto in = random_vector(rng, size_t(pixels) * cin);
    auto wts = random_vector(rng, size_t(cin) * cout);
    auto bias = random_vector(rng, size_t(cout));
    auto res = random_vector(rng, size_t(pixels) * cout);
    std::vector<double> want(size_t(pixels) * cout);
    for (int p = 0; p < pixels; ++p)
      for (int co = 0; co < cout; ++co) {
        double s = bias[co];
        for (int ci = 0; ci < cin; ++ci) s += double(in[size_t(p) * cin + ci]) * wts[size_t(ci) * cout + co];
        if (with_residual) s += res[size_t(p) * cout + co];
        want[size_t(p) * cout + co] = act(s, a);
      }
    std::vector<float> got(want.size());
    const auto packed = featx::pack_weights(wts.data(), cin, cout);
    featx::pointwise_ref(in.data(), 0, size_t(pixels), cin, packed.data(), bias.data(), cout, a,
                         with_residual ? res.data() : nullptr, got.data(), 0, cout);
    check_close(got, want);
  }
}

TEST_CASE("packed weights: panels of 16 columns, K-major, zero-padded, 64-byte aligned") {
  const int rows = 5, cols = 37;
  std::vector<float> m(size_t(rows) * cols);
  for (size_t i = 0; i < m.size(); ++i) m[i] = float(i + 1);
  const auto p = featx::pack_weights(m.data(), rows, cols);
  CHECK(p.size() == size_t(rows) * 48);
  CHECK(reinterpret_cast<uintptr_t>(p.data()) % 64 == 0);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) CHECK(p[featx::packed_index(rows, r, c)] == m[size_t(r) * cols + c]);
  // Row r of panel 1 starts 16 * (rows + r) floats in; the padding is zero.
  CHECK(p[16 * (rows + 2) + 3] == m[size_t(2) * cols + 19]);
  CHECK(featx::packed_panel(p.data(), rows, 32) == p.data() + 32 * rows);
  for (int r = 0; r < rows; ++r)
    for (int c = cols; c < 48; ++c) CHECK(p[featx::packed_index(rows, r, c)] == 0.0f);
}

TEST_CASE("global pooling and dense match naive loops") {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 20; ++trial) {
    std::uniform_int_distribution<int> pix(1, 200), ch(1, 100);
    const int pixels = pix(rng), c = ch(rng);
    auto in = random_vector(rng, size_t(pixels) * c, 0.0f, 6.0f);
    std::vector<double> mean(size_t(c), 0.0), mx(size_t(c), -1e30);
    for (int p = 0; p < pixels; ++p)
      for (int j = 0; j < c; ++j) {
        mean[size_t(j)] += in[size_t(p) * c + j] / double(pixels);
        mx[size_t(j)] = std::max(mx[size_t(j)], double(in[size_t(p) * c + j]));
      }
    std::vector<float> avg(static_cast<size_t>(c)), mxo(static_cast<size_t>(c));
    featx::global_avg_pool_ref(in.data(), size_t(pixels), c, avg.data());
    featx::global_max_pool_ref(in.data(), size_t(pixels), c, mxo.data());
    check_close(avg, mean);
    for (int j = 0; j < c; ++j) CHECK(double(mxo[size_t(j)]) == mx[size_t(j)]);

    const int outs = ch(rng);
    auto w = random_vector(rng, size_t(outs) * c);
    auto b = random_vector(rng, size_t(outs));
    std::vector<double> want(static_cast<size_t>(outs));
    for (int o = 0; o < outs; ++o) {
      double s = b[size_t(o)];
      for (int j = 0; j < c; ++j) s += double(avg[size_t(j)]) * w[size_t(o) * c + j];
      want[size_t(o)] = s;
    }
    std::vector<float> got(static_cast<size_t>(outs));
    featx::dense_ref(avg.data(), c, w.data(), b.data(), outs, got.data());
    check_close(got, want);
  }
}

TEST_CASE("relu6 clamps exactly at 0 and 6") {
  CHECK(featx::apply_activation(-1e-30, featx::Activation::relu6) == 0.0);
  CHECK(featx::apply_activation(6.0000001, featx::Activation::relu6) == 6.0);
  CHECK(featx::apply_activation(7.0, featx::Activation::relu) == 7.0);
  CHECK(featx::apply_activation(-2.0, featx::Activation::none) == -2.0);
}
