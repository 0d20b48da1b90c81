// `featx verify MODEL`: re-runs the golden samples stored in the model.
#pragma once

#include <cmath>
#include <cstdio>

#include "args.hpp"
#include "featx/featx.hpp"

namespace featx_cli {

inline featx::Status cmd_verify(const Args& args) {
  if (args.positional.size() != 1) return featx::invalid_argument("usage: featx verify MODEL");
  std::shared_ptr<const featx::Model> m;
  FEATX_RETURN_IF_ERROR(featx::Model::load(args.positional[0], &m));
  const auto goldens = m->goldens();
  if (goldens.empty())
    return featx::invalid_argument(m->name() + ": no golden samples stored (export with --golden)");
  int failures = 0;
  for (const auto& g : goldens) {
    featx::ExtractorOptions opt;
    FEATX_RETURN_IF_ERROR(featx::parse_pool(g.pool.empty() ? "avg" : g.pool, &opt.pool));
    featx::Extractor ex(m, opt);
    featx::Tensor t;
    FEATX_RETURN_IF_ERROR(ex.extract(g.input, 1, g.height, g.width, &t));
    if (t.data.size() != g.output_size)
      return featx::corrupt(m->name() + ": golden '" + g.name + "' has " +
                            std::to_string(g.output_size) + " outputs, model gives " +
                            std::to_string(t.data.size()));
    double max_err = 0.0, num = 0.0, den = 0.0;
    for (size_t i = 0; i < t.data.size(); ++i) {
      const double d = double(t.data[i]) - double(g.output[i]);
      max_err = std::max(max_err, std::fabs(d));
      num += d * d;
      den += double(g.output[i]) * double(g.output[i]);
    }
    const double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
    const bool pass = max_err <= double(g.max_abs_tolerance);
    failures += !pass;
    std::printf("%s %s %dx%d max_abs_err %.3g rel_l2 %.3g (tolerance %.3g, reference %s)\n",
                pass ? "PASS" : "FAIL", g.name.c_str(), g.height, g.width, max_err, rel,
                double(g.max_abs_tolerance), g.reference.c_str());
  }
  if (failures)
    return featx::Status(featx::StatusCode::internal,
                         m->name() + ": " + std::to_string(failures) + " of " +
                             std::to_string(goldens.size()) + " golden samples differ");
  return featx::Status::Ok();
}

}  // namespace featx_cli
