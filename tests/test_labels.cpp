// Top-1 labels on real photos through the full image path (decode, resize
// with half-pixel centres, the tf2 MobileNetV2 from ../shared).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "featx/featx.hpp"
#include "test_support.hpp"

TEST_CASE("tf2 MobileNetV2 labels real photos") {
  if (!test_support::have_shared()) {
    MESSAGE("WARNING: SKIPPED label tests: " << test_support::shared_dir() << " not found");
    return;
  }
  std::shared_ptr<const featx::Model> model;
  const std::string path = test_support::models_dir() + "/tflite_tf2_mobilenet_v2_1.0_224_ptq.featx";
  featx::Status st = featx::Model::load(path, &model);
  REQUIRE_MESSAGE(st.ok(), st.message());
  REQUIRE(model->has_classifier());
  std::vector<std::string> labels;
  std::ifstream in(test_support::shared_dir() + "/images/imagenet_labels.txt");
  for (std::string line; std::getline(in, line);) labels.push_back(line);
  REQUIRE(labels.size() == 1001);
  const std::pair<const char*, const char*> expected[] = {
      {"cat.bmp", "Egyptian cat"}, {"parrot.jpg", "macaw"}, {"grace_hopper.bmp", "military uniform"}};
  featx::Extractor ex(model);
  for (const auto& e : expected) {
    featx::Image img;
    st = featx::load_image(test_support::shared_dir() + "/images/" + e.first, featx::PreprocessOptions{}, &img);
    REQUIRE_MESSAGE(st.ok(), st.message());
    featx::Tensor logits;
    REQUIRE(ex.logits(img.rgb.data(), 1, img.height, img.width, &logits).ok());
    const int top = int(std::max_element(logits.data.begin(), logits.data.end()) - logits.data.begin());
    const std::string label = labels[size_t(top + model->label_offset())];
    MESSAGE(std::string(e.first) << " -> " << label);
    CHECK(label == e.second);
  }
}

TEST_CASE("read_labels: numbered lines, CRLF, and a binary file refused in one line") {
  const std::string path = "featx_test_labels.txt";
  auto labels_of = [&](const std::string& text, std::vector<std::string>* labels) {
    std::ofstream(path, std::ios::binary) << text;
    return featx::read_labels(path, labels);
  };
  std::vector<std::string> labels;
  REQUIRE(labels_of("0 Cat\r\n1 Dog\r\n\n", &labels).ok());
  CHECK(labels == std::vector<std::string>{"Cat", "Dog"});
  // A PNG given as labels: its bytes would print as labels between
  // classify's TABs and newlines.
  const featx::Status st = labels_of(std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16), &labels);
  CHECK(st.code() == featx::StatusCode::invalid_argument);
  CHECK(st.message() == path + ":2: control character 26 in a label (not a labels file?)");
  CHECK(!labels_of("a\tb\n", &labels).ok());
  std::remove(path.c_str());
}
