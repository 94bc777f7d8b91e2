// One data set's part of REPORT.md: where its data came from, the settings its rows used, a table
// per metric, the verdict (paired comparisons), training times, plots and the Matryoshka model's
// pictures.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>

#include "matvae/io/svg_plot.h"
#include "sections.h"

namespace matvae::report {
namespace fs = std::filesystem;
namespace {

struct MetricTable {
  const char* metric;
  const char* title;
  int digits;
};
const MetricTable kTables[] = {{"probe", "Linear-probe test accuracy", 3},
                               {"knn1", "1-NN test accuracy", 3},
                               {"knn1_std", "1-NN test accuracy of standardised codes", 3},
                               {"knn1_cos", "1-NN test accuracy by cosine similarity", 3},
                               {"knn5", "5-NN test accuracy", 3},
                               {"recon", "Reconstruction loss (nats per test image)", 1},
                               {"mse", "Squared error per test image", 2},
                               {"mmd", "MMD² of the test codes to the prior", 4},
                               {"neg_elbo", "Test negative ELBO (nats; KL models)", 1}};

std::string data_and_settings(const Page& page, const std::string& dataset) {
  const json& doc = page.doc;
  std::string md;
  if (doc.contains("data") && doc["data"].contains(dataset)) {  // absent from results of earlier releases
    const json& d = doc["data"][dataset];
    md += d.value("verified", false)
              ? fmt::format("Data: `{}`, the official files (the SHA-256 of every file verified against the recorded "
                            "sums).\n\n",
                            d.value("dir", ""))
              : fmt::format("Data: `{}` (not a data set with recorded sums; its files' SHA-256 are in results.json).\n\n",
                            d.value("dir", ""));
  }
  if (doc.contains("chosen") && doc["chosen"].contains(dataset)) {
    std::vector<std::string> parts;
    for (const auto& [fam, by_m] : doc["chosen"][dataset].items()) {
      std::vector<std::string> at;
      for (const auto& [m, name] : by_m.items())
        at.push_back(m == "all" ? fmt::format("`{}`", name.get<std::string>())
                                : fmt::format("`{}` at m = {}", name.get<std::string>(), m));
      parts.push_back(fmt::format("{}: {}", fam, fmt::join(at, ", ")));
    }
    const bool tuned = doc["options"].value("tune", false);
    md += fmt::format("Settings{}: {}.\n\n", tuned ? " chosen by tuning" : " (the profile's, not tuned)",
                      fmt::join(parts, "; "));
  } else if (doc.contains("mrl_variant") && doc["mrl_variant"].contains(dataset)) {
    md += fmt::format("The `mrl-mmd` row is the variant `{}`.\n\n", doc["mrl_variant"][dataset].get<std::string>());
  }
  return md;
}

std::string metric_tables(const Page& page, const std::string& dataset) {
  std::string md;
  for (const auto& t : kTables) {
    std::vector<std::string> cols;
    for (const auto& r : page.rows) {
      bool any = false;
      for (int64_t m : page.dims) {
        const json* c = cell(page.doc, dataset, r, m);
        if (c && stat_of(*c, t.metric).n > 0) any = true;
      }
      if (any) cols.push_back(r);
    }
    if (cols.empty()) continue;
    md += fmt::format("### {}\n\n| m |", t.title);
    for (const auto& c : cols) md += fmt::format(" {} |", c);
    md += "\n| --- |";
    for (size_t i = 0; i < cols.size(); ++i) md += " --- |";
    md += "\n";
    for (int64_t m : page.dims) {
      md += fmt::format("| {} |", m);
      for (const auto& c : cols) {
        const json* cl = cell(page.doc, dataset, c, m);
        md += " " + (cl ? format_stat(stat_of(*cl, t.metric), t.digits) : std::string("–")) + " |";
      }
      md += "\n";
    }
    md += "\n";
  }
  return md;
}

std::string training_times(const Page& page, const std::string& dataset) {
  const json& doc = page.doc;
  if (!doc.contains("train_times") || !doc["train_times"].contains(dataset)) return "";
  std::string md = "**Training time.** ";
  for (const auto& [seed, t] : doc["train_times"][dataset].items()) {
    const double a = t.value("mrl_mmd_seconds", 0.0), b = t.value("separate_mmd_seconds", 0.0);
    md += fmt::format("Seed {}: one MRL-MMD-VAE {:.1f} s; the {} separate MMD-VAEs (m = {}) {:.1f} s together; "
                      "ratio {:.2f}. ",
                      seed, a, t["separate_dims"].size(), fmt::join(t["separate_dims"].get<std::vector<int64_t>>(), ", "),
                      b, b > 0 ? a / b : NAN);
  }
  md += "Times are the training epochs of each model, as recorded in its run folder, on the machine and with the "
        "threads per model above.";
  if (doc.contains("provenance") && doc["provenance"]["models_trained_by"].size() > 1)
    md += fmt::format(" The models were trained by {} different builds (see the top of this page), so these "
                      "times may compare one build's speed with another's.",
                      doc["provenance"]["models_trained_by"].size());
  return md + "\n\n";
}

std::string plots_and_pictures(const Page& page, const std::string& dataset) {
  const struct {
    const char* metric;
    const char* label;
    const char* file;
  } kPlots[] = {{"probe", "linear-probe accuracy", "probe"},
                {"knn1", "1-NN accuracy", "knn1"},
                {"recon", "reconstruction loss (nats)", "recon"}};
  std::string md;
  for (const auto& p : kPlots) {
    LinePlot plot;
    plot.title = fmt::format("{}: {} against prefix size m", pretty_dataset(dataset), p.label);
    plot.x_label = "m (prefix size, log2 axis)";
    plot.y_label = p.label;
    plot.log2_x = true;
    for (const auto& r : page.rows) {
      PlotSeries s;
      s.label = row_title(page.doc, r);
      for (int64_t m : page.dims) {
        const json* c = cell(page.doc, dataset, r, m);
        if (!c) continue;
        const Stat st = stat_of(*c, p.metric);
        if (st.n == 0) continue;
        s.x.push_back(static_cast<double>(m));
        s.y.push_back(st.mean);
        s.err.push_back(st.std);
      }
      if (!s.x.empty()) plot.series.push_back(s);
    }
    if (plot.series.empty()) continue;
    const std::string file = fmt::format("{}_{}.svg", p.file, dataset);
    write_svg(page.out_dir / file, plot);
    md += fmt::format("![{}]({})\n\n", plot.title, file);
  }
  for (const std::string img : {"recon", "samples"}) {
    const std::string file = fmt::format("{}_{}.png", img, dataset);
    if (fs::exists(page.out_dir / file))
      md += fmt::format("{} (MRL-MMD-VAE, first seed; {}):\n\n![{}]({})\n\n",
                        img == "recon" ? "Test images and their reconstructions from every prefix"
                                       : "Samples from the prior at every prefix",
                        img == "recon" ? "top row the originals, then one row per m" : "one row per m", img, file);
  }
  const std::string scatter = fmt::format("scatter_m2_{}.svg", dataset);
  if (fs::exists(page.out_dir / scatter))
    md += fmt::format("Test codes of the prefix m = 2, coloured by class:\n\n![scatter]({})\n\n", scatter);
  return md;
}

}  // namespace

std::string dataset_section(const Page& page, const std::string& dataset) {
  return fmt::format("## {}\n\n", pretty_dataset(dataset)) + data_and_settings(page, dataset) +
         metric_tables(page, dataset) + verdict_section(page, dataset) + adaptive_section(page, dataset) +
         training_times(page, dataset) + plots_and_pictures(page, dataset);
}

}  // namespace matvae::report
