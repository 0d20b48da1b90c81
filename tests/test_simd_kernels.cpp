// Every SIMD kernel against its scalar reference, for each ISA this machine
// has, on random shapes with channel counts that are not multiples of the
// vector width, split into row / pixel / channel ranges like the extractor
// splits them. SIMD kernels accumulate in float (FMA), the references in
// double: the bound is a few float roundings per accumulated term.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "featx/kernels/kernel_set.hpp"
#include "featx/kernels/padding.hpp"

namespace {

std::vector<float> random_vector(std::mt19937& rng, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

std::vector<featx::Isa> simd_isas() {
  std::vector<featx::Isa> out;
  for (featx::Isa isa : {featx::Isa::avx2, featx::Isa::avx512, featx::Isa::neon})
    if (featx::isa_supported(isa)) out.push_back(isa);
  return out;
}

// |simd - ref| <= terms * 2^-22 * (1 + |ref|): a float FMA chain of `terms`
// values of magnitude ~1 against an exact sum.
void check_close(const std::vector<float>& got, const std::vector<float>& ref, int terms) {
  REQUIRE(got.size() == ref.size());
  double worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, std::fabs(double(got[i]) - double(ref[i])) / (1.0 + std::fabs(double(ref[i]))));
  CAPTURE(worst);
  CHECK(worst <= double(terms) * std::ldexp(1.0, -22));
}

// A random 1x1 conv: input, weights (row-major and packed), bias, residual.
struct PointwiseCase {
  int pixels, cin, cout;
  std::vector<float> in, matrix;
  featx::AlignedFloats w;
  std::vector<float> b, res;
  PointwiseCase(std::mt19937& rng, int pixels_, int cin_, int cout_)
      : pixels(pixels_), cin(cin_), cout(cout_),
        in(random_vector(rng, size_t(pixels) * cin, -1.0f, 1.0f)),
        matrix(random_vector(rng, size_t(cin) * cout, -1.0f, 1.0f)),
        w(featx::pack_weights(matrix.data(), cin, cout)),
        b(random_vector(rng, size_t(cout), -1.0f, 1.0f)),
        res(random_vector(rng, size_t(pixels) * cout, -1.0f, 1.0f)) {}
  const float* residual(bool on) const { return on ? res.data() : nullptr; }
  // Input channels [k0, k0 + kc) of every pixel as a [pixels][kc] matrix,
  // and their weight rows packed on their own (a K chunk).
  std::vector<float> chunk_input(int k0, int kc) const {
    std::vector<float> out(size_t(pixels) * kc);
    for (int p = 0; p < pixels; ++p)
      std::copy_n(in.begin() + std::ptrdiff_t(size_t(p) * cin + k0), kc, out.begin() + std::ptrdiff_t(size_t(p) * kc));
    return out;
  }
  featx::AlignedFloats chunk_weights(int k0, int kc) const {
    return featx::pack_weights(matrix.data() + size_t(k0) * cout, kc, cout);
  }
};

}  // namespace

TEST_CASE("the machine's ISAs are reported") {
  MESSAGE("best ISA: " << std::string(featx::isa_name(featx::best_isa())) << ", selected: "
                       << std::string(featx::isa_name(featx::selected_isa())));
  CHECK(featx::isa_supported(featx::Isa::scalar));
  CHECK(featx::kernel_set(featx::Isa::scalar).isa == featx::Isa::scalar);
}

