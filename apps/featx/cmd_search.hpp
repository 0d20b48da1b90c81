// `featx index` and `featx search`: similarity search over extracted
// feature vectors (featx/search.hpp; FAISS when built with it).
//
//   featx index  -o INDEX.fxi [--faiss ivf|hnsw] [--nlist N] [--hnsw-m M] [--ef-construction E]
//                [--threads N] [--quiet] VECTORS.npy...
//   featx search -i INDEX.fxi [-k 10] [-m MODEL [--size HxW] [--crop F] [--preprocess P]]
//                [--faiss | --exact] [--nprobe N] [--ef-search E] [--threads N] [--html OUT.html] QUERY...
//
// VECTORS.npy: float32 (N, D) from `featx extract -o VECTORS.npy`, with
// VECTORS.npy.names.txt beside it (else rows are named VECTORS.npy[i]);
// several are indexed in order. A QUERY is an image (extracted with -m
// MODEL first, as `featx extract` would), a directory of them, a float32
// .npy of vectors, (D,) or (N, D) (named by its .names.txt when it has
// one), or an image tensor .npy (N, H, W, 3) (needs -m). Output per query:
// its name on a line, then per rank two spaces, rank, TAB, score (cosine
// similarity), TAB, row index in the index, TAB, the row's name.
// Exact search up to kExactLimit vectors; above it, or with --faiss,
// INDEX.fxi.faiss when there is one (made by `featx index --faiss`).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "args.hpp"
#include "cmd_extract.hpp"
#include "extract_output.hpp"
#include "featx/featx.hpp"
#include "featx/search.hpp"
#include "inputs.hpp"
#ifdef FEATX_HAVE_FAISS
#include "featx/search_faiss.hpp"
#endif

// stb_image_write makes the contact sheet's JPEG thumbnails; like
// stb_image (featx/detail/stb_image.hpp), static in this one TU, its
// warnings silenced.
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
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#if __has_include(<stb/stb_image_write.h>)
#include <stb/stb_image_write.h>
#else
#include "stb_image_write.h"
#endif
#if defined(__clang__)
#pragma clang diagnostic pop
#elif defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace featx_cli {

// Above this many vectors `featx search` uses the FAISS index when there is one.
constexpr size_t kExactLimit = 1000000;

inline std::string names_path_of(const std::string& npy) { return npy + ".names.txt"; }

// Names for `rows` rows of `npy`: its .names.txt when it has one (then it
// must hold one line per row), else "npy[i]" (a 1-D .npy: the path itself).
inline featx::Status row_names(const std::string& npy, size_t rows, bool one_d, std::vector<std::string>* names) {
  names->clear();
  std::vector<std::string> lines;
  if (read_complete_lines(names_path_of(npy), &lines)) {
    if (lines.size() != rows)
      return featx::invalid_argument(names_path_of(npy) + ": " + std::to_string(lines.size()) + " names for the " +
                                     std::to_string(rows) + " rows of " + npy);
    *names = std::move(lines);
    return featx::Status::Ok();
  }
  for (size_t i = 0; i < rows; ++i) names->push_back(one_d ? npy : npy + "[" + std::to_string(i) + "]");
  return featx::Status::Ok();
}

// A mapped float32 .npy of vectors: (N, D), or (D,) as one row.
struct VectorFile {
  featx::ByteSource bytes;
  std::vector<int64_t> shape;
  size_t offset = 0, rows = 0, dims = 0;
  bool one_d = false;
  const uint8_t* data() const { return bytes.data() + offset; }
};

