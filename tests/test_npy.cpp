// Tests for featx/npy.hpp: round trips, the exact bytes numpy expects, header
// variants other writers produce, and every rejection path with its message.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "featx/npy.hpp"

namespace fs = std::filesystem;

namespace {

// A fresh scratch directory per test case, removed afterwards.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("featx_test_npy_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// Builds an .npy file by hand: magic, version, header length, header, payload.
std::vector<uint8_t> make_npy(int major, const std::string& header, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> b = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(major), 0};
  const size_t n = header.size();
  b.push_back(static_cast<uint8_t>(n & 0xFF));
  b.push_back(static_cast<uint8_t>((n >> 8) & 0xFF));
  if (major >= 2) {
    b.push_back(static_cast<uint8_t>((n >> 16) & 0xFF));
    b.push_back(static_cast<uint8_t>((n >> 24) & 0xFF));
  }
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

std::vector<uint8_t> float_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());  // test host is little-endian
  return b;
}

featx::Status parse(const std::vector<uint8_t>& b, featx::NpyArray* a, const std::string& name = "mem.npy") {
  return featx::read_npy_memory(b.data(), b.size(), name, a);
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("npy: round trip keeps shape and every bit of the data") {
  TempDir tmp;
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> dist(-10.f, 10.f);
  const std::vector<std::vector<int64_t>> shapes = {{}, {0}, {3}, {2, 3}, {2, 3, 4}, {1, 1, 1, 1, 5}, {4, 0, 2}};
  for (const auto& shape : shapes) {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    std::vector<float> data(n);
    for (float& v : data) v = dist(rng);
    if (n >= 4) {  // special values must survive untouched
      data[0] = -0.0f;
      data[1] = std::numeric_limits<float>::infinity();
      data[2] = std::numeric_limits<float>::quiet_NaN();
      data[3] = std::numeric_limits<float>::denorm_min();
    }
    const std::string path = tmp.file("a.npy");
    REQUIRE(featx::write_npy(path, shape, n ? data.data() : nullptr).ok());
    featx::NpyArray a;
    const featx::Status st = featx::read_npy(path, &a);
    REQUIRE_MESSAGE(st.ok(), st.message());
    CHECK(a.shape == shape);
    REQUIRE(a.data.size() == n);
    if (n) CHECK(std::memcmp(a.data.data(), data.data(), n * 4) == 0);
  }
}

TEST_CASE("npy: writer produces numpy's 1.0 layout, 64-byte aligned") {
  TempDir tmp;
  const std::string path = tmp.file("layout.npy");
  const std::vector<float> data = {0, 1, 2, 3, 4, 5};
  REQUIRE(featx::write_npy(path, {2, 3}, data.data()).ok());
  const std::vector<uint8_t> b = read_bytes(path);
  REQUIRE(b.size() == 128 + 24);
  const uint8_t magic[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  CHECK(std::memcmp(b.data(), magic, 8) == 0);
  const size_t hlen = b[8] | (b[9] << 8);
  CHECK(hlen == 118);
  const std::string header(b.begin() + 10, b.begin() + 10 + static_cast<long>(hlen));
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  CHECK(header.substr(0, dict.size()) == dict);
  CHECK(header.back() == '\n');
  CHECK(header.find_first_not_of(' ', dict.size()) == hlen - 1);  // spaces then '\n'

  // 1-D and 0-d spellings are the Python tuple ones.
  REQUIRE(featx::write_npy(path, {3}, data.data()).ok());
  std::vector<uint8_t> b1 = read_bytes(path);
  CHECK(contains(std::string(b1.begin(), b1.end()), "'shape': (3,), }"));
  REQUIRE(featx::write_npy(path, {}, data.data()).ok());
  b1 = read_bytes(path);
  CHECK(contains(std::string(b1.begin(), b1.end()), "'shape': (), }"));
  CHECK(b1.size() == 128 + 4);
}

TEST_CASE("npy: header variants from other writers") {
  const std::vector<uint8_t> six = float_bytes({1, 2, 3, 4, 5, 6});
  struct Case {
    int major;
    std::string header;
    std::vector<int64_t> shape;
  };
  const std::vector<Case> cases = {
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }          \n", {2, 3}},
      {2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }          \n", {2, 3}},
      {3, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }\n", {6}},
      {1, "{'descr':'<f4','fortran_order':False,'shape':(2,3)}", {2, 3}},
      {1, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3, 2)}\n", {3, 2}},
      {1, "{'shape': (1, 6), 'fortran_order': False, 'descr': '<f4'}\n", {1, 6}},
      {1, " {\t'descr' : '<f4' ,\n 'fortran_order' : False ,\r\n 'shape' : ( 6 , ) , } \n", {6}},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }\n", {2, 3}},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 1, 3,), }\n", {1, 2, 1, 3}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.header);
    featx::NpyArray a;
    const featx::Status st = parse(make_npy(c.major, c.header, six), &a);
    REQUIRE_MESSAGE(st.ok(), st.message());
    CHECK(a.shape == c.shape);
    CHECK(a.data == std::vector<float>({1, 2, 3, 4, 5, 6}));
  }
  featx::NpyArray scalar;
  REQUIRE(parse(make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }\n", float_bytes({7.5f})), &scalar).ok());
  CHECK(scalar.shape.empty());
  CHECK(scalar.data == std::vector<float>({7.5f}));
}

