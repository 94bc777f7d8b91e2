// REPORT.md from results.json alone: the sections of sections.h, in order.
#include "matvae/report/report.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "matvae/util/error.h"
#include "matvae/util/file_io.h"
#include "matvae/util/machine.h"
#include "sections.h"

namespace matvae {
namespace fs = std::filesystem;

namespace report {

const json* cell(const json& doc, const std::string& dataset, const std::string& row, int64_t m) {
  const json& r = doc["results"];
  const std::string k = std::to_string(m);
  if (!r.contains(dataset) || !r[dataset].contains(row) || !r[dataset][row].contains(k)) return nullptr;
  return &r[dataset][row][k];
}

std::string pretty_dataset(const std::string& d) {
  if (d == "mnist") return "MNIST";
  if (d == "fashion-mnist") return "Fashion-MNIST";
  return d;
}

/// A row's title as results.json records it (files from before it did: the row's own name).
std::string row_title(const json& doc, const std::string& row) {
  return doc.contains("row_titles") && doc["row_titles"].contains(row) ? doc["row_titles"][row].get<std::string>()
                                                                       : row;
}

std::string format_stat(const Stat& s, int digits) {
  if (s.n == 0) return "–";
  if (s.n == 1) return fmt::format("{:.{}f}", s.mean, digits);
  return fmt::format("{:.{}f} ± {:.{}f}", s.mean, digits, s.std, digits);
}

std::string header_section(const Page& page) {
  const json& doc = page.doc;
  const json& o = doc["options"];
  const json& machine = doc["machine"];
  std::string md = fmt::format("# matvae comparison report: profile `{}`\n\n", doc["profile"].get<std::string>());
  md += fmt::format(
      "Every number below is read from `results.json`, written by matvae at commit `{}`; this page by commit `{}`. "
      "Seeds: {} ({}). Machine: {} cores, {} threads{}, BLAS {}, float32 matmul {:.1f} GFLOP/s on 1 thread, {:.1f} on "
      "all. Wall time of the experiment run that wrote results.json: {:.0f} s (a run that resumed earlier work counts "
      "only its own part).\n\n",
      doc["commit"].get<std::string>(), git_commit(), o["seeds"].size(), o["seeds"].dump(), machine.value("cores", 0),
      machine.value("threads", 0),
      machine.contains("jobs")  // absent from results of earlier releases
          ? fmt::format(" ({} model(s) at a time, {} thread(s) each{})", machine.value("jobs", 0),
                        machine.value("threads_per_job", 0),
                        machine.value("ranks", 1) > 1
                            ? fmt::format(", on each of {} ranks; the machine figures are rank 0's",
                                          machine.value("ranks", 1))
                            : std::string())
          : std::string(),
      machine.value("blas", std::string("unknown")), machine.value("matmul_gflops_1_thread", 0.0),
      machine.value("matmul_gflops_all_threads", 0.0), doc.value("wall_seconds", 0.0));
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
  const double load = machine.value("load_average_start", -1.0);
  const double cores = machine.value("cores", 0);
  const double others = machine.value("others_busy_cores", -1.0);  // absent from results of earlier releases
  const std::string effect =
      "wall and training times below are inflated and uneven between models. The accuracy and loss numbers are "
      "unaffected.";
  if (others >= 0) {
    // Measured over the run itself: a quarter of the cores taken slows two jobs on two cores by a quarter.
    if (others > std::max(0.25, cores / 4))
      md += fmt::format("**Timing caveat.** Other processes kept {:.1f} of the {:.0f} cores busy while the experiment "
                        "ran, so {}\n\n",
                        others, cores, effect);
    else
      md += fmt::format("Other processes kept {:.2f} of the {:.0f} cores busy while the experiment ran.\n\n", others,
                        cores);
  } else if (load > std::max(1.0, cores / 2)) {  // more than half the cores busy before we began
    md += fmt::format(
        "**Timing caveat.** The machine's load average was {:.1f} when the experiment started ({:.0f} cores), so "
        "other work shared the CPU: {}\n\n",
        load, cores, effect);
  }
  if (doc.contains("profile_settings")) {
    const auto& p = doc["profile_settings"];
    md += fmt::format(
        "Profile: {} epochs{}, models trained on {} images, latent D = {}, hidden layers {}; evaluation on {} "
        "training and {} test codes (0 = all). Codes are the posterior mean mu(x).\n\n",
        p.value("epochs", 0),
        p.value("lr_schedule", "constant") == "cosine" ? " (learning rate cosine-annealed to 0 over each model's run)" : "",
        p.value("train_limit", 0) == 0 ? std::string("all") : std::to_string(p.value("train_limit", 0)),
        p.value("latent", 0), p["hidden"].dump(), p["eval"].value("train_limit", 0), p["eval"].value("test_limit", 0));
  }
  md += o.value("tune", false)
            ? "**Tuning.** Every tuned row chose its settings on validation data: the last tenth of train, which no "
              "candidate trained on, with the first seed. Each row's family has the same number of candidates, "
              "scored by the same rule: a candidate's regret is how far it is behind the best candidate of its "
              "family, at every m, in points of linear-probe and 1-NN accuracy and in half-nats of reconstruction "
              "(2 nats weigh as one point); the smallest worst regret wins, within 0.1 the smallest mean regret. "
              "Rows trained at each m choose at each m. The appendix lists every candidate.\n\n"
            : "**Tuning.** None in this run: every row uses the profile's settings, listed for each data set (the "
              "family's default, or what the profile fixes; run with `--tune` to choose them on validation data).\n\n";
  md += "Rows: ";
  for (size_t i = 0; i < page.rows.size(); ++i)
    md += fmt::format("{}`{}` = {}", i ? "; " : "", page.rows[i], row_title(doc, page.rows[i]));
  md += ".\n\n";
  md += "Linear probe: multinomial logistic regression on standardised codes, L2 strength chosen on a 10% "
        "validation part of train (never on test). k-NN: exact, L2 distance, against all training codes; beside it "
        "1-NN of standardised codes and by cosine similarity. Reconstruction: Bernoulli negative log-likelihood of "
        "the test images decoded from the prefix (nats per image; PCA has none) and squared error per image. MMD²: "
        "unbiased estimate between test codes and N(0, I) with the model's kernel.\n\n";
  return md;
}

std::string runs_section(const Page& page) {
  const json& doc = page.doc;
  if (!doc.contains("models")) return "";
  std::string md =
      "## Runs\n\nEvery model behind the numbers, with its run folder (its `config.toml` holds every setting) "
      "and config hash.\n\n| run | data set | model | D | seed | config hash | training s |\n"
      "| --- | --- | --- | --- | --- | --- | --- |\n";
  for (const auto& [name, m] : doc["models"].items())
    md += fmt::format("| `{}` | {} | {} | {} | {} | `{}` | {:.1f} |\n", m.value("run_dir", name), m.value("dataset", ""),
                      m.value("model", ""), m.value("latent", 0), m.value("seed", 0), m.value("config_hash", ""),
                      m.value("train_seconds", 0.0));
  return md + "\n";
}

}  // namespace report

void write_report(const fs::path& results_json, const fs::path& out_dir) {
  const auto bytes = read_file(results_json);
  report::json doc;
  try {
    doc = report::json::parse(bytes.begin(), bytes.end());
  } catch (const report::json::exception& e) {
    throw Error(results_json.string() + ": not valid JSON: " + first_line(e.what()));
  }
  for (const char* key : {"results", "options", "profile", "commit", "machine"})
    if (!doc.contains(key)) throw Error(results_json.string() + ": missing key '" + key + "'");
  report::Page page{doc, {}, doc["options"]["dims"].get<std::vector<int64_t>>(), out_dir};
  // The rows in the catalogue's order (row_titles'), as far as the run had them.
  const auto& wanted = doc["options"]["rows"];
  if (doc.contains("row_titles")) {
    for (const auto& [r, title] : doc["row_titles"].items())
      if (std::find(wanted.begin(), wanted.end(), r) != wanted.end()) page.rows.push_back(r);
  } else {
    for (const auto& r : wanted) page.rows.push_back(r.get<std::string>());
  }
  std::string md = report::header_section(page);
  for (const auto& [dataset, per_row] : doc["results"].items()) md += report::dataset_section(page, dataset);
  md += report::tuning_appendix(page);
  md += report::runs_section(page);
  write_file_atomic(out_dir / "REPORT.md", md);
}

}  // namespace matvae