inline featx::Status open_vectors(const std::string& path, VectorFile* v) {
  FEATX_RETURN_IF_ERROR(featx::ByteSource::open(path, &v->bytes));
  if (v->bytes.size() == 0) return featx::corrupt(path + ": empty file (not an .npy file)");
  FEATX_RETURN_IF_ERROR(featx::read_npy_header(v->bytes.data(), v->bytes.size(), path, &v->shape, &v->offset));
  if (v->shape.size() != 1 && v->shape.size() != 2)
    return featx::invalid_argument(path + ": array of shape " + featx::npy_detail::shape_string(v->shape) +
                                   ", expected feature vectors (N, D) or (D,)");
  const int64_t dims = v->shape.back();
  if (dims == 0 || dims > int64_t(featx::kIndexMaxDims))
    return featx::invalid_argument(path + ": vectors of " + std::to_string(dims) + " dimensions (1 to " +
                                   std::to_string(featx::kIndexMaxDims) + ")");
  // The shape's size (checked: it may wrap size_t) is the file's data.
  size_t count = 0;
  FEATX_RETURN_IF_ERROR(featx::npy_detail::check_payload(path, v->shape, v->bytes.size() - v->offset, &count));
  v->one_d = v->shape.size() == 1;
  v->dims = size_t(dims);
  v->rows = count / v->dims;
  return featx::Status::Ok();
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

inline featx::Status cmd_index(const Args& args) {
  const std::string out = args.get("--output");
  if (out.empty()) return featx::invalid_argument("featx index needs -o INDEX.fxi");
  if (args.positional.empty()) return featx::invalid_argument("featx index: no VECTORS.npy given");
  int threads = 0;
  if (args.has("--threads")) FEATX_RETURN_IF_ERROR(parse_int("--threads", args.get("--threads"), 1, 1024, &threads));
  const std::string kind = args.get("--faiss");
  if (args.has("--faiss") && kind != "ivf" && kind != "hnsw")
    return featx::invalid_argument("--faiss must be ivf or hnsw, got '" + kind + "'");
#ifndef FEATX_HAVE_FAISS
  if (args.has("--faiss"))
    return featx::invalid_argument("--faiss: this featx was built without FAISS (cmake -DFEATX_WITH_FAISS=ON, "
                                   "Debian: libfaiss-dev)");
#endif
  const auto t0 = std::chrono::steady_clock::now();
  featx::IndexWriter writer;
  std::vector<float> chunk;
  size_t dims = 0;
  for (const std::string& path : args.positional) {
    VectorFile v;
    FEATX_RETURN_IF_ERROR(open_vectors(path, &v));
    if (dims == 0) {
      dims = v.dims;
      FEATX_RETURN_IF_ERROR(writer.open(out, dims));
    } else if (v.dims != dims) {
      return featx::invalid_argument(path + ": vectors of " + std::to_string(v.dims) + " dimensions, " +
                                     args.positional.front() + " has " + std::to_string(dims));
    }
    std::vector<std::string> names;
    FEATX_RETURN_IF_ERROR(row_names(path, v.rows, v.one_d, &names));
    // A few MB at a time from the mapping: any size of .npy, any alignment.
    const size_t per = std::max<size_t>(1, (size_t(4) << 20) / (dims * sizeof(float)));
    for (size_t r = 0; r < v.rows; r += per) {
      const size_t n = std::min(per, v.rows - r);
      chunk.resize(n * dims);
      std::memcpy(chunk.data(), v.data() + r * dims * sizeof(float), n * dims * sizeof(float));
      FEATX_RETURN_IF_ERROR(writer.add(chunk.data(), n, dims, names.data() + r, path, r));
    }
  }
  const size_t count = writer.count();
  FEATX_RETURN_IF_ERROR(writer.finish());
  const double write_s = seconds_since(t0);
  const bool quiet = args.has("--quiet");
  const std::string ann_path = out + ".faiss";
  if (!quiet)
    std::fprintf(stderr, "featx: indexed %zu vectors of %zu dimensions into %s in %.1f s\n", count, dims, out.c_str(),
                 write_s);
  if (!args.has("--faiss")) {
    if (file_exists(ann_path) && std::remove(ann_path.c_str()) == 0 && !quiet)
      std::fprintf(stderr, "featx: removed %s (it indexed the old vectors)\n", ann_path.c_str());
    return featx::Status::Ok();
  }
#ifdef FEATX_HAVE_FAISS
  featx::FaissBuildOptions fo;
  fo.kind = kind == "hnsw" ? featx::FaissKind::hnsw_flat : featx::FaissKind::ivf_flat;
  fo.threads = threads;
  int value = 0;
  if (args.has("--nlist")) {
    FEATX_RETURN_IF_ERROR(parse_int("--nlist", args.get("--nlist"), 1, 1 << 24, &value));
    fo.nlist = size_t(value);
  }
  if (args.has("--hnsw-m")) FEATX_RETURN_IF_ERROR(parse_int("--hnsw-m", args.get("--hnsw-m"), 2, 512, &fo.hnsw_m));
  if (args.has("--ef-construction"))
    FEATX_RETURN_IF_ERROR(parse_int("--ef-construction", args.get("--ef-construction"), 1, 1 << 16, &fo.ef_construction));
  const auto t0b = std::chrono::steady_clock::now();
  featx::VectorIndex index;
  FEATX_RETURN_IF_ERROR(featx::VectorIndex::open(out, &index));
  const auto t1 = std::chrono::steady_clock::now();
  featx::FaissIndex ann;
  featx::FaissBuildStats stats;
  FEATX_RETURN_IF_ERROR(featx::FaissIndex::build(index, fo, &ann, &stats));
  const auto t2 = std::chrono::steady_clock::now();
  FEATX_RETURN_IF_ERROR(ann.save(ann_path));
  if (!quiet) {
    char phases[96];
    if (fo.kind == featx::FaissKind::hnsw_flat) std::snprintf(phases, sizeof phases, "graph %.1f", stats.add_s);
    else std::snprintf(phases, sizeof phases, "k-means %.1f, adding %.1f", stats.train_s, stats.add_s);
    std::fprintf(stderr, "featx: FAISS %s in %s in %.1f s (open %.1f, %s, write %.1f)\n",
                 ann.describe(featx::FaissSearchOptions{}).c_str(), ann_path.c_str(), seconds_since(t0b),
                 std::chrono::duration<double>(t1 - t0b).count(), phases, seconds_since(t2));
  }
#else
  (void)threads;
#endif
  return featx::Status::Ok();
}

// ---- the contact sheet ------------------------------------------------------

inline std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

inline std::string base64(const std::vector<unsigned char>& bytes) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const uint32_t b0 = bytes[i], b1 = i + 1 < bytes.size() ? bytes[i + 1] : 0, b2 = i + 2 < bytes.size() ? bytes[i + 2] : 0;
    const uint32_t v = b0 << 16 | b1 << 8 | b2;
    out += t[v >> 18 & 63];
    out += t[v >> 12 & 63];
    out += i + 1 < bytes.size() ? t[v >> 6 & 63] : '=';
    out += i + 2 < bytes.size() ? t[v & 63] : '=';
  }
  return out;
}

