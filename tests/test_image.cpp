// Tests for featx/image.hpp: decoding of the shared photos and of small files
// of every supported format built here, resize against a double-precision
// reference written from the formula, central crop arithmetic, and bad input.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "featx/image.hpp"

// stb_image_write makes PNG/BMP/TGA/JPEG test files (a separate library from
// the decoder under test). Static, warnings silenced like in featx itself.
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Weverything"
#elif defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#if defined(__clang__)
#pragma clang diagnostic pop
#elif defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#ifndef FEATX_SHARED_DIR
#define FEATX_SHARED_DIR "../shared"
#endif

namespace fs = std::filesystem;
using featx::Image;

namespace {

using Bytes = std::vector<uint8_t>;

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("featx_test_image_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_bytes(const std::string& path, const Bytes& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

Bytes read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The expected float for an 8-bit or 16-bit sample, as TF's convert_image_dtype.
float u8(int v) { return static_cast<float>(v) * static_cast<float>(1.0 / 255.0); }
float u16(int v) { return static_cast<float>(v) * static_cast<float>(1.0 / 65535.0); }

// Decodes bytes through a real file (the path users take) and checks that
// the in-memory entry point agrees.
featx::Status decode_via_file(const TempDir& tmp, const std::string& name, const Bytes& b, Image* out) {
  const std::string path = tmp.file(name);
  write_bytes(path, b);
  featx::Status st = featx::decode_image_file(path, out);
  Image mem;
  const featx::Status st2 = featx::decode_image_memory(b.data(), b.size(), name, &mem);
  CHECK(st.ok() == st2.ok());
  if (st.ok() && st2.ok()) CHECK(mem.rgb == out->rgb);
  return st;
}

void stbiw_append(void* ctx, void* data, int size) {
  Bytes* b = static_cast<Bytes*>(ctx);
  const uint8_t* p = static_cast<const uint8_t*>(data);
  b->insert(b->end(), p, p + size);
}

// --- hand-written encoders for what stb_image_write cannot produce ---------

uint32_t crc32(const uint8_t* p, size_t n, uint32_t crc = 0) {
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void put_be32(Bytes* b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b->push_back(static_cast<uint8_t>(v >> s));
}

void png_chunk(Bytes* png, const char* type, const Bytes& data) {
  put_be32(png, static_cast<uint32_t>(data.size()));
  Bytes td(type, type + 4);
  td.insert(td.end(), data.begin(), data.end());
  png->insert(png->end(), td.begin(), td.end());
  put_be32(png, crc32(td.data(), td.size()));
}

// A 16-bit PNG (colour type 0 = grey or 2 = RGB) with stored (uncompressed)
// deflate blocks: simple enough to be obviously right.
// Empty `samples` writes only an empty IDAT (for header-only tests).
Bytes png16(int w, int h, int channels, const std::vector<uint16_t>& samples) {
  Bytes raw;
  for (int y = 0; y < h && !samples.empty(); ++y) {
    raw.push_back(0);  // filter: none
    for (int i = 0; i < w * channels; ++i) {
      const uint16_t v = samples[static_cast<size_t>(y * w * channels + i)];
      raw.push_back(static_cast<uint8_t>(v >> 8));
      raw.push_back(static_cast<uint8_t>(v & 0xFF));
    }
  }
  Bytes z = {0x78, 0x01};
  for (size_t at = 0; at < raw.size() || at == 0; at += 65535) {
    const size_t n = std::min<size_t>(65535, raw.size() - at);
    z.push_back(at + n == raw.size() ? 1 : 0);
    z.push_back(static_cast<uint8_t>(n & 0xFF));
    z.push_back(static_cast<uint8_t>(n >> 8));
    z.push_back(static_cast<uint8_t>(~n & 0xFF));
    z.push_back(static_cast<uint8_t>((~n >> 8) & 0xFF));
    z.insert(z.end(), raw.begin() + static_cast<long>(at), raw.begin() + static_cast<long>(at + n));
    if (raw.empty()) break;
  }
  uint32_t a = 1, bsum = 0;
  for (uint8_t c : raw) {
    a = (a + c) % 65521;
    bsum = (bsum + a) % 65521;
  }
  put_be32(&z, (bsum << 16) | a);

  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  Bytes ihdr;
  put_be32(&ihdr, static_cast<uint32_t>(w));
  put_be32(&ihdr, static_cast<uint32_t>(h));
  ihdr.insert(ihdr.end(), {16, static_cast<uint8_t>(channels == 3 ? 2 : 0), 0, 0, 0});
  png_chunk(&png, "IHDR", ihdr);
  png_chunk(&png, "IDAT", z);
  png_chunk(&png, "IEND", {});
  return png;
}

// A GIF89a with a 4-colour global palette and one image per entry of
// `frames` (palette indices, w*h each). LZW data is "uncompressed": a clear
// code before every pixel keeps the code width at 3 bits.
Bytes gif(int w, int h, const uint8_t palette[4][3], const std::vector<std::vector<uint8_t>>& frames) {
  Bytes g = {'G', 'I', 'F', '8', '9', 'a'};
  auto le16 = [&](int v) {
    g.push_back(static_cast<uint8_t>(v & 0xFF));
    g.push_back(static_cast<uint8_t>(v >> 8));
  };
  le16(w);
  le16(h);
  g.insert(g.end(), {0x91, 0, 0});  // global table of 2^(1+1) colours
  for (int i = 0; i < 4; ++i) g.insert(g.end(), palette[i], palette[i] + 3);
  for (const auto& idx : frames) {
    g.push_back(0x2C);
    le16(0);
    le16(0);
    le16(w);
    le16(h);
    g.push_back(0);
    g.push_back(2);  // LZW minimum code size
    Bytes data;
    uint32_t acc = 0;
    int nbits = 0;
    auto emit = [&](uint32_t code) {
      acc |= code << nbits;
      nbits += 3;
      while (nbits >= 8) {
        data.push_back(static_cast<uint8_t>(acc & 0xFF));
        acc >>= 8;
        nbits -= 8;
      }
    };
    for (uint8_t p : idx) {
      emit(4);  // clear
      emit(p);
    }
    emit(5);  // end of information
    if (nbits > 0) data.push_back(static_cast<uint8_t>(acc & 0xFF));
    for (size_t at = 0; at < data.size(); at += 255) {
      const size_t n = std::min<size_t>(255, data.size() - at);
      g.push_back(static_cast<uint8_t>(n));
      g.insert(g.end(), data.begin() + static_cast<long>(at), data.begin() + static_cast<long>(at + n));
    }
    g.push_back(0);
  }
  g.push_back(0x3B);
  return g;
}

// A baseline JPEG of flat 8x8 blocks (block (bx, by) has colour
// colours[by * bw + bx]), written without colour transform (component ids
// 'R','G','B') and unit quantisation, so only DC coefficients are non-zero
// and the decoded pixels equal the colours. stb_image_write's JPEG encoder
// is not used because it shifts negative ints (a UBSan report).
Bytes jpeg_blocks(int bw, int bh, const std::vector<std::array<uint8_t, 3>>& colours) {
  Bytes j = {0xFF, 0xD8};
  auto seg = [&](uint8_t marker, const Bytes& body) {
    j.push_back(0xFF);
    j.push_back(marker);
    const size_t len = body.size() + 2;
    j.push_back(static_cast<uint8_t>(len >> 8));
    j.push_back(static_cast<uint8_t>(len & 0xFF));
    j.insert(j.end(), body.begin(), body.end());
  };
  Bytes dqt(65, 1);
  dqt[0] = 0;
  seg(0xDB, dqt);
  const int w = bw * 8, h = bh * 8;
  seg(0xC0, {8, static_cast<uint8_t>(h >> 8), static_cast<uint8_t>(h & 0xFF), static_cast<uint8_t>(w >> 8),
             static_cast<uint8_t>(w & 0xFF), 3, 'R', 0x11, 0, 'G', 0x11, 0, 'B', 0x11, 0});
  // DC table: categories 0..11 all get 4-bit codes (code == category).
  Bytes dc = {0x00, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  for (uint8_t c = 0; c < 12; ++c) dc.push_back(c);
  seg(0xC4, dc);
  // AC table: only end-of-block, code "0".
  seg(0xC4, {0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00});
  seg(0xDA, {3, 'R', 0x00, 'G', 0x00, 'B', 0x00, 0, 63, 0});
  uint32_t acc = 0;
  int nbits = 0;
  auto put = [&](uint32_t bits, int n) {
    for (int i = n - 1; i >= 0; --i) {
      acc = (acc << 1) | ((bits >> i) & 1u);
      if (++nbits == 8) {
        j.push_back(static_cast<uint8_t>(acc));
        if (acc == 0xFF) j.push_back(0);  // byte stuffing
        acc = 0;
        nbits = 0;
      }
    }
  };
  int pred[3] = {0, 0, 0};
  for (int b = 0; b < bw * bh; ++b)
    for (int c = 0; c < 3; ++c) {
      const int dcv = 8 * (colours[static_cast<size_t>(b)][static_cast<size_t>(c)] - 128);  // FDCT of a flat block
      const int diff = dcv - pred[c];
      pred[c] = dcv;
      int cat = 0;
      while ((std::abs(diff) >> cat) != 0) ++cat;
      put(static_cast<uint32_t>(cat), 4);
      if (cat > 0) put(static_cast<uint32_t>(diff > 0 ? diff : diff + (1 << cat) - 1), cat);
      put(0, 1);  // EOB
    }
  if (nbits > 0) put((1u << (8 - nbits)) - 1, 8 - nbits);  // pad with ones
  j.push_back(0xFF);
  j.push_back(0xD9);
  return j;
}

std::vector<std::array<uint8_t, 3>> block_colours(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::array<uint8_t, 3>> v(static_cast<size_t>(n));
  for (auto& c : v)
    for (uint8_t& x : c) x = static_cast<uint8_t>(rng());
  return v;
}

Bytes text_bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

// A reproducible RGB8 test pattern.
std::vector<uint8_t> pattern(int w, int h, int channels, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> px(static_cast<size_t>(w * h * channels));
  for (uint8_t& v : px) v = static_cast<uint8_t>(rng());
  return px;
}

// Writes pattern(w, h, 3, seed) as an RGB PNG at `path`; returns the pattern.
std::vector<uint8_t> write_pattern_png(const std::string& path, int w, int h, uint32_t seed) {
  const std::vector<uint8_t> px = pattern(w, h, 3, seed);
  Bytes png;
  REQUIRE(stbi_write_png_to_func(stbiw_append, &png, w, h, 3, px.data(), w * 3));
  write_bytes(path, png);
  return px;
}

Image random_image(int h, int w, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(0.f, 1.f);
  Image im;
  im.height = h;
  im.width = w;
  im.rgb.resize(static_cast<size_t>(h * w * 3));
  for (float& v : im.rgb) v = d(rng);
  return im;
}

// Naive bilinear resize in double straight from the tf.image.resize formula:
// src = (dst + 0.5) * in / out - 0.5, clamped to >= 0; lower = floor(src),
// upper = min(lower + 1, in - 1), frac = src - lower. With tf_coords the
// source coordinate is rounded the way TF's kernel computes it (float32
// scale, float32 arithmetic), isolating the blending arithmetic.
std::vector<double> reference_resize(const Image& in, int oh, int ow, bool tf_coords) {
  auto coord = [&](int i, int in_size, int out_size) {
    if (tf_coords) {
      const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
      volatile float product = (static_cast<float>(i) + 0.5f) * scale;  // no FMA, like TF
      return static_cast<double>(product - 0.5f);
    }
    return (i + 0.5) * in_size / out_size - 0.5;
  };
  std::vector<double> out(static_cast<size_t>(oh * ow * 3));
  for (int y = 0; y < oh; ++y) {
    const double sy = std::max(0.0, coord(y, in.height, oh));
    const int y0 = std::min(static_cast<int>(std::floor(sy)), in.height - 1);
    const int y1 = std::min(y0 + 1, in.height - 1);
    const double fy = sy - y0;
    for (int x = 0; x < ow; ++x) {
      const double sx = std::max(0.0, coord(x, in.width, ow));
      const int x0 = std::min(static_cast<int>(std::floor(sx)), in.width - 1);
      const int x1 = std::min(x0 + 1, in.width - 1);
      const double fx = sx - x0;
      for (int c = 0; c < 3; ++c) {
        auto at = [&](int yy, int xx) { return static_cast<double>(in.rgb[static_cast<size_t>((yy * in.width + xx) * 3 + c)]); };
        const double top = at(y0, x0) * (1 - fx) + at(y0, x1) * fx;
        const double bot = at(y1, x0) * (1 - fx) + at(y1, x1) * fx;
        out[static_cast<size_t>((y * ow + x) * 3 + c)] = top * (1 - fy) + bot * fy;
      }
    }
  }
  return out;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(static_cast<double>(a[i]) - b[i]));
  return m;
}

float pixel(const Image& im, int y, int x, int c) {
  return im.rgb[static_cast<size_t>((y * im.width + x) * 3 + c)];
}

uint32_t le32(const Bytes& b, size_t at) {
  return uint32_t(b[at]) | uint32_t(b[at + 1]) << 8 | uint32_t(b[at + 2]) << 16 | uint32_t(b[at + 3]) << 24;
}

bool shared_available(const fs::path& images) {
  if (fs::is_directory(images)) return true;
  MESSAGE("SKIPPED: shared data not found at " << images.string()
                                               << " (set FEATX_SHARED_DIR); shared-image tests did NOT run");
  WARN_MESSAGE(false, "shared data missing: " << images.string());
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------

TEST_CASE("image: every shared photo decodes; BMPs match an independent parse exactly") {
  const fs::path images = fs::path(FEATX_SHARED_DIR) / "images";
  if (!shared_available(images)) return;
  struct Known {
    const char* name;
    int w, h;
  };
  const Known known[] = {{"bird.bmp", 512, 343},          {"cat.bmp", 512, 341},   {"grace_hopper.bmp", 512, 600},
                         {"squat.bmp", 500, 610},         {"parrot.jpg", 512, 929}, {"pets.jpg", 512, 430},
                         {"kite_and_cold.jpg", 1352, 900}};
  int decoded = 0;
  for (const auto& entry : fs::directory_iterator(images)) {
    const std::string ext = entry.path().extension().string();
    if (ext != ".jpg" && ext != ".bmp" && ext != ".png" && ext != ".jpeg") continue;
    const std::string path = entry.path().string();
    CAPTURE(path);
    Image im;
    const featx::Status st = featx::decode_image_file(path, &im);
    REQUIRE_MESSAGE(st.ok(), st.message());
    ++decoded;
    REQUIRE(im.rgb.size() == static_cast<size_t>(im.width * im.height * 3));
    for (const Known& k : known)
      if (entry.path().filename() == k.name) {
        CHECK(im.width == k.w);
        CHECK(im.height == k.h);
      }
    float lo = 1, hi = 0;
    for (float v : im.rgb) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    CHECK(lo >= 0.f);
    CHECK(hi <= 1.f);
    CHECK(hi - lo > 0.5f);  // a real photo, not a blank

    if (ext == ".bmp") {
      // 24-bit BI_RGB: bottom-up rows of BGR, each padded to 4 bytes.
      const Bytes b = read_bytes(path);
      const uint32_t offset = le32(b, 10);
      const int w = static_cast<int>(le32(b, 18)), h = static_cast<int>(le32(b, 22));
      REQUIRE(b[28] == 24);
      REQUIRE(le32(b, 30) == 0);
      REQUIRE(h > 0);
      const size_t stride = (static_cast<size_t>(w) * 3 + 3) / 4 * 4;
      bool same = true;
      for (int y = 0; y < h && same; ++y)
        for (int x = 0; x < w && same; ++x)
          for (int c = 0; c < 3; ++c) {
            const uint8_t v = b[offset + static_cast<size_t>(h - 1 - y) * stride + static_cast<size_t>(x) * 3 + static_cast<size_t>(2 - c)];
            if (pixel(im, y, x, c) != u8(v)) same = false;
          }
      CHECK(same);
    }
  }
  CHECK(decoded >= 7);
}

TEST_CASE("image: formats and channel layouts decode to the expected RGB") {
  TempDir tmp;
  const int w = 5, h = 3;

  SUBCASE("PNG grey, grey+alpha, RGB, RGBA (alpha dropped, not composited)") {
    for (int comp = 1; comp <= 4; ++comp) {
      CAPTURE(comp);
      const std::vector<uint8_t> px = pattern(w, h, comp, 10u + static_cast<uint32_t>(comp));
      Bytes png;
      REQUIRE(stbi_write_png_to_func(stbiw_append, &png, w, h, comp, px.data(), w * comp));
      Image im;
      const featx::Status st = decode_via_file(tmp, "c" + std::to_string(comp) + ".png", png, &im);
      REQUIRE_MESSAGE(st.ok(), st.message());
      REQUIRE(im.width == w);
      REQUIRE(im.height == h);
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
          for (int c = 0; c < 3; ++c) {
            const size_t at = static_cast<size_t>((y * w + x) * comp);
            const int src = comp <= 2 ? px[at] : px[at + static_cast<size_t>(c)];
            CHECK(pixel(im, y, x, c) == u8(src));
          }
    }
  }

  SUBCASE("16-bit PNG: the high byte, as tf.io.decode_png's default dtype=uint8; keras: PIL's clip") {
    const std::vector<uint16_t> rgb = {0, 1, 65535, 257, 32768, 12345, 65534, 2, 40000, 7, 8, 9};
    const auto rgb_png = png16(2, 2, 3, rgb);
    Image im;
    featx::Status st = decode_via_file(tmp, "rgb16.png", rgb_png, &im);
    REQUIRE_MESSAGE(st.ok(), st.message());
    REQUIRE(im.rgb.size() == 12);
    for (size_t i = 0; i < 12; ++i) CHECK(im.rgb[i] == u8(rgb[i] >> 8));

    const std::vector<uint16_t> grey = {0, 1, 65535, 4660, 30000, 65000};
    const auto grey_png = png16(3, 2, 1, grey);
    st = decode_via_file(tmp, "grey16.png", grey_png, &im);
    REQUIRE_MESSAGE(st.ok(), st.message());
    REQUIRE(im.width == 3);
    for (size_t i = 0; i < 6; ++i)
      for (int c = 0; c < 3; ++c) CHECK(im.rgb[i * 3 + static_cast<size_t>(c)] == u8(grey[i] >> 8));

    // PIL (keras.utils.load_img): 16-bit RGB keeps the high byte too, 16-bit
    // grey is clipped at 255 by convert('RGB'). Keras divides by 255.
    featx::DecodeOptions keras;
    keras.style = featx::DecodeStyle::keras;
    st = featx::decode_image_memory(rgb_png.data(), rgb_png.size(), "rgb16.png", keras, &im);
    REQUIRE_MESSAGE(st.ok(), st.message());
    for (size_t i = 0; i < 12; ++i) CHECK(im.rgb[i] == float(rgb[i] >> 8) / 255.0f);
    st = featx::decode_image_memory(grey_png.data(), grey_png.size(), "grey16.png", keras, &im);
    REQUIRE_MESSAGE(st.ok(), st.message());
    for (size_t i = 0; i < 6; ++i)
      for (int c = 0; c < 3; ++c)
        CHECK(im.rgb[i * 3 + static_cast<size_t>(c)] == float(grey[i] < 255 ? grey[i] : 255) / 255.0f);
  }

  SUBCASE("GIF: first frame only") {
    const uint8_t pal[4][3] = {{0, 0, 0}, {255, 0, 0}, {10, 200, 30}, {1, 2, 3}};
    const std::vector<uint8_t> first = {0, 1, 2, 3, 3, 2};
    const std::vector<uint8_t> second = {1, 1, 1, 1, 1, 1};
    Image im;
    const featx::Status st = decode_via_file(tmp, "anim.gif", gif(3, 2, pal, {first, second}), &im);
    REQUIRE_MESSAGE(st.ok(), st.message());
    REQUIRE(im.width == 3);
    REQUIRE(im.height == 2);
    for (size_t i = 0; i < 6; ++i)
      for (int c = 0; c < 3; ++c) CHECK(im.rgb[i * 3 + static_cast<size_t>(c)] == u8(pal[first[i]][c]));
  }

  SUBCASE("TGA (RLE and raw), BMP") {
    const std::vector<uint8_t> px = pattern(w, h, 3, 7);
    for (int rle = 0; rle <= 1; ++rle) {
      stbi_write_tga_with_rle = rle;
      Bytes tga;
      REQUIRE(stbi_write_tga_to_func(stbiw_append, &tga, w, h, 3, px.data()));
      Image im;
      const featx::Status st = decode_via_file(tmp, "t.tga", tga, &im);
      REQUIRE_MESSAGE(st.ok(), st.message());
      REQUIRE(im.rgb.size() == px.size());
      for (size_t i = 0; i < px.size(); ++i) CHECK(im.rgb[i] == u8(px[i]));
    }
    Bytes bmp;
    REQUIRE(stbi_write_bmp_to_func(stbiw_append, &bmp, w, h, 3, px.data()));
    Image im;
    const featx::Status st = decode_via_file(tmp, "b.bmp", bmp, &im);
    REQUIRE_MESSAGE(st.ok(), st.message());
    REQUIRE(im.rgb.size() == px.size());
    for (size_t i = 0; i < px.size(); ++i) CHECK(im.rgb[i] == u8(px[i]));
  }

  SUBCASE("PNM: P6, P5 grey, 16-bit P6") {
    Bytes p6 = text_bytes("P6\n# comment\n2 1\n255\n");
    p6.insert(p6.end(), {0, 128, 255, 10, 20, 30});
    Image im;
    featx::Status st = decode_via_file(tmp, "a.ppm", p6, &im);
    REQUIRE_MESSAGE(st.ok(), st.message());
    CHECK(im.rgb == std::vector<float>{u8(0), u8(128), u8(255), u8(10), u8(20), u8(30)});

    Bytes p5 = text_bytes("P5 3 1 255\n");
    p5.insert(p5.end(), {0, 77, 255});
    st = decode_via_file(tmp, "a.pgm", p5, &im);
    REQUIRE_MESSAGE(st.ok(), st.message());
    CHECK(im.rgb == std::vector<float>{0, 0, 0, u8(77), u8(77), u8(77), 1, 1, 1});

    Bytes p16 = text_bytes("P6\n1 1\n65535\n");
    p16.insert(p16.end(), {0x00, 0x01, 0xFF, 0xFF, 0x12, 0x34});  // big-endian samples
    st = decode_via_file(tmp, "a16.ppm", p16, &im);
    REQUIRE_MESSAGE(st.ok(), st.message());
    CHECK(im.rgb == std::vector<float>{u16(1), u16(65535), u16(0x1234)});

    // Any maxval: samples scale by 1/maxval (10-bit here, two bytes each).
    Bytes p10 = text_bytes("P6 1 1 1023 ");
    p10.insert(p10.end(), {0x03, 0xFF, 0x00, 0x00, 0x02, 0x00});
    st = decode_via_file(tmp, "a10.ppm", p10, &im);
    REQUIRE_MESSAGE(st.ok(), st.message());
    const float s10 = static_cast<float>(1.0 / 1023);
    CHECK(im.rgb == std::vector<float>{1023 * s10, 0, 512 * s10});
  }

  SUBCASE("JPEG (blocks of flat colour decode to within one level)") {
    const auto colours = block_colours(6, 5);
    Image im;
    const featx::Status st = decode_via_file(tmp, "blocks.jpg", jpeg_blocks(3, 2, colours), &im);
    REQUIRE_MESSAGE(st.ok(), st.message());
    REQUIRE(im.width == 24);
    REQUIRE(im.height == 16);
    float worst = 0;
    for (int y = 0; y < 16; ++y)
      for (int x = 0; x < 24; ++x)
        for (int c = 0; c < 3; ++c) {
          const int v = colours[static_cast<size_t>((y / 8) * 3 + x / 8)][static_cast<size_t>(c)];
          worst = std::max(worst, std::abs(pixel(im, y, x, c) - u8(v)));
        }
    CHECK(worst <= 1.0f / 255.f + 1e-6f);
  }
}

TEST_CASE("resize: hand-checked values of TF's half-pixel bilinear") {
  // tf.image.resize([[0, 1]] -> width 4): sources -0.25, 0.25, 0.75, 1.25.
  Image in;
  in.height = 1;
  in.width = 2;
  in.rgb = {0, 0, 0, 1, 1, 1};
  Image out;
  featx::resize_bilinear(in, 1, 4, &out);
  REQUIRE(out.width == 4);
  const float expect_up[4] = {0.f, 0.25f, 0.75f, 1.f};
  for (int x = 0; x < 4; ++x) CHECK(pixel(out, 0, x, 1) == doctest::Approx(expect_up[x]).epsilon(1e-7));

  // Width 4 -> 2: sources 0.5 and 2.5, i.e. means of neighbour pairs.
  in.width = 4;
  in.rgb = {0, 0, 0, 1, 1, 1, 2, 2, 2, 4, 4, 4};
  featx::resize_bilinear(in, 1, 2, &out);
  REQUIRE(out.width == 2);
  CHECK(pixel(out, 0, 0, 0) == 0.5f);
  CHECK(pixel(out, 0, 1, 2) == 3.0f);

  // Down to one pixel samples the centre: (100 -> 1) reads source 49.5.
  Image ramp;
  ramp.height = 100;
  ramp.width = 1;
  for (int y = 0; y < 100; ++y) ramp.rgb.insert(ramp.rgb.end(), 3, static_cast<float>(y));
  featx::resize_bilinear(ramp, 1, 1, &out);
  CHECK(out.rgb == std::vector<float>{49.5f, 49.5f, 49.5f});
}

TEST_CASE("resize: identity is an exact copy, also in place") {
  const Image in = random_image(17, 23, 5);
  Image out;
  featx::resize_bilinear(in, 17, 23, &out);
  CHECK(out.height == 17);
  CHECK(out.width == 23);
  CHECK(std::memcmp(out.rgb.data(), in.rgb.data(), in.rgb.size() * sizeof(float)) == 0);
  Image same = in;
  featx::resize_bilinear(same, 17, 23, &same);
  CHECK(same.rgb == in.rgb);
}

TEST_CASE("resize: matches the double reference for down, up, odd and 1xN sizes") {
  struct Size {
    int ih, iw, oh, ow;
  };
  std::vector<Size> sizes = {{37, 53, 11, 7},  {5, 3, 17, 29},  {7, 9, 13, 5},    {1, 20, 1, 7},   {1, 7, 1, 20},
                             {20, 1, 7, 3},    {1, 1, 5, 5},    {341, 512, 224, 224}, {600, 512, 96, 96},
                             {224, 224, 225, 223}, {2, 2, 1, 1}, {3, 1000, 3, 999}};
  std::mt19937 rng(2024);
  for (int i = 0; i < 60; ++i) {
    auto r = [&] { return 1 + static_cast<int>(rng() % 64); };
    sizes.push_back({r(), r(), r(), r()});
  }
  for (const Size& s : sizes) {
    CAPTURE(s.ih);
    CAPTURE(s.iw);
    CAPTURE(s.oh);
    CAPTURE(s.ow);
    const Image in = random_image(s.ih, s.iw, static_cast<uint32_t>(s.ih * 1000 + s.iw));
    Image out;
    featx::resize_bilinear(in, s.oh, s.ow, &out);
    REQUIRE(out.height == s.oh);
    REQUIRE(out.width == s.ow);
    // Same float32 source coordinates as TF: only float blending error remains.
    CHECK(max_abs_diff(out.rgb, reference_resize(in, s.oh, s.ow, true)) < 1e-6);
    // Exact coordinates: TF's float32 coordinates may be off by a few ulps of
    // the source size, which on noise (neighbour steps up to 1) bounds the error.
    const double coord_tol = std::max(s.ih, s.iw) * std::ldexp(1.0, -21) + 1e-6;
    CHECK(max_abs_diff(out.rgb, reference_resize(in, s.oh, s.ow, false)) < coord_tol);
  }
  // On a smooth image the exact-coordinate reference agrees to ~1e-6.
  Image smooth;
  smooth.height = 61;
  smooth.width = 47;
  for (int y = 0; y < 61; ++y)
    for (int x = 0; x < 47; ++x)
      for (int c = 0; c < 3; ++c)
        smooth.rgb.push_back(static_cast<float>(0.5 + 0.4 * std::sin(0.1 * x + 0.07 * y + c)));
  for (const Size& s : std::vector<Size>{{61, 47, 224, 224}, {61, 47, 13, 11}, {61, 47, 60, 48}}) {
    Image out;
    featx::resize_bilinear(smooth, s.oh, s.ow, &out);
    CHECK(max_abs_diff(out.rgb, reference_resize(smooth, s.oh, s.ow, false)) < 1e-6);
  }
}

TEST_CASE("resize: in place, and degenerate requests give an empty image") {
  Image im = random_image(9, 4, 3);
  const Image copy = im;
  featx::resize_bilinear(im, 5, 8, &im);
  Image expect;
  featx::resize_bilinear(copy, 5, 8, &expect);
  CHECK(im.rgb == expect.rgb);

  Image out;
  featx::resize_bilinear(copy, 0, 8, &out);
  CHECK(out.rgb.empty());
  CHECK(out.height == 0);
  featx::resize_bilinear(Image{}, 4, 4, &out);
  CHECK(out.rgb.empty());
  Image bad = copy;
  bad.rgb.pop_back();
  featx::resize_bilinear(bad, 4, 4, &out);
  CHECK(out.rgb.empty());
}

TEST_CASE("central_crop: TF's offsets and sizes") {
  struct Case {
    int h, w;
    double f;
    int top, left, oh, ow;
  };
  const Case cases[] = {
      {224, 224, 0.875, 14, 14, 196, 196},
      {341, 512, 0.875, 21, 32, 299, 448},  // int((341 - 298.375) / 2) = 21
      {10, 10, 0.8, 1, 1, 8, 8},            // float64 arithmetic; 0.8f would give 0
      {5, 5, 0.5, 1, 1, 3, 3},              // int(1.25): the crop is 3, not round(2.5)
      {1, 1, 0.1, 0, 0, 1, 1},
      {7, 3, 0.999, 0, 0, 7, 3},
      {100, 100, 0.3333, 33, 33, 34, 34},
  };
  for (const Case& c : cases) {
    CAPTURE(c.h);
    CAPTURE(c.w);
    CAPTURE(c.f);
    const Image in = random_image(c.h, c.w, 77);
    Image out;
    REQUIRE(featx::central_crop(in, c.f, &out).ok());
    CHECK(out.height == c.oh);
    CHECK(out.width == c.ow);
    bool same = true;
    for (int y = 0; y < out.height; ++y)
      for (int x = 0; x < out.width; ++x)
        for (int k = 0; k < 3; ++k) same = same && pixel(out, y, x, k) == pixel(in, c.top + y, c.left + x, k);
    CHECK(same);
  }
  Image im = random_image(10, 12, 1);
  const Image copy = im;
  REQUIRE(featx::central_crop(im, 1.0, &im).ok());
  CHECK(im.rgb == copy.rgb);
  REQUIRE(featx::central_crop(im, 0.5, &im).ok());  // in place: int(2.5) = 2, int(3) = 3
  CHECK(im.height == 6);
  CHECK(im.width == 6);
  CHECK(pixel(im, 0, 0, 0) == pixel(copy, 2, 3, 0));

  Image out;
  for (double f : {0.0, -0.5, 1.0001, std::nan("")}) {
    CAPTURE(f);
    const featx::Status st = featx::central_crop(copy, f, &out);
    CHECK(st.code() == featx::StatusCode::invalid_argument);
  }
  CHECK_FALSE(featx::central_crop(Image{}, 0.5, &out).ok());
}

TEST_CASE("load_image: decode, crop, resize") {
  TempDir tmp;
  const std::string path = tmp.file("in.png");
  write_pattern_png(path, 40, 30, 3);

  Image decoded, expect, got;
  REQUIRE(featx::decode_image_file(path, &decoded).ok());
  featx::resize_bilinear(decoded, 224, 224, &expect);
  REQUIRE(featx::load_image(path, featx::PreprocessOptions{}, &got).ok());
  CHECK(got.height == 224);
  CHECK(got.width == 224);
  CHECK(got.rgb == expect.rgb);

  featx::PreprocessOptions opt;
  opt.height = 96;
  opt.width = 128;
  opt.central_crop = 0.875;
  Image cropped;
  REQUIRE(featx::central_crop(decoded, 0.875, &cropped).ok());
  featx::resize_bilinear(cropped, 96, 128, &expect);
  REQUIRE(featx::load_image(path, opt, &got).ok());
  CHECK(got.rgb == expect.rgb);

  opt.height = 0;
  featx::Status st = featx::load_image(path, opt, &got);
  CHECK(st.code() == featx::StatusCode::invalid_argument);
  CHECK(contains(st.message(), "in.png"));
  opt.height = 96;
  opt.central_crop = 0;
  CHECK(featx::load_image(path, opt, &got).code() == featx::StatusCode::invalid_argument);
  st = featx::load_image(tmp.file("nope.png"), featx::PreprocessOptions{}, &got);
  CHECK(st.code() == featx::StatusCode::not_found);
  CHECK(got.rgb.empty());
}

TEST_CASE("presets: names parse back; unknown ones are refused") {
  for (featx::Preset p : {featx::Preset::tf, featx::Preset::tf_antialias, featx::Preset::keras, featx::Preset::fast}) {
    featx::Preset back = featx::Preset::tf;
    REQUIRE(featx::parse_preset(featx::preset_name(p), &back).ok());
    CHECK(back == p);
  }
  CHECK(std::string(featx::preset_name(featx::Preset::tf_antialias)) == "tf-antialias");
  featx::Preset p = featx::Preset::keras;
  const featx::Status st = featx::parse_preset("pil", &p);
  CHECK(st.code() == featx::StatusCode::invalid_argument);
  CHECK(contains(st.message(), "'pil'"));
  CHECK(p == featx::Preset::keras);
  CHECK(featx::PreprocessOptions{}.preset == featx::Preset::tf);  // the default is TF's numbers
}

TEST_CASE("fast preset: the largest DCT scale that keeps 2x the target per side") {
  featx::PreprocessOptions opt;  // 224 x 224
  CHECK(featx::fast_jpeg_scale_denom(3000, 4000, opt) == 4);  // 750 x 1000 (1/8: 375 < 448)
  CHECK(featx::fast_jpeg_scale_denom(3584, 3584, opt) == 8);  // 448 exactly
  CHECK(featx::fast_jpeg_scale_denom(3583, 3584, opt) == 8);  // ceil(3583 / 8) = 448
  CHECK(featx::fast_jpeg_scale_denom(3576, 3584, opt) == 4);  // 447
  CHECK(featx::fast_jpeg_scale_denom(720, 1280, opt) == 1);   // 360 < 448 at 1/2
  CHECK(featx::fast_jpeg_scale_denom(900, 1352, opt) == 2);   // 450 x 676
  opt.central_crop = 0.5;                                     // the crop must keep 2x too
  CHECK(featx::fast_jpeg_scale_denom(3000, 4000, opt) == 2);
  opt.central_crop = 1.0;
  opt.height = 96;
  opt.width = 1000;
  CHECK(featx::fast_jpeg_scale_denom(3000, 4000, opt) == 2);  // the wide side decides
}

TEST_CASE("resize_antialias: TF's triangle spans by hand; upsampling is bilinear") {
  // 4 -> 2: kernel radius 2, samples at 1.0 and 3.0; weights 3/7, 3/7, 1/7 and mirrored.
  Image in;
  in.height = 1;
  in.width = 4;
  in.rgb = {0, 0, 0, 1, 1, 1, 2, 2, 2, 4, 4, 4};
  Image out;
  featx::resize_antialias(in, 1, 2, &out);
  REQUIRE(out.width == 2);
  CHECK(pixel(out, 0, 0, 0) == doctest::Approx(5.0 / 7).epsilon(1e-6));
  CHECK(pixel(out, 0, 1, 2) == doctest::Approx(19.0 / 7).epsilon(1e-6));
  // Same size: weights 0, 1, 0, an exact copy.
  const Image noise = random_image(13, 17, 9);
  featx::resize_antialias(noise, 13, 17, &out);
  CHECK(out.rgb == noise.rgb);
  // Upsampling keeps radius 1: bilinear up to float rounding (edges renormalised, not clamped).
  for (auto size : {std::array<int, 2>{40, 50}, std::array<int, 2>{13, 34}, std::array<int, 2>{26, 17}}) {
    Image bilinear;
    featx::resize_antialias(noise, size[0], size[1], &out);
    featx::resize_bilinear(noise, size[0], size[1], &bilinear);
    CHECK(max_abs_diff(out.rgb, std::vector<double>(bilinear.rgb.begin(), bilinear.rgb.end())) < 2e-6);
  }
  // Downsampling averages where bilinear samples: a 2-pixel checkerboard halved is flat grey.
  Image checker;
  checker.height = checker.width = 16;
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 16; ++x) checker.rgb.insert(checker.rgb.end(), 3, static_cast<float>((x / 2 + y / 2) % 2));
  featx::resize_antialias(checker, 4, 4, &out);
  for (float v : out.rgb) CHECK(v == doctest::Approx(0.5).epsilon(0.15));
  featx::resize_antialias(checker, 0, 4, &out);
  CHECK(out.rgb.empty());
}

TEST_CASE("resize_nearest_pil: Pillow's running-sum coordinates") {
  Image in;
  in.height = 1;
  in.width = 3;
  in.rgb = {0, 0, 0, 1, 1, 1, 2, 2, 2};
  Image out;
  featx::resize_nearest_pil(in, 1, 5, &out);  // 0.3, 0.9, 1.5, 2.1, 2.7
  REQUIRE(out.width == 5);
  const float expect[5] = {0, 0, 1, 2, 2};
  for (int x = 0; x < 5; ++x) CHECK(pixel(out, 0, x, 0) == expect[x]);
  const Image noise = random_image(11, 7, 4);
  featx::resize_nearest_pil(noise, 5, 3, &out);  // steps 2.2 and 7/3
  const int ys[5] = {1, 3, 5, 7, 9}, xs[3] = {1, 3, 5};
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 3; ++x) CHECK(pixel(out, y, x, 1) == pixel(noise, ys[y], xs[x], 1));
  featx::resize_nearest_pil(noise, 11, 7, &out);
  CHECK(out.rgb == noise.rgb);
}

TEST_CASE("load_image: each preset is its decode, crop and resize") {
  TempDir tmp;
  const std::string path = tmp.file("in.png");
  const std::vector<uint8_t> px = write_pattern_png(path, 40, 30, 8);
  featx::PreprocessOptions opt;
  opt.height = 21;
  opt.width = 19;
  opt.central_crop = 0.9;
  Image tf_decoded, keras_decoded, cropped, expect, got;
  REQUIRE(featx::decode_image_file(path, &tf_decoded).ok());
  featx::DecodeOptions keras_style;
  keras_style.style = featx::DecodeStyle::keras;
  REQUIRE(featx::decode_image_file(path, keras_style, &keras_decoded).ok());
  CHECK(tf_decoded.decoder == std::string("stb_image"));
  for (size_t i = 0; i < px.size(); ++i) {
    CHECK(tf_decoded.rgb[i] == static_cast<float>(px[i]) * static_cast<float>(1.0 / 255));
    CHECK(keras_decoded.rgb[i] == static_cast<float>(px[i]) / 255.0f);
  }
  auto check = [&](featx::Preset preset, const Image& decoded, void (*resize)(const Image&, int, int, Image*)) {
    CAPTURE(featx::preset_name(preset));
    opt.preset = preset;
    REQUIRE(featx::central_crop(decoded, 0.9, &cropped).ok());
    resize(cropped, 21, 19, &expect);
    REQUIRE(featx::load_image(path, opt, &got).ok());
    CHECK(got.rgb == expect.rgb);
    CHECK(got.decoder == std::string("stb_image"));
  };
  check(featx::Preset::tf, tf_decoded, featx::resize_bilinear);
  check(featx::Preset::fast, tf_decoded, featx::resize_bilinear);  // only JPEGs decode smaller
  check(featx::Preset::tf_antialias, tf_decoded, featx::resize_antialias);
  check(featx::Preset::keras, keras_decoded, featx::resize_nearest_pil);
}

TEST_CASE("image: the decoder that ran is named") {
  TempDir tmp;
  Bytes ppm = text_bytes("P6 1 1 255 ");
  ppm.insert(ppm.end(), {1, 2, 3});
  Image im;
  REQUIRE(decode_via_file(tmp, "a.ppm", ppm, &im).ok());
  CHECK(im.decoder == std::string("featx-pnm"));
  REQUIRE(decode_via_file(tmp, "b.jpg", jpeg_blocks(1, 1, block_colours(1, 1)), &im).ok());
  CHECK(im.decoder == std::string(featx::jpeg_decoder_name()));
#ifdef FEATX_WITH_LIBJPEG
  CHECK(contains(im.decoder, "libjpeg"));
  CHECK(contains(im.decoder, "JDCT_IFAST, fancy upsampling"));
#else
  CHECK(im.decoder == std::string("stb_image"));
#endif
}

#ifdef FEATX_WITH_LIBJPEG
TEST_CASE("libjpeg: warnings decode like TF, DCT scaling, bad scales") {
  TempDir tmp;
  const Bytes clean = jpeg_blocks(4, 2, block_colours(8, 3));
  Image ref;
  REQUIRE(featx::decode_image_memory(clean.data(), clean.size(), "clean.jpg", &ref).ok());
  CHECK(ref.jpeg_warnings == 0);
  // Junk between the scan and EOI: libjpeg warns "extraneous bytes before
  // marker 0xd9"; TF decodes such files, so does featx (and counts it).
  Bytes junk = clean;
  junk.insert(junk.end() - 2, {0x12, 0x34, 0x56});
  Image im;
  const featx::Status st = featx::decode_image_memory(junk.data(), junk.size(), "junk.jpg", &im);
  REQUIRE_MESSAGE(st.ok(), st.message());
  CHECK(im.jpeg_warnings >= 1);
  CHECK(im.rgb == ref.rgb);
  // 1/2 .. 1/8 in the DCT: flat 8x8 blocks stay flat, one pixel per block at 1/8.
  for (int d : {2, 4, 8}) {
    CAPTURE(d);
    featx::DecodeOptions o;
    o.jpeg_scale_denom = d;
    REQUIRE(featx::decode_image_memory(clean.data(), clean.size(), "clean.jpg", o, &im).ok());
    CHECK(im.width == 32 / d);
    CHECK(im.height == 16 / d);
    CHECK(contains(im.decoder, "1/" + std::to_string(d)));
    CHECK(pixel(im, 0, 0, 0) == pixel(ref, 0, 0, 0));
  }
  featx::DecodeOptions bad;
  bad.jpeg_scale_denom = 3;
  CHECK(featx::decode_image_memory(clean.data(), clean.size(), "clean.jpg", bad, &im).code() ==
        featx::StatusCode::invalid_argument);
  int w = 0, h = 0;
  REQUIRE(featx::read_jpeg_size(clean.data(), clean.size(), "clean.jpg", &w, &h).ok());
  CHECK(w == 32);
  CHECK(h == 16);
}
#endif

TEST_CASE("image: bad inputs fail with a message naming the file, never crash") {
  TempDir tmp;
  auto expect_fail = [&](const std::string& name, const Bytes& b, const std::string& part = "") {
    CAPTURE(name);
    const std::string path = tmp.file(name);
    write_bytes(path, b);
    Image im;
    im.height = 1;
    im.width = 1;
    im.rgb = {1, 2, 3};
    const featx::Status st = featx::decode_image_file(path, &im);
    CHECK_FALSE(st.ok());
    CHECK_MESSAGE(contains(st.message(), path), st.message());
    CHECK_MESSAGE(contains(st.message(), part), st.message());
    CHECK(st.message().find('\n') == std::string::npos);
    CHECK(im.rgb.empty());
    CHECK(im.height == 0);
    return st;
  };

  {
    Image im;
    const featx::Status st = featx::decode_image_file(tmp.file("missing.jpg"), &im);
    CHECK(st.code() == featx::StatusCode::not_found);
    CHECK(contains(st.message(), "missing.jpg"));
    const featx::Status dir = featx::decode_image_file(tmp.path.string(), &im);
    CHECK_FALSE(dir.ok());
    CHECK(contains(dir.message(), tmp.path.string()));
  }
  expect_fail("empty.jpg", {}, "empty file");
  expect_fail("text.jpg", text_bytes("this is not a jpeg, just some text\n"), "not a supported image");
  expect_fail("zero.ppm", text_bytes("P6\n0 0\n255\n"));
  const uint8_t black[4][3] = {};
  expect_fail("zero.gif", gif(0, 0, black, {}));
  expect_fail("huge_side.ppm", text_bytes("P6\n20000 20 255\n"));
  expect_fail("huge_pixels.ppm", text_bytes("P6\n16000 16000\n255\n"), "too large");
  expect_fail("ascii.ppm", text_bytes("P3\n1 1\n255\n0 0 0\n"), "not a supported image");
  expect_fail("over.pgm", Bytes{'P', '5', ' ', '1', ' ', '1', ' ', '9', '\n', 10}, "exceeds maxval");
  expect_fail("nomax.pgm", text_bytes("P5 1 1"), "bad PNM header");
  // Header only; stb refuses it itself, featx says why.
  expect_fail("huge.png", png16(1 << 20, 1 << 20, 1, {}), "image too large (1048576x1048576");
  expect_fail("wide.png", png16(20000, 10, 1, {}), "too large");
  expect_fail("many.png", png16(10000, 10000, 1, {}), "too large");

  // A BMP header claiming zero width.
  {
    const std::vector<uint8_t> px = pattern(4, 4, 3, 1);
    Bytes bmp;
    REQUIRE(stbi_write_bmp_to_func(stbiw_append, &bmp, 4, 4, 3, px.data()));
    Bytes zero = bmp;
    zero[18] = zero[19] = zero[20] = zero[21] = 0;
    expect_fail("zero.bmp", zero);
  }

  // Truncated real files: every cut of the shared JPEG at some lengths, and
  // of generated PNG/BMP/GIF/PNM/JPEG files at every length.
  const fs::path parrot = fs::path(FEATX_SHARED_DIR) / "images" / "parrot.jpg";
  if (fs::exists(parrot)) {
    const Bytes full = read_bytes(parrot.string());
    for (size_t n : {size_t(2), size_t(100), size_t(1000), full.size() / 3, full.size() / 2, full.size() - 2}) {
      expect_fail("cut" + std::to_string(n) + ".jpg", Bytes(full.begin(), full.begin() + static_cast<long>(n)));
    }
    expect_fail("cut.jpg", Bytes(full.begin(), full.begin() + static_cast<long>(full.size() / 2)), "truncated JPEG");
  } else {
    MESSAGE("SKIPPED: truncated real JPEG (shared data not found at " << FEATX_SHARED_DIR << ")");
  }

  const std::vector<uint8_t> px = pattern(24, 16, 3, 42);
  Bytes png, bmp;
  REQUIRE(stbi_write_png_to_func(stbiw_append, &png, 24, 16, 3, px.data(), 24 * 3));
  REQUIRE(stbi_write_bmp_to_func(stbiw_append, &bmp, 24, 16, 3, px.data()));
  const Bytes jpg = jpeg_blocks(3, 2, block_colours(6, 9));
  Bytes ppm = text_bytes("P6\n24 16\n255\n");
  ppm.insert(ppm.end(), px.begin(), px.end());
  const uint8_t pal[4][3] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
  std::vector<uint8_t> idx(24 * 16);
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = px[i] & 3;
  const Bytes gf = gif(24, 16, pal, {idx});
  Bytes tga_raw, tga_rle;
  stbi_write_tga_with_rle = 0;
  REQUIRE(stbi_write_tga_to_func(stbiw_append, &tga_raw, 24, 16, 3, px.data()));
  stbi_write_tga_with_rle = 1;
  std::vector<uint8_t> runs = px;  // some runs so RLE packets of both kinds occur
  std::fill(runs.begin(), runs.begin() + 60, uint8_t(9));
  REQUIRE(stbi_write_tga_to_func(stbiw_append, &tga_rle, 24, 16, 3, runs.data()));
  struct Named {
    const char* name;
    const Bytes* bytes;
  };
  for (const Named& f : {Named{"t.png", &png}, Named{"t.bmp", &bmp}, Named{"t.jpg", &jpg}, Named{"t.ppm", &ppm},
                         Named{"t.gif", &gf}, Named{"raw.tga", &tga_raw}, Named{"rle.tga", &tga_rle}}) {
    const std::string name = f.name;
    CAPTURE(name);
    Image im;
    REQUIRE(featx::decode_image_memory(f.bytes->data(), f.bytes->size(), f.name, &im).ok());
    int accepted = 0;
    for (size_t n = 0; n < f.bytes->size(); ++n) {
      const featx::Status st = featx::decode_image_memory(f.bytes->data(), n, f.name, &im);
      if (st.ok()) {
        if (name != "t.gif" || n + 1 != f.bytes->size())
          MESSAGE(name << " accepted when cut at " << n << " of " << f.bytes->size() << " bytes");
        ++accepted;
      } else {
        CHECK(contains(st.message(), f.name));
      }
    }
    // A GIF needs no trailer byte after the (complete) first frame.
    CHECK(accepted == (name == "t.gif" ? 1 : 0));
  }

  // Random bytes, bare and behind each format's magic: no crash, and any
  // success must be self-consistent.
  std::mt19937 rng(7);
  const std::vector<Bytes> magics = {{}, {0xFF, 0xD8, 0xFF}, {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'},
                                     {'B', 'M'}, text_bytes("GIF89a"), text_bytes("P6\n"), {0, 0, 2, 0, 0, 0, 0, 0}};
  int failures = 0, trials = 0;
  for (const Bytes& magic : magics) {
    for (int t = 0; t < 300; ++t) {
      Bytes b = magic;
      const size_t n = rng() % 400;
      for (size_t i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(rng()));
      Image im;
      const featx::Status st = featx::decode_image_memory(b.data(), b.size(), "random.bin", &im);
      ++trials;
      if (st.ok()) {
        CHECK(im.rgb.size() == static_cast<size_t>(im.width) * static_cast<size_t>(im.height) * 3);
      } else {
        ++failures;
        CHECK(contains(st.message(), "random.bin"));
      }
    }
  }
  CHECK(failures > trials * 9 / 10);
  expect_fail("random.jpg", [&] {
    Bytes b(1000);
    for (uint8_t& v : b) v = static_cast<uint8_t>(rng());
    b[0] = 0x42;  // not a 'B' or any other magic
    return b;
  }());

  // Random corruption of valid files (bit flips): no crash.
  for (const Named& f : {Named{"t.png", &png}, Named{"t.bmp", &bmp}, Named{"t.jpg", &jpg}, Named{"t.gif", &gf},
                         Named{"t.ppm", &ppm}, Named{"rle.tga", &tga_rle}}) {
    for (int t = 0; t < 200; ++t) {
      Bytes b = *f.bytes;
      for (int k = 0; k < 3; ++k) b[rng() % b.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
      Image im;
      (void)featx::decode_image_memory(b.data(), b.size(), f.name, &im);
    }
  }
}

TEST_CASE("image limits: set per decode, checked on the header, never above the compile-time ones") {
  // 32x16 pixels in each format: JPEG (libjpeg or stb), PNG, PNM.
  const Bytes jpeg = jpeg_blocks(4, 2, block_colours(8, 3));
  const Bytes png = png16(32, 16, 1, std::vector<uint16_t>(32 * 16, 1000));
  Bytes pnm = text_bytes("P5\n32 16\n255\n");
  pnm.resize(pnm.size() + 32 * 16, 7);
  const std::vector<std::pair<const char*, const Bytes*>> files = {{"a.jpg", &jpeg}, {"a.png", &png}, {"a.pgm", &pnm}};
  for (const auto& file : files) {
    CAPTURE(file.first);
    const Bytes& bytes = *file.second;
    Image im;
    featx::DecodeOptions o;
    REQUIRE(featx::decode_image_memory(bytes.data(), bytes.size(), file.first, o, &im).ok());
    o.limits.max_pixels = 32 * 16;  // exactly the image: still taken
    CHECK(featx::decode_image_memory(bytes.data(), bytes.size(), file.first, o, &im).ok());
    o.limits.max_pixels = 32 * 16 - 1;
    featx::Status st = featx::decode_image_memory(bytes.data(), bytes.size(), file.first, o, &im);
    CHECK(st.code() == featx::StatusCode::unsupported);
    CHECK(st.message() == std::string(file.first) + ": image too large (32x16; limits " +
                              std::to_string(FEATX_MAX_IMAGE_SIDE) + " per side, 511 pixels)");
    CHECK(im.rgb.empty());
    o.limits = featx::ImageLimits{};
    o.limits.max_side = 31;
    st = featx::decode_image_memory(bytes.data(), bytes.size(), file.first, o, &im);
    CHECK(contains(st.message(), "image too large (32x16; limits 31 per side"));
    o.limits = featx::ImageLimits{};
    o.limits.max_file_bytes = bytes.size() - 1;
    st = featx::decode_image_memory(bytes.data(), bytes.size(), file.first, o, &im);
    CHECK(st.code() == featx::StatusCode::unsupported);
    CHECK(contains(st.message(), "file too large to decode (" + std::to_string(bytes.size()) + " bytes; limit"));
    // Through load_image too (PreprocessOptions::limits).
    featx::PreprocessOptions pre;
    pre.height = pre.width = 8;
    pre.limits.max_pixels = 100;
    st = featx::load_image_memory(bytes.data(), bytes.size(), file.first, pre, &im);
    CHECK(contains(st.message(), "image too large (32x16; limits"));
    pre.limits.max_pixels = 512;
    CHECK(featx::load_image_memory(bytes.data(), bytes.size(), file.first, pre, &im).ok());
  }
  // Larger values than the macros mean the macros.
  featx::ImageLimits wide;
  wide.max_side = int64_t(1) << 40;
  wide.max_pixels = int64_t(1) << 60;
  wide.max_file_bytes = UINT64_MAX;
  CHECK(wide.side() == FEATX_MAX_IMAGE_SIDE);
  CHECK(wide.pixels() == FEATX_MAX_IMAGE_PIXELS);
  CHECK(wide.file_bytes() == uint64_t(INT_MAX));
  CHECK(!wide.allows(FEATX_MAX_IMAGE_SIDE + 1, 1));
  CHECK(!wide.allows(int64_t(1) << 40, int64_t(1) << 40));  // no overflow in w * h
  // A file over the limit is refused before it is read whole.
  TempDir tmp;
  const std::string path = (tmp.path / "big.pgm").string();
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(pnm.data()), pnm.size());
  featx::DecodeOptions small;
  small.limits.max_file_bytes = 100;
  Image im;
  CHECK(!featx::decode_image_file(path, small, &im).ok());
  CHECK(featx::decode_image_file(path, &im).ok());
}

// ---- stb_image's JPEG pre-check (featx/detail/stb_jpeg_check.hpp, fuzz/) ----

namespace {

// A small baseline JPEG: SOI, DQT, SOF0 (8x8 grey), DHT DC and AC, SOS, EOI;
// the pieces the cases below cut and change.
Bytes jpeg_parts(bool dht_dc, bool dht_ac, int dc_codes = 1) {
  Bytes b = {0xFF, 0xD8};
  b.insert(b.end(), {0xFF, 0xDB, 0x00, 0x43, 0x00});
  b.insert(b.end(), 64, 1);
  b.insert(b.end(), {0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x08, 0x00, 0x08, 0x01, 0x01, 0x11, 0x00});
  auto dht = [&](uint8_t table, int codes) {  // `codes` of lengths 1 and 2 (255 at most per length)
    b.insert(b.end(), {0xFF, 0xC4, uint8_t((19 + codes) >> 8), uint8_t((19 + codes) & 0xFF), table,
                       uint8_t(std::min(codes, 255)), uint8_t(codes - std::min(codes, 255))});
    b.insert(b.end(), 14, 0);
    b.insert(b.end(), size_t(codes), 0);
  };
  if (dht_dc) dht(0x00, dc_codes);
  if (dht_ac) dht(0x10, 1);
  b.insert(b.end(), {0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00, 0x00, 0xFF, 0xD9});
  return b;
}

std::string stb_refusal(const Bytes& b) {
  const char* why = featx::detail::stb_jpeg_refusal(b.data(), b.size());
  return why ? why : "";
}

}  // namespace

TEST_CASE("stb pre-check: the JPEG structures stb_image 2.27 reads out of bounds on are refused") {
  CHECK(stb_refusal(jpeg_parts(true, true)) == "");
  // Two code counts of 255 (fuzz/regressions/image_stb/dht-over-256-codes): size[257] overflows.
  Bytes over = {0xFF, 0xD8, 0xFF, 0xC4, 0x01, 0x00, 0x01, 0xFF, 0xFF};
  CHECK(contains(stb_refusal(over), "more than 256 codes"));
  over = {0xFF, 0xFF, 0xD8, 0xFF, 0xC4, 0x01, 0x00, 0x00, 0xD9, 0xD9};  // fill bytes before SOI
  CHECK(contains(stb_refusal(over), "more than 256 codes"));
  CHECK(stb_refusal(jpeg_parts(true, true, 256)) == "");  // 256 codes: the most a table has
  CHECK(contains(stb_refusal(jpeg_parts(true, true, 257)), "more than 256 codes"));
  // A scan using a table no DHT defined: stb's decoder memory is not cleared.
  CHECK(contains(stb_refusal(jpeg_parts(false, true)), "Huffman table the file does not define"));
  CHECK(contains(stb_refusal(jpeg_parts(true, false)), "Huffman table the file does not define"));
  // The message reaches the caller in one line, through the stb path.
  Image im;
  featx::image_detail::Pixels8 px;
  const Bytes bad = jpeg_parts(true, false);
  const featx::Status st =
      featx::image_detail::decode_stb(bad.data(), bad.size(), "x.jpg", featx::DecodeStyle::tensorflow, {}, &px, &im);
  CHECK(!st.ok());
  CHECK(st.message().find('\n') == std::string::npos);
  CHECK(contains(st.message(), "x.jpg: corrupt JPEG: a scan uses a Huffman table"));
}

// stb_image decodes a JPEG with 0xFF fill bytes before its SOI marker;
// libjpeg and TF refuse it. The campaign found a libjpeg build handing such
// a file to stb (fuzz/regressions/image_jpeg/fill-bytes-before-soi): every
// build refuses it now, and the same JPEG without the prefix decodes.
TEST_CASE("a JPEG with fill bytes before its SOI marker is refused in every build") {
  const Bytes clean = jpeg_blocks(1, 1, block_colours(1, 1));
  Image im;
  REQUIRE(featx::decode_image_memory(clean.data(), clean.size(), "clean.jpg", &im).ok());
  for (size_t fill : {1, 2, 7}) {
    Bytes prefixed(fill, 0xFF);
    prefixed.insert(prefixed.end(), clean.begin(), clean.end());
    const featx::Status st = featx::decode_image_memory(prefixed.data(), prefixed.size(), "fill.jpg", &im);
    CAPTURE(fill);
    CHECK(st.code() == featx::StatusCode::corrupt);
    CHECK(st.message() == "fill.jpg: not a JPEG TensorFlow reads: 0xFF fill bytes before the SOI marker");
  }
  // FF FF followed by something other than SOI is not this case.
  const Bytes other = {0xFF, 0xFF, 0x00, 0x01};
  CHECK(!featx::detail::stb_jpeg_fill_bytes_before_soi(other.data(), other.size()));
}

// Every minimised finding of the image fuzz targets: a one-line error or an
// image, never a crash (and in the ASan build, no report). The first byte is
// the harness's option byte (fuzz/fuzz_image.hpp). stb-ub-* inputs are left
// to the fuzz build: they show undefined shifts inside stb_image itself that
// no pre-check can refuse (fuzz/ubsan_ignore.txt), which UBSan would report
// here too.
TEST_CASE("fuzz regressions: every image_stb and image_jpeg input fails cleanly or decodes") {
#ifdef FEATX_SOURCE_DIR
  int files = 0;
  for (const char* target : {"image_stb", "image_jpeg", "preprocess"}) {
    const fs::path dir = fs::path(FEATX_SOURCE_DIR) / "fuzz" / "regressions" / target;
    if (!fs::is_directory(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.path().filename().string().rfind("stb-ub-", 0) == 0) continue;
      const Bytes b = read_bytes(entry.path().string());
      if (b.empty()) continue;
      CAPTURE(entry.path().string());
      const size_t skip = std::string(target) == "preprocess" ? 3 : 1;
      if (b.size() < skip) continue;
      featx::DecodeOptions options;
      options.style = (b[0] & 1) ? featx::DecodeStyle::keras : featx::DecodeStyle::tensorflow;
      Image im;
      const featx::Status st = featx::decode_image_memory(b.data() + skip, b.size() - skip, "fuzz", options, &im);
      if (!st.ok()) {
        CHECK(!st.message().empty());
        CHECK(st.message().find('\n') == std::string::npos);
      }
      ++files;
    }
  }
  MESSAGE(files << " regression inputs");
#endif
}

// No valid JPEG is refused: the shared photos and cjpeg's modes (the variants
// of fuzz/make_corpus.py) pass the check, and with stb decode to exactly the
// pixels stb_image gives without it.
TEST_CASE("stb pre-check: refuses no valid JPEG (shared photos, every cjpeg mode)") {
  std::vector<std::pair<std::string, Bytes>> jpegs;
  const fs::path images = fs::path(FEATX_SHARED_DIR) / "images";
  if (fs::is_directory(images))
    for (const auto& entry : fs::directory_iterator(images))
      if (entry.path().extension() == ".jpg") jpegs.emplace_back(entry.path().string(), read_bytes(entry.path().string()));
  TempDir tmp;
  // A 37x23 picture with gradients and an edge, as a PPM for cjpeg.
  std::string ppm = "P6\n37 23\n255\n";
  for (int y = 0; y < 23; ++y)
    for (int x = 0; x < 37; ++x) {
      const int v[3] = {x * 7, y * 11, (x < 12 && y < 10) ? 250 : (x * y) % 256};
      for (int c : v) ppm.push_back(char(c & 0xFF));
    }
  write_bytes(tmp.file("in.ppm"), Bytes(ppm.begin(), ppm.end()));
  const char* modes[] = {"-quality 85",  "-progressive",        "-restart 1",         "-restart 3B -progressive",
                         "-grayscale",   "-grayscale -progressive", "-sample 2x2",     "-sample 1x1",
                         "-sample 2x1 -progressive", "-optimize -quality 30", "-quality 100 -dct float"};
  if (std::system("cjpeg -version > /dev/null 2>&1") == 0) {
    for (const char* mode : modes) {
      const std::string out = tmp.file("out.jpg");
      const std::string cmd = std::string("cjpeg ") + mode + " -outfile " + out + " " + tmp.file("in.ppm");
      REQUIRE(std::system(cmd.c_str()) == 0);
      jpegs.emplace_back(std::string("cjpeg ") + mode, read_bytes(out));
    }
  } else {
    MESSAGE("cjpeg not found (libjpeg-turbo-progs): shared photos only");
  }
  for (const auto& [name, b] : jpegs) {
    CAPTURE(name);
    CHECK(stb_refusal(b) == "");
#ifndef FEATX_WITH_LIBJPEG
    Image im;
    const featx::Status st = featx::decode_image_memory(b.data(), b.size(), name, &im);
    REQUIRE_MESSAGE(st.ok(), st.message());
    int w = 0, h = 0, c = 0;
    stbi_uc* px = stbi_load_from_memory(b.data(), int(b.size()), &w, &h, &c, 3);
    REQUIRE(px != nullptr);
    REQUIRE(size_t(w) * size_t(h) * 3 == im.rgb.size());
    const float* unit = featx::image_detail::unit_table(featx::DecodeStyle::tensorflow);
    size_t differ = 0;
    for (size_t i = 0; i < im.rgb.size(); ++i) differ += im.rgb[i] != unit[px[i]];
    stbi_image_free(px);
    CHECK(differ == 0);
#endif
  }
}
