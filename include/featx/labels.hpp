// featx/labels.hpp: class names from a labels file.
//
// One name per line (ImageNet's imagenet_labels.txt: 1001 lines, line 0
// "background"). Teachable Machine's labels.txt numbers its lines
// ("0 Cat", "1 Dog"): when every line starts with its own index and a
// space, the numbers are stripped. A trailing '\r' (Windows) is dropped.
#pragma once

#include <fstream>
#include <string>
#include <vector>

#include "featx/status.hpp"

namespace featx {

inline Status read_labels(const std::string& path, std::vector<std::string>* labels) {
  labels->clear();
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found(path + ": cannot open labels file");
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    labels->push_back(line);
  }
  if (in.bad()) return io_error(path + ": read error");
  while (!labels->empty() && labels->back().empty()) labels->pop_back();  // final newlines
  if (labels->empty()) return invalid_argument(path + ": labels file is empty");
  // classify prints labels between TABs and newlines: a control character
  // would break its lines (and means this is not a labels file).
  for (size_t i = 0; i < labels->size(); ++i)
    for (const char c : (*labels)[i])
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        return invalid_argument(path + ":" + std::to_string(i + 1) + ": control character " +
                                std::to_string(int(static_cast<unsigned char>(c))) +
                                " in a label (not a labels file?)");
  bool numbered = true;
  for (size_t i = 0; i < labels->size() && numbered; ++i)
    numbered = (*labels)[i].compare(0, std::to_string(i).size() + 1, std::to_string(i) + " ") == 0;
  if (numbered)
    for (size_t i = 0; i < labels->size(); ++i)
      (*labels)[i].erase(0, std::to_string(i).size() + 1);
  return Status::Ok();
}

}  // namespace featx