inline void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<unsigned char>*>(context);
  const auto* p = static_cast<const unsigned char*>(data);
  out->insert(out->end(), p, p + size);
}

// A JPEG data URI of `path` fitted into side x side pixels, or "" when it is
// not an image featx can decode (e.g. the name of a row of a .npy): the
// sheet shows the name alone then. Decoded and shrunk by featx/image.hpp
// (tf.image.resize with antialias: every source pixel counts, no aliasing).
inline std::string thumbnail_uri(const std::string& path, int side) {
  featx::Image img;
  if (!featx::decode_image_file(path, &img).ok() || img.height < 1 || img.width < 1) return "";
  const double scale = std::min(1.0, double(side) / double(std::max(img.height, img.width)));
  const int h = std::max(1, int(img.height * scale + 0.5)), w = std::max(1, int(img.width * scale + 0.5));
  if (h != img.height || w != img.width) featx::resize_antialias(img, h, w, &img);
  std::vector<unsigned char> px(img.rgb.size());
  for (size_t i = 0; i < px.size(); ++i)
    px[i] = (unsigned char)std::min(255.0f, std::max(0.0f, img.rgb[i] * 255.0f + 0.5f));
  std::vector<unsigned char> jpeg;
  if (!stbi_write_jpg_to_func(append_bytes, &jpeg, w, h, 3, px.data(), 85) || jpeg.empty()) return "";
  return "data:image/jpeg;base64," + base64(jpeg);
}

struct SheetEntry {
  std::string name;
  std::vector<std::pair<featx::Neighbor, std::string>> neighbours;
};