TEST_CASE("npy: wrong dtypes are rejected and named, never converted") {
  const std::vector<uint8_t> payload(48, 0);
  for (const std::string dtype : {"<f8", "<i4", ">f4", "|u1", "<f2", "<c8"}) {
    CAPTURE(dtype);
    featx::NpyArray a;
    const std::string h = "{'descr': '" + dtype + "', 'fortran_order': False, 'shape': (2, 3), }\n";
    const featx::Status st = parse(make_npy(1, h, payload), &a, "weights.npy");
    CHECK_FALSE(st.ok());
    CHECK(st.code() == featx::StatusCode::unsupported);
    CHECK(contains(st.message(), "weights.npy"));
    CHECK(contains(st.message(), "'" + dtype + "'"));
    CHECK(a.data.empty());
  }
  featx::NpyArray a;
  const featx::Status st = parse(make_npy(1, "{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (2,), }\n", payload), &a);
  CHECK_FALSE(st.ok());
  CHECK(contains(st.message(), "structured"));
}

TEST_CASE("npy: malformed files give one-line errors naming the file") {
  const std::vector<uint8_t> six = float_bytes({1, 2, 3, 4, 5, 6});
  const std::string good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";
  struct Case {
    std::string what;
    std::vector<uint8_t> bytes;
    std::string expect;  // part of the message
  };
  std::vector<uint8_t> bad_magic = make_npy(1, good, six);
  bad_magic[1] = 'X';
  std::vector<uint8_t> truncated_header = make_npy(1, good, {});
  truncated_header.resize(40);
  std::vector<uint8_t> big_header_len = make_npy(2, good, six);
  big_header_len[11] = 0x7F;  // header length ~2 GB in a tiny file

  const std::vector<Case> cases = {
      {"bad magic", bad_magic, "bad magic"},
      {"text", {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'}, "bad magic"},
      {"tiny", {0x93, 'N', 'U'}, "bad magic"},
      {"no version", {0x93, 'N', 'U', 'M', 'P', 'Y', 1}, "truncated"},
      {"no length", {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 10, 0}, "truncated"},
      {"version 4", make_npy(2, good, six), ""},  // patched below
      {"truncated header", truncated_header, "truncated .npy header"},
      {"header length beyond file", big_header_len, "truncated .npy header"},
      {"fortran", make_npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }\n", six), "fortran_order"},
      {"truncated data", make_npy(1, good, std::vector<uint8_t>(six.begin(), six.end() - 3)), "truncated data"},
      {"no data", make_npy(1, good, {}), "truncated data"},
      {"extra data", make_npy(1, good, float_bytes({1, 2, 3, 4, 5, 6, 7})), "size mismatch"},
      {"negative dim", make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 3), }\n", six), "negative"},
      {"absurd shape", make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4611686018427387904), }\n", six), "absurd shape"},
      {"int64 overflow", make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, ), }\n", six), "overflows int64"},
      {"missing key", make_npy(1, "{'descr': '<f4', 'shape': (2, 3), }\n", six), "lacks 'fortran_order'"},
      {"duplicate key", make_npy(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}\n", six), "duplicate"},
      {"unknown key", make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}\n", six), "unexpected key"},
      {"not a dict", make_npy(1, "['descr', '<f4']\n", six), "not a dict"},
      {"junk after dict", make_npy(1, good + "junk", six), "after the header"},
      {"unterminated string", make_npy(1, "{'descr: <f4}", six), "quoted key"},
      {"bool spelled wrong", make_npy(1, "{'descr': '<f4', 'fortran_order': false, 'shape': (2, 3), }\n", six), "True or False"},
      {"shape not tuple", make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3], }\n", six), "not a tuple"},
      {"shape unclosed", make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3", six), "bad shape"},
  };
  for (const Case& c0 : cases) {
    Case c = c0;
    if (c.what == "version 4") {
      c.bytes[6] = 4;
      c.expect = "version 4.0";
    }
    CAPTURE(c.what);
    featx::NpyArray a;
    a.shape = {9};
    a.data = {1.f};
    const featx::Status st = parse(c.bytes, &a, "input.npy");
    CHECK_FALSE(st.ok());
    CHECK_MESSAGE(contains(st.message(), "input.npy"), st.message());
    CHECK_MESSAGE(contains(st.message(), c.expect), st.message());
    CHECK(st.message().find('\n') == std::string::npos);
    CHECK(a.shape.empty());  // outputs are cleared on failure
    CHECK(a.data.empty());
  }
}

