// featx_image_dump: what featx's image path makes of a file, as a float32
// .npy (H, W, 3), for the Python checks against independent references
// (djpeg, PIL, numpy emulations of TF's kernels).
//
//   featx_image_dump [--preset P] [--size HxW] [--crop F] IN OUT.npy
//       load_image with that preset (default tf, size 224x224)
//   featx_image_dump --decode [--style tensorflow|keras] [--scale D] IN OUT.npy
//       decode only
//   featx_image_dump --time RUNS [load_image or --decode options] [--pixels] IN
//       prints the median milliseconds of RUNS runs (file read each time,
//       a fresh Image each run); --pixels times the decode to 8-bit samples
//       that load_image resizes from, without the float copy
// Prints the decoder that ran on stdout; errors as one line on stderr, exit 1.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "featx/image.hpp"
#include "featx/npy.hpp"

namespace {

int fail(const std::string& message) {
  std::fprintf(stderr, "featx_image_dump: error: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  featx::PreprocessOptions pre;
  featx::DecodeOptions decode;
  bool decode_only = false, pixels_only = false;
  int runs = 0;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--preset") {
      const featx::Status st = featx::parse_preset(value(), &pre.preset);
      if (!st) return fail(st.message());
    } else if (a == "--size") {
      const std::string v = value();
      if (std::sscanf(v.c_str(), "%dx%d", &pre.height, &pre.width) != 2) return fail("bad --size " + v);
    } else if (a == "--crop") {
      pre.central_crop = std::atof(value().c_str());
    } else if (a == "--decode") {
      decode_only = true;
    } else if (a == "--style") {
      const std::string v = value();
      if (v != "tensorflow" && v != "keras") return fail("bad --style " + v);
      decode.style = v == "keras" ? featx::DecodeStyle::keras : featx::DecodeStyle::tensorflow;
    } else if (a == "--scale") {
      decode.jpeg_scale_denom = std::atoi(value().c_str());
    } else if (a == "--pixels") {
      pixels_only = decode_only = true;
    } else if (a == "--time") {
      runs = std::atoi(value().c_str());
    } else {
      files.push_back(a);
    }
  }
  if (files.size() != (runs > 0 ? 1u : 2u)) return fail("usage: see tests/tools/image_dump.cpp");
  featx::Image img;
  auto once = [&]() {
    img = featx::Image{};
    if (pixels_only) {
      std::vector<uint8_t> bytes;
      featx::Status st = featx::read_file(files[0], &bytes, 1u << 31);
      featx::image_detail::Pixels8 px;
      if (st) st = featx::image_detail::decode_samples(bytes.data(), bytes.size(), files[0], decode, &px, &img);
      if (st && px.data() != nullptr) {
        img.height = px.height();
        img.width = px.width();
        img.decoder = px.decoder;
      }
      return st;
    }
    return decode_only ? featx::decode_image_file(files[0], decode, &img) : featx::load_image(files[0], pre, &img);
  };
  if (runs > 0) {
    std::vector<double> ms;
    for (int r = 0; r < runs; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      const featx::Status st = once();
      const auto t1 = std::chrono::steady_clock::now();
      if (!st) return fail(st.message());
      ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    std::printf("%s\t%dx%d\tmedian_ms %.3f\tmin_ms %.3f\n", img.decoder, img.width, img.height, ms[ms.size() / 2],
                ms.front());
    return 0;
  }
  featx::Status st = once();
  if (!st) return fail(st.message());
  st = featx::write_npy(files[1], {img.height, img.width, 3}, img.rgb.data());
  if (!st) return fail(st.message());
  std::printf("%s\n", img.decoder);
  return 0;
}