TEST_CASE("SIMD pointwise matches pointwise_ref") {
  std::mt19937 rng(23);
  for (featx::Isa isa : simd_isas()) {
    CAPTURE(featx::isa_name(isa));
    const featx::KernelSet k = featx::kernel_set(isa);
    REQUIRE(k.isa == isa);
    for (int trial = 0; trial < 60; ++trial) {
      std::uniform_int_distribution<int> pix(1, 70), ch(1, 200);
      const int pixels = pix(rng), cin = ch(rng), cout = ch(rng);
      const bool with_residual = trial % 2 == 0;
      const featx::Activation a = featx::Activation(trial % 3);
      auto in = random_vector(rng, size_t(pixels) * cin, -1.0f, 1.0f);
      const auto w = featx::pack_weights(random_vector(rng, size_t(cin) * cout, -1.0f, 1.0f).data(), cin, cout);
      auto b = random_vector(rng, size_t(cout), -1.0f, 1.0f);
      auto res = random_vector(rng, size_t(pixels) * cout, -1.0f, 1.0f);
      const float* r = with_residual ? res.data() : nullptr;
      std::vector<float> want(size_t(pixels) * cout), got(want.size(), -7.0f);
      featx::pointwise_ref(in.data(), 0, size_t(pixels), cin, w.data(), b.data(), cout, a, r,
                           want.data(), 0, cout);
      // Split like the extractor: two pixel ranges x two channel ranges
      // (channel splits fall on panel boundaries).
      const size_t pm = size_t(pixels) / 2;
      const int cm = cout / 2 / featx::kPanelWidth * featx::kPanelWidth;
      k.pointwise(in.data(), 0, pm, cin, w.data(), b.data(), cout, a, r, got.data(), 0, cm);
      k.pointwise(in.data(), 0, pm, cin, w.data(), b.data(), cout, a, r, got.data(), cm, cout);
      k.pointwise(in.data(), pm, size_t(pixels), cin, w.data(), b.data(), cout, a, r, got.data(), 0, cm);
      k.pointwise(in.data(), pm, size_t(pixels), cin, w.data(), b.data(), cout, a, r, got.data(), cm, cout);
      CAPTURE(pixels); CAPTURE(cin); CAPTURE(cout);
      check_close(got, want, cin + 2);
    }
  }
}

// The grouped tail's chunked blocks split a 1x1 conv's K into chunks with
// their weight rows packed on their own: the first chunk starts at the
// bias, the others (bias null) continue the chains stored in the output,
// the last adds the residual and the activation. On the float ISAs that is
// the unsplit FMA chain, bit for bit; the scalar reference (double
// accumulation) rounds the partial sums to float between chunks.
TEST_CASE("pointwise continues stored chains over K chunks with the bits of one call") {
  std::mt19937 rng(37);
  std::vector<featx::Isa> isas = simd_isas();
  isas.push_back(featx::Isa::scalar);
  for (featx::Isa isa : isas) {
    CAPTURE(featx::isa_name(isa));
    const featx::KernelSet k = featx::kernel_set(isa);
    for (int trial = 0; trial < 40; ++trial) {
      std::uniform_int_distribution<int> pix(1, 70), ch(2, 200), act(0, 2);
      const int pixels = pix(rng), cin = ch(rng), cout = ch(rng);
      const featx::Activation a = featx::Activation(act(rng));
      const bool with_residual = trial % 2 == 0;
      // 2-4 chunks: cuts anywhere, so some chunks have K = 8, 16 or 24 (the
      // AVX-512 stationary path for the first one) or K = 1.
      std::vector<int> cuts{0, cin};
      const int extra = 1 + trial % 3;
      for (int i = 0; i < extra; ++i) cuts.push_back(std::uniform_int_distribution<int>(1, cin - 1)(rng));
      if (trial % 5 == 0) cuts.push_back(std::min(cin - 1, 16));
      std::sort(cuts.begin(), cuts.end());
      cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
      const PointwiseCase pc(rng, pixels, cin, cout);
      const float* r = pc.residual(with_residual);
      const float* b = pc.b.data();
      std::vector<float> want(size_t(pixels) * cout), got(want.size(), -7.0f);
      k.pointwise(pc.in.data(), 0, size_t(pixels), cin, pc.w.data(), b, cout, a, r, want.data(), 0, cout);
      for (size_t c = 0; c + 1 < cuts.size(); ++c) {
        const int k0 = cuts[c], kc = cuts[c + 1] - k0;
        const auto chunk_in = pc.chunk_input(k0, kc);
        const auto chunk_w = pc.chunk_weights(k0, kc);
        const bool first = c == 0, last = c + 2 == cuts.size();
        // Pixels and channels split like the extractor splits them.
        const size_t pm = size_t(pixels) / 2;
        const int cm = cout / 2 / featx::kPanelWidth * featx::kPanelWidth;
        for (auto [p0, p1] : {std::pair<size_t, size_t>{0, pm}, {pm, size_t(pixels)}})
          for (auto [n0, n1] : {std::pair<int, int>{0, cm}, {cm, cout}})
            if (p1 > p0 && n1 > n0)
              k.pointwise(chunk_in.data(), p0, p1, kc, chunk_w.data(), first ? b : nullptr, cout,
                          last ? a : featx::Activation::none, last ? r : nullptr, got.data(), n0, n1);
      }
      CAPTURE(pixels); CAPTURE(cin); CAPTURE(cout); CAPTURE(trial); CAPTURE(cuts.size());
      if (isa == featx::Isa::scalar) check_close(got, want, int(cuts.size()) + 2);
      else CHECK(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)) == 0);
    }
  }
}

