// One data set's adaptive uses of the Matryoshka code in REPORT.md: retrieval quality against its
// cost per query (exact search at each prefix, funnels, the separately trained models), as a table
// and a plot of mAP@10 against MFLOPs, and the classification cascade's accuracy against the
// expected number of dimensions. Means over the seeds.
#include <fmt/format.h>

#include <cmath>
#include <map>

#include "matvae/io/svg_plot.h"
#include "sections.h"

namespace matvae::report {
namespace {

/// Mean over the seeds of a number the seeds' records hold at `get`.
template <typename Get>
double mean_over(const json& per_seed, Get get) {
  double sum = 0;
  int n = 0;
  for (const auto& [seed, rec] : per_seed.items()) {
    const double v = get(rec);
    if (std::isfinite(v)) sum += v, ++n;
  }
  return n ? sum / n : NAN;
}

}  // namespace

std::string adaptive_section(const Page& page, const std::string& dataset) {
  const json& results = page.doc["results"];
  if (!results.contains(dataset) || !results[dataset].contains("adaptive")) return "";
  const json& by_m = results[dataset]["adaptive"];
  if (by_m.empty()) return "";
  const json& per_seed = by_m.begin().value();  // the whole code's record, under m = D
  const json& first = per_seed.begin().value();
  const int64_t database = first["retrieval"].value("database", 0);
  std::string md = fmt::format("### Adaptive retrieval ({})\n\n", pretty_dataset(dataset)) +
       fmt::format("The test images query the {} training codes; an item is relevant when it has the query's label. "
                   "MFLOPs per query count the distance computations (2 N m for N items at prefix m). A funnel takes "
                   "a short list of 200 with its first prefix and re-ranks it with the larger ones on shorter lists "
                   "(200, 100, 50, ... down to 10). Means over {} seed(s).\n\n",
                   database, per_seed.size());
  md += "| search | MFLOPs per query | mAP@10 | precision@10 | recall@10 |\n| --- | --- | --- | --- | --- |\n";
  LinePlot plot;
  plot.title = fmt::format("{}: mAP@10 against MFLOPs per query", pretty_dataset(dataset));
  plot.x_label = "MFLOPs per query (log2 axis)";
  plot.y_label = "mAP@10";
  plot.log2_x = true;
  PlotSeries exact{"MRL-MMD-VAE, exact search at prefix m", {}, {}, {}};
  for (const auto& [m, unused] : first["retrieval"]["exact"].items()) {
    const auto get = [&](const char* key) {
      return mean_over(per_seed, [&](const json& r) { return r["retrieval"]["exact"][m].value(key, NAN); });
    };
    md += fmt::format("| MRL-MMD-VAE, exact at m = {} | {:.3f} | {:.4f} | {:.4f} | {:.5f} |\n", m, get("mflops"),
                      get("map"), get("precision"), get("recall"));
    exact.x.push_back(get("mflops"));
    exact.y.push_back(get("map"));
  }
  PlotSeries funnels{"MRL-MMD-VAE, funnel from prefix m", {}, {}, {}};
  for (size_t i = 0; i < first["retrieval"]["funnels"].size(); ++i) {
    const json& f = first["retrieval"]["funnels"][i];
    std::string path;
    for (const auto& s : f["stages"]) path += (path.empty() ? "" : " → ") + std::to_string(s["m"].get<int64_t>());
    const auto get = [&](const char* key) {
      return mean_over(per_seed, [&](const json& r) { return r["retrieval"]["funnels"][i].value(key, NAN); });
    };
    md += fmt::format("| MRL-MMD-VAE, funnel {} | {:.3f} | {:.4f} | {:.4f} | {:.5f} |\n", path, get("mflops"),
                      get("map"), get("precision"), get("recall"));
    funnels.x.push_back(get("mflops"));
    funnels.y.push_back(get("map"));
  }
  PlotSeries separate{"MMD-VAE trained at m, exact search", {}, {}, {}};
  if (results[dataset].contains("mmd-at-m"))
    for (const auto& [m, seeds] : results[dataset]["mmd-at-m"].items()) {
      const double map = stat_of(seeds, "map10").mean;
      if (!std::isfinite(map)) continue;
      const double mflops = 2.0 * static_cast<double>(database) * std::stod(m) / 1e6;
      md += fmt::format("| MMD-VAE trained at m = {}, exact | {:.3f} | {:.4f} | {:.4f} | {:.5f} |\n", m, mflops, map,
                        stat_of(seeds, "precision10").mean, stat_of(seeds, "recall10").mean);
      separate.x.push_back(mflops);
      separate.y.push_back(map);
    }
  md += "\n";
  for (auto* s : {&exact, &funnels, &separate})
    if (!s->x.empty()) plot.series.push_back(*s);
  const std::string file = fmt::format("retrieval_{}.svg", dataset);
  write_svg(page.out_dir / file, plot);
  md += fmt::format("![{}]({})\n\n", plot.title, file);

  // The classification cascade.
  const json& c0 = first["cascade"];
  md += fmt::format("### Adaptive classification ({})\n\n", pretty_dataset(dataset));
  md += "Linear probes at every prefix, applied from the smallest until one is confident (its top class "
        "probability at least the threshold); the threshold is chosen on validation rows of train as the cheapest "
        "that matches the whole code's validation accuracy. Test accuracy against the expected number of dimensions "
        "an image uses:\n\n| threshold | test accuracy | expected dimensions | validation accuracy |\n"
        "| --- | --- | --- | --- |\n";
  for (size_t i = 0; i < c0["points"].size(); ++i) {
    const auto get = [&](const char* key) {
      return mean_over(per_seed, [&](const json& r) { return r["cascade"]["points"][i].value(key, NAN); });
    };
    md += fmt::format("| {} | {:.4f} | {:.2f} | {:.4f} |\n", c0["points"][i]["threshold"].get<double>(),
                      get("test_accuracy"), get("test_dims"), get("validation_accuracy"));
  }
  const double full = mean_over(per_seed, [](const json& r) { return r["cascade"].value("full_test_accuracy", NAN); });
  const double chosen_acc = mean_over(per_seed, [](const json& r) {
    return r["cascade"]["points"][r["cascade"]["chosen"].get<size_t>()].value("test_accuracy", NAN);
  });
  const double chosen_dims = mean_over(per_seed, [](const json& r) {
    return r["cascade"]["points"][r["cascade"]["chosen"].get<size_t>()].value("test_dims", NAN);
  });
  md += fmt::format(
      "\nWith the threshold chosen on validation: test accuracy {:.4f} at {:.2f} expected dimensions, against {:.4f} "
      "for the probe of the whole code ({} dimensions).\n\n",
      chosen_acc, chosen_dims, full, by_m.begin().key());
  return md;
}

}  // namespace matvae::report