TEST_CASE("npy: every truncation and random corruption fails cleanly") {
  std::vector<float> data(20);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i);
  const std::vector<uint8_t> full = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 5), }\n", float_bytes(data));
  for (size_t n = 0; n < full.size(); ++n) {
    featx::NpyArray a;
    CHECK_FALSE(featx::read_npy_memory(full.data(), n, "cut.npy", &a).ok());
  }
  featx::NpyArray ok;
  CHECK(featx::read_npy_memory(full.data(), full.size(), "cut.npy", &ok).ok());

  // Random byte flips: must never crash (ASan/UBSan runs), outcome aside.
  std::mt19937 rng(99);
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<uint8_t> b = full;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) b[rng() % b.size()] = static_cast<uint8_t>(rng());
    featx::NpyArray a;
    const featx::Status st = featx::read_npy_memory(b.data(), b.size(), "flip.npy", &a);
    if (st.ok()) {
      size_t n = 1;
      for (int64_t d : a.shape) n *= static_cast<size_t>(d);
      CHECK(a.data.size() == n);
    }
  }
}

TEST_CASE("npy: file-level errors") {
  TempDir tmp;
  featx::NpyArray a;
  featx::Status st = featx::read_npy(tmp.file("missing.npy"), &a);
  CHECK(st.code() == featx::StatusCode::not_found);
  CHECK(contains(st.message(), "missing.npy"));

  write_bytes(tmp.file("empty.npy"), {});
  st = featx::read_npy(tmp.file("empty.npy"), &a);
  CHECK_FALSE(st.ok());
  CHECK(contains(st.message(), "empty.npy"));

  st = featx::read_npy(tmp.path.string(), &a);  // a directory
  CHECK_FALSE(st.ok());
  CHECK(contains(st.message(), tmp.path.string()));

  const float v[2] = {1, 2};
  st = featx::write_npy(tmp.file("no/such/dir/out.npy"), {2}, v);
  CHECK(st.code() == featx::StatusCode::io_error);
  CHECK(contains(st.message(), "out.npy"));
  st = featx::write_npy(tmp.file("neg.npy"), {-1, 2}, v);
  CHECK(st.code() == featx::StatusCode::invalid_argument);
  st = featx::write_npy(tmp.file("null.npy"), {2}, nullptr);
  CHECK(st.code() == featx::StatusCode::invalid_argument);
  CHECK(featx::write_npy(tmp.file("empty_ok.npy"), {0, 3}, nullptr).ok());
}