#ifdef FEATX_HAVE_X86_SIMD
// The weights-in-registers path for few input channels must give the same
// bits as the register tiles (each output: bias, then one FMA per k in
// order), also when the extractor splits pixels and channels.
TEST_CASE("AVX-512 pointwise with few input channels is bit-identical to the register tiles") {
  if (!featx::isa_supported(featx::Isa::avx512)) return;
  std::mt19937 rng(31);
  for (int trial = 0; trial < 36; ++trial) {
    std::uniform_int_distribution<int> pix(1, 90), ch(1, 200);
    const int cin = 8 * (1 + trial % 3), pixels = pix(rng), cout = ch(rng);
    REQUIRE(featx::avx512::stationary_handles(cin));
    const featx::Activation a = featx::Activation(trial / 3 % 3);  // every K with every activation
    const bool with_residual = trial / 9 % 2 == 1;
    auto in = random_vector(rng, size_t(pixels) * cin, -1.0f, 1.0f);
    const auto w = featx::pack_weights(random_vector(rng, size_t(cin) * cout, -1.0f, 1.0f).data(), cin, cout);
    auto b = random_vector(rng, size_t(cout), -1.0f, 1.0f);
    auto res = random_vector(rng, size_t(pixels) * cout, -1.0f, 1.0f);
    const float* r = with_residual ? res.data() : nullptr;
    std::vector<float> want(size_t(pixels) * cout, -7.0f), got(want.size(), -7.0f);
    featx::avx512::pointwise_tiles(in.data(), 0, size_t(pixels), cin, w.data(), b.data(), cout, a, r,
                                   want.data(), 0, cout);
    const size_t pm = size_t(pixels) / 3;
    const int cm = cout / 2 / featx::kPanelWidth * featx::kPanelWidth;
    for (auto [p0, p1] : {std::pair<size_t, size_t>{0, pm}, {pm, size_t(pixels)}})
      for (auto [c0, c1] : {std::pair<int, int>{0, cm}, {cm, cout}})
        featx::avx512::pointwise_stationary(in.data(), p0, p1, cin, w.data(), b.data(), cout, a, r,
                                            got.data(), c0, c1);
    CAPTURE(pixels); CAPTURE(cin); CAPTURE(cout); CAPTURE(trial);
    CHECK(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)) == 0);
  }
}