// Thumbnails are embedded (base64 JPEG, 160 px): the sheet is one file that
// can be moved or mailed, and still shows the photos after they move (paths
// relative to it would break). Each distinct image is decoded once.
inline featx::Status write_contact_sheet(const std::string& path, const std::string& index_path,
                                         const std::string& engine, const std::vector<SheetEntry>& entries) {
  std::map<std::string, std::string> thumbs;
  auto thumb = [&](const std::string& name) -> const std::string& {
    auto it = thumbs.find(name);
    if (it == thumbs.end()) it = thumbs.emplace(name, thumbnail_uri(name, 160)).first;
    return it->second;
  };
  auto cell = [&](const std::string& name, const std::string& caption, const char* cls) {
    const std::string& uri = thumb(name);
    std::string s = std::string("<figure class=\"") + cls + "\">";
    s += uri.empty() ? "<div class=\"none\">no image</div>" : "<img src=\"" + uri + "\" alt=\"" + html_escape(name) + "\">";
    return s + "<figcaption>" + caption + "</figcaption></figure>";
  };
  std::string html =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>featx search: " + html_escape(index_path) +
      "</title>\n<style>body{font:13px sans-serif;margin:16px}section{display:flex;flex-wrap:wrap;gap:8px;"
      "align-items:flex-start;border-bottom:1px solid #ccc;padding:8px 0}figure{margin:0;width:164px}"
      "figure img{max-width:160px;max-height:160px;display:block}.query{border-right:3px solid #36c;padding-right:8px}"
      ".none{width:160px;height:90px;background:#ddd;color:#777;display:flex;align-items:center;justify-content:center}"
      "figcaption{word-break:break-all}b{color:#36c}</style></head><body>\n<h1>featx search</h1>\n<p>index " +
      html_escape(index_path) + ", " + html_escape(engine) + "; score = cosine similarity</p>\n";
  for (const SheetEntry& e : entries) {
    html += "<section>" + cell(e.name, "<b>query</b><br>" + html_escape(e.name), "query");
    for (size_t r = 0; r < e.neighbours.size(); ++r) {
      char score[32];
      std::snprintf(score, sizeof score, "%.6f", double(e.neighbours[r].first.score));
      html += cell(e.neighbours[r].second,
                   "<b>" + std::to_string(r + 1) + "</b> " + score + " #" + std::to_string(e.neighbours[r].first.index) +
                       "<br>" + html_escape(e.neighbours[r].second),
                   "hit");
    }
    html += "</section>\n";
  }
  html += "</body></html>\n";
  const std::string part = path + ".part";
  std::FILE* f = std::fopen(part.c_str(), "wb");
  if (!f) return featx::io_error(path + ": cannot create");
  const bool wrote = std::fwrite(html.data(), 1, html.size(), f) == html.size();
  if (std::fclose(f) != 0 || !wrote || std::rename(part.c_str(), path.c_str()) != 0) {
    std::remove(part.c_str());
    return featx::io_error(path + ": write failed");
  }
  return featx::Status::Ok();
}

// ---- search -----------------------------------------------------------------

