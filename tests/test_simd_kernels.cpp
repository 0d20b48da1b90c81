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
      auto in = random_vector(rng, size_t(pixels) * cin, -1.0f, 1.0f);
      const auto matrix = random_vector(rng, size_t(cin) * cout, -1.0f, 1.0f);
      const auto w = featx::pack_weights(matrix.data(), cin, cout);
      auto b = random_vector(rng, size_t(cout), -1.0f, 1.0f);
      auto res = random_vector(rng, size_t(pixels) * cout, -1.0f, 1.0f);
      const float* r = with_residual ? res.data() : nullptr;
      std::vector<float> want(size_t(pixels) * cout), got(want.size(), -7.0f);
      k.pointwise(in.data(), 0, size_t(pixels), cin, w.data(), b.data(), cout, a, r, want.data(), 0, cout);
      for (size_t c = 0; c + 1 < cuts.size(); ++c) {
        const int k0 = cuts[c], kc = cuts[c + 1] - k0;
        std::vector<float> chunk_in(size_t(pixels) * kc);
        for (int p = 0; p < pixels; ++p)
          std::copy_n(in.begin() + std::ptrdiff_t(size_t(p) * cin + k0), kc, chunk_in.begin() + std::ptrdiff_t(size_t(p) * kc));
        const auto chunk_w = featx::pack_weights(matrix.data() + size_t(k0) * cout, kc, cout);
        const bool first = c == 0, last = c + 2 == cuts.size();
        // Pixels and channels split like the extractor splits them.
        const size_t pm = size_t(pixels) / 2;
        const int cm = cout / 2 / featx::kPanelWidth * featx::kPanelWidth;
        for (auto [p0, p1] : {std::pair<size_t, size_t>{0, pm}, {pm, size_t(pixels)}})
          for (auto [n0, n1] : {std::pair<int, int>{0, cm}, {cm, cout}})
            if (p1 > p0 && n1 > n0)
              k.pointwise(chunk_in.data(), p0, p1, kc, chunk_w.data(), first ? b.data() : nullptr, cout,
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
#endif

TEST_CASE("SIMD depthwise and full conv match their references") {
  std::mt19937 rng(29);
  for (featx::Isa isa : simd_isas()) {
    CAPTURE(featx::isa_name(isa));
    const featx::KernelSet k = featx::kernel_set(isa);
    for (int trial = 0; trial < 60; ++trial) {
      std::uniform_int_distribution<int> dim(1, 19), ch(1, 77), stride(1, 2);
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