// 8- and 24-channel tiles (out_c 24 and the 8 / 24 tails of 40, 56, 88,
// 136) go in pixel pairs: the same bits as the 12 x 32 tile alone and as
// AVX2 (each output: bias or the stored value, one FMA per k in order,
// residual, activation), for every pixel count of a tile (odd ones end
// with a single pixel), also continuing stored chains (bias null).
TEST_CASE("AVX-512 pixel-pair tiles are bit-identical to the 12 x 32 tile") {
  if (!featx::isa_supported(featx::Isa::avx512)) return;
  const bool have_avx2 = featx::isa_supported(featx::Isa::avx2);
  const featx::KernelSet avx2 = featx::kernel_set(featx::Isa::avx2);
  std::mt19937 rng(41);
  const int in_cs[] = {16, 96, 144, 5};
  int trial = 0;
  for (int cout : {8, 24, 40, 56, 88, 136})
    for (int pixels : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 97}) {
      const int cin = in_cs[trial % 4];
      const featx::Activation a = featx::Activation(trial % 3);
      const bool with_residual = trial / 3 % 2 == 0;
      ++trial;
      const PointwiseCase pc(rng, pixels, cin, cout);
      const float* in = pc.in.data();
      const float* w = pc.w.data();
      const float* b = pc.b.data();
      const float* r = pc.residual(with_residual);
      CAPTURE(pixels); CAPTURE(cin); CAPTURE(cout); CAPTURE(int(a)); CAPTURE(with_residual);
      // Bias null: the first half of K from the bias, then the second half
      // continues the chains stored in the output, as the chunked blocks do.
      const int k0 = cin / 2;
      const auto lo_in = pc.chunk_input(0, k0), hi_in = pc.chunk_input(k0, cin - k0);
      const auto lo_w = pc.chunk_weights(0, k0), hi_w = pc.chunk_weights(k0, cin - k0);
      using Rows = featx::GemmRows;
      auto run = [&](Rows rows, std::vector<float>& out, std::vector<float>& chained) {
        featx::pointwise_tiled<featx::avx512::kPointwiseMR, featx::avx512::kPointwiseNR>(
            in, 0, size_t(pixels), cin, w, b, cout, a, r, out.data(), 0, cout, rows);
        if (k0 > 0)
          featx::pointwise_tiled<featx::avx512::kPointwiseMR, featx::avx512::kPointwiseNR>(
              lo_in.data(), 0, size_t(pixels), k0, lo_w.data(), b, cout, featx::Activation::none,
              nullptr, chained.data(), 0, cout, rows);
        featx::pointwise_tiled<featx::avx512::kPointwiseMR, featx::avx512::kPointwiseNR>(
            hi_in.data(), 0, size_t(pixels), cin - k0, hi_w.data(), k0 > 0 ? nullptr : b, cout, a, r,
            chained.data(), 0, cout, rows);
      };
      std::vector<float> want(size_t(pixels) * cout, -7.0f), got(want.size(), -7.0f);
      std::vector<float> want_chained(want.size(), -7.0f), got_chained(want.size(), -7.0f);
      run(featx::avx512::pointwise_tile_rows<>, want, want_chained);  // the 12 x 32 tile alone
      run(featx::avx512::pointwise_rows<>, got, got_chained);
      CHECK(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)) == 0);
      CHECK(std::memcmp(got_chained.data(), want_chained.data(), want.size() * sizeof(float)) == 0);
      CHECK(std::memcmp(got_chained.data(), got.data(), want.size() * sizeof(float)) == 0);
      // The kernel set's entry (pixel blocks, stationary expands) and AVX2.
      std::vector<float> via_set(want.size(), -7.0f);
      featx::kernel_set(featx::Isa::avx512).pointwise(in, 0, size_t(pixels), cin, w, b, cout, a, r,
                                                      via_set.data(), 0, cout);
      CHECK(std::memcmp(via_set.data(), want.data(), want.size() * sizeof(float)) == 0);
      if (have_avx2) {
        std::vector<float> other(want.size(), -7.0f);
        avx2.pointwise(in, 0, size_t(pixels), cin, w, b, cout, a, r, other.data(), 0, cout);
        CHECK(std::memcmp(other.data(), want.data(), want.size() * sizeof(float)) == 0);
      }
      std::vector<float> ref(want.size());
      featx::pointwise_ref(in, 0, size_t(pixels), cin, w, b, cout, a, r, ref.data(), 0, cout);
      check_close(got, ref, cin + 2);
    }
}
#endif