inline featx::Status cmd_search(const Args& args) {
  if (!args.has("--index")) return featx::invalid_argument("featx search needs -i INDEX.fxi");
  if (args.positional.empty() && !args.has("--list")) return featx::invalid_argument("featx search: no queries given");
  int k = 10, threads = 0;
  if (args.has("--top")) FEATX_RETURN_IF_ERROR(parse_int("-k", args.get("--top"), 1, 1000000, &k));
  if (args.has("--threads")) FEATX_RETURN_IF_ERROR(parse_int("--threads", args.get("--threads"), 1, 1024, &threads));
  if (args.has("--faiss") && args.has("--exact")) return featx::invalid_argument("--faiss and --exact exclude each other");
#ifndef FEATX_HAVE_FAISS
  if (args.has("--faiss"))
    return featx::invalid_argument("--faiss: this featx was built without FAISS (cmake -DFEATX_WITH_FAISS=ON, "
                                   "Debian: libfaiss-dev)");
#endif
  const std::string index_path = args.get("--index");
  featx::VectorIndex index;
  FEATX_RETURN_IF_ERROR(featx::VectorIndex::open(index_path, &index));

  // Queries, in order: vectors from .npy files as they are, images through the model.
  std::vector<std::string> files;
  FEATX_RETURN_IF_ERROR(gather_inputs(args.positional, args.has("--recursive"), args.get("--list"), &files));
  std::vector<std::string> names;
  std::vector<float> queries;
  const size_t dims = index.dims();
  RunSetup setup;
  std::unique_ptr<featx::Extractor> extractor;
  for (const std::string& f : files) {
    if (is_npy(f)) {
      VectorFile v;
      featx::Status st = open_vectors(f, &v);
      if (st.ok()) {
        if (v.dims != dims)
          return featx::invalid_argument(f + ": vectors of " + std::to_string(v.dims) + " dimensions, " + index_path +
                                         " holds " + std::to_string(dims));
        std::vector<std::string> rows;
        FEATX_RETURN_IF_ERROR(row_names(f, v.rows, v.one_d, &rows));
        const size_t at = queries.size();
        queries.resize(at + v.rows * dims);
        std::memcpy(queries.data() + at, v.data(), v.rows * dims * sizeof(float));
        names.insert(names.end(), rows.begin(), rows.end());
        continue;
      }
      if (v.shape.size() != 3 && v.shape.size() != 4) return st;  // not an image tensor either
    }
    if (!args.has("--model"))
      return featx::invalid_argument(f + ": an image query needs -m MODEL (the model whose features " + index_path +
                                     " holds)");
    if (!extractor) {
      FEATX_RETURN_IF_ERROR(common_setup(args, &setup));
      featx::ExtractorOptions opt;
      opt.threads = setup.threads;
      extractor = std::make_unique<featx::Extractor>(setup.model, opt);
    }
    std::vector<InputItem> items;
    FEATX_RETURN_IF_ERROR(load_input(f, setup.pre, &items));
    for (InputItem& item : items) {
      featx::Tensor t;
      featx::Status st = extractor->extract(item.rgb.data(), 1, item.height, item.width, &t);
      if (!st) return featx::Status(st.code(), item.name + ": " + st.message());
      if (t.data.size() != dims)
        return featx::invalid_argument(args.get("--model") + ": gives " + std::to_string(t.data.size()) +
                                       "-dimensional features, " + index_path + " holds " + std::to_string(dims) +
                                       "-dimensional vectors (another model made it)");
      queries.insert(queries.end(), t.data.begin(), t.data.end());
      names.push_back(item.name);
    }
  }
  const size_t nq = names.size();

  // Exact unless asked, or past kExactLimit with a FAISS index beside it.
  bool use_faiss = args.has("--faiss");
  std::string engine = "exact search";
  featx::SearchResults results;
#ifdef FEATX_HAVE_FAISS
  const std::string ann_path = featx::faiss_index_path(index_path);
  if (!use_faiss && !args.has("--exact") && index.size() > kExactLimit && file_exists(ann_path)) {
    use_faiss = true;
    std::fprintf(stderr, "featx: %s holds %zu vectors: searching %s (approximate; --exact for exact search)\n",
                 index_path.c_str(), index.size(), ann_path.c_str());
  }
  if (use_faiss) {
    featx::FaissIndex ann;
    FEATX_RETURN_IF_ERROR(featx::FaissIndex::load(ann_path, index, &ann));
    featx::FaissSearchOptions fo;
    fo.k = size_t(k);
    fo.threads = threads;
    int value = 0;
    if (args.has("--nprobe")) {
      FEATX_RETURN_IF_ERROR(parse_int("--nprobe", args.get("--nprobe"), 1, 1 << 24, &value));
      fo.nprobe = size_t(value);
    }
    if (args.has("--ef-search")) FEATX_RETURN_IF_ERROR(parse_int("--ef-search", args.get("--ef-search"), 1, 1 << 20, &fo.ef_search));
    engine = "FAISS " + ann.describe(fo);
    FEATX_RETURN_IF_ERROR(ann.search(queries.data(), nq, dims, fo, &results));
  }
#endif
  if (!use_faiss) {
    featx::SearchOptions so;
    so.k = size_t(k);
    so.threads = threads;
    engine = std::string("exact search (") + featx::isa_name(featx::dot_kernel(so.isa).isa) + ")";
    FEATX_RETURN_IF_ERROR(index.search(queries.data(), nq, dims, so, &results));
  }

  std::vector<SheetEntry> sheet;
  for (size_t q = 0; q < nq; ++q) {
    std::printf("%s\n", names[q].c_str());
    SheetEntry e;
    e.name = names[q];
    for (size_t r = 0; r < results.counts[q]; ++r) {
      const featx::Neighbor& n = results.of(q)[r];
      const std::string name = index.name(size_t(n.index));
      std::printf("  %zu\t%.6f\t%llu\t%s\n", r + 1, double(n.score), (unsigned long long)n.index, name.c_str());
      e.neighbours.emplace_back(n, name);
    }
    sheet.push_back(std::move(e));
  }
  std::fflush(stdout);
  if (args.has("--html")) FEATX_RETURN_IF_ERROR(write_contact_sheet(args.get("--html"), index_path, engine, sheet));
  return featx::Status::Ok();
}

}  // namespace featx_cli