TEST_CASE("SIMD depthwise and full conv match their references") {
  std::mt19937 rng(29);
  for (featx::Isa isa : simd_isas()) {
    CAPTURE(featx::isa_name(isa));
    const featx::KernelSet k = featx::kernel_set(isa);
    for (int trial = 0; trial < 60; ++trial) {
      // Every fourth trial is wide enough for several 8-pixel runs of a
      // stride-2 row pair.
      std::uniform_int_distribution<int> dim(1, trial % 4 == 0 ? 41 : 19), ch(1, 77), stride(1, 2);
      const bool depthwise = trial % 2 == 0;
      const int kernel = trial % 5 == 0 ? 1 + 2 * (trial % 3) : 3;  // mostly 3x3, some 1x1 / 5x5
      const int h = dim(rng), w = dim(rng), cin = depthwise ? ch(rng) : 1 + trial % 5, s = stride(rng);
      const int cout = depthwise ? cin : ch(rng);
      const featx::Activation a = featx::Activation(trial % 3);
      featx::SamePadding py = featx::same_padding(h, kernel, s), px = featx::same_padding(w, kernel, s);
      featx::ConvGeometry g{h, w, cin, py.out, px.out, cout, kernel, kernel, s, py.pad_before, px.pad_before};
      auto in = random_vector(rng, size_t(h) * w * cin, -1.0f, 1.0f);
      auto wt = random_vector(rng, size_t(kernel) * kernel * (depthwise ? 1 : cin) * cout, -1.0f, 1.0f);
      if (!depthwise) {
        const auto packed = featx::pack_weights(wt.data(), kernel * kernel * cin, cout);
        wt.assign(packed.begin(), packed.end());
      }
      auto b = random_vector(rng, size_t(cout), -1.0f, 1.0f);
      std::vector<float> want(size_t(py.out) * px.out * cout), got(want.size(), -7.0f);
      const featx::ConvKernel ref = depthwise ? featx::depthwise_ref : featx::conv2d_ref;
      const featx::ConvKernel simd = depthwise ? k.depthwise : k.conv2d;
      ref(g, in.data(), wt.data(), b.data(), a, want.data(), 0, py.out);
      for (int row = 0; row < py.out; ++row) simd(g, in.data(), wt.data(), b.data(), a, got.data(), row, row + 1);
      CAPTURE(h); CAPTURE(w); CAPTURE(cin); CAPTURE(cout); CAPTURE(kernel); CAPTURE(s); CAPTURE(depthwise);
      check_close(got, want, kernel * kernel * (depthwise ? 1 : cin) + 2);
      // Row ranges (where a kernel may take rows in pairs) give the same
      // bits as single rows; the split point makes odd and even ranges.
      std::vector<float> ranged(want.size(), -7.0f);
      const int split = std::uniform_int_distribution<int>(0, py.out)(rng);
      simd(g, in.data(), wt.data(), b.data(), a, ranged.data(), 0, split);
      simd(g, in.data(), wt.data(), b.data(), a, ranged.data(), split, py.out);
      CHECK(ranged == got);
    }
  }
}

TEST_CASE("SIMD global pooling is bit-identical to the references") {
  std::mt19937 rng(31);
  for (featx::Isa isa : simd_isas()) {
    CAPTURE(featx::isa_name(isa));
    const featx::KernelSet k = featx::kernel_set(isa);
    for (int trial = 0; trial < 40; ++trial) {
      std::uniform_int_distribution<int> pix(1, 230), ch(1, 150);
      const int pixels = pix(rng), channels = ch(rng);
      auto in = random_vector(rng, size_t(pixels) * channels, -6.0f, 6.0f);
      if (trial % 4 == 0) in[size_t(rng() % in.size())] = std::nanf("");  // max keeps the reference's NaN rule
      std::vector<float> want(static_cast<size_t>(channels)), got(want.size(), -7.0f);
      CAPTURE(pixels); CAPTURE(channels);
      featx::global_avg_pool_ref(in.data(), size_t(pixels), channels, want.data());
      k.avg_pool(in.data(), size_t(pixels), channels, got.data());
      CHECK(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)) == 0);
      featx::global_max_pool_ref(in.data(), size_t(pixels), channels, want.data());
      std::fill(got.begin(), got.end(), -7.0f);
      k.max_pool(in.data(), size_t(pixels), channels, got.data());
      CHECK(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)) == 0);
    }
  }
}
