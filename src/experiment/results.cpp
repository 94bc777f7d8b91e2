// Gathering and writing results.json; see results.h.
#include "matvae/experiment/results.h"

#include <algorithm>
#include <thread>

#include "matvae/data/dataset.h"
#include "matvae/data/features.h"
#include "matvae/data/fetch.h"
#include "matvae/train/run_folder.h"
#include "matvae/util/file_io.h"
#include "matvae/util/machine.h"
#include "matvae/util/sha256.h"
#include "matvae/util/threads.h"

namespace matvae {
namespace fs = std::filesystem;
using json = nlohmann::ordered_json;
namespace {

json machine_info(int64_t threads) {
  json j;
  j["cores"] = std::thread::hardware_concurrency();
  j["threads"] = threads > 0 ? threads : static_cast<int64_t>(std::thread::hardware_concurrency());
  j["blas"] = blas_libraries();
  set_threads(1);
  j["matmul_gflops_1_thread"] = measure_matmul_gflops(512, 0.3);
  set_threads(threads);
  j["matmul_gflops_all_threads"] = measure_matmul_gflops(512, 0.3);
  return j;
}

/// Which files each data set's numbers come from: their SHA-256 and whether they are the recorded
/// official files (MNIST, Fashion-MNIST).
json data_info(const fs::path& root, const std::vector<std::string>& datasets) {
  json out = json::object();
  for (const auto& dataset : datasets) {
    const fs::path dir = root / dataset;
    json& d = out[dataset];
    d["dir"] = dir.string();
    std::vector<fs::path> files;
    if (is_feature_folder(dir)) {
      for (const char* name : {"train.npy", "train.labels.npy", "test.npy", "test.labels.npy"}) files.push_back(dir / name);
    } else {
      for (const Split split : {Split::kTrain, Split::kTest})
        for (const bool labels : {false, true}) files.push_back(idx_path(dir, split, labels));
    }
    for (const auto& file : files) d["sha256"][file.filename().string()] = sha256_file(file);
    d["verified"] = (dataset == "mnist" || dataset == "fashion-mnist") && dataset_verified(dir, dataset);
  }
  return out;
}

}  // namespace

void ResultsBook::note(const std::vector<Task>& tasks) {
  for (const Task& t : tasks) {
    if (!t.job.dir.empty()) {
      const std::string name = t.job.dir.filename().string();
      if (!models_.contains(name)) {  // a model with several evaluations: read its run folder once
        const RunFolder folder(t.job.dir);
        json j;
        j["dataset"] = t.job.dataset;
        j["model"] = to_string(t.job.config.model);
        j["latent"] = t.job.config.latent;
        j["seed"] = t.job.config.seed;
        j["config_hash"] = config_hash(t.job.config);
        j["run_dir"] = fs::relative(t.job.dir, out_).string();
        const TrainingRecord record = folder.training_record();
        j["train_seconds"] = record.seconds;
        j["trained_by"] = record.builds;
        models_[name] = j;
        configs_[name] = to_toml(folder.read_config());
      }
    }
    for (const std::string& c : t.evaluated_by) evaluations_by_[c] = evaluations_by_.value(c, 0) + 1;
  }
}

void ResultsBook::add_results(const std::vector<Task>& tasks) {
  for (const Task& t : tasks)
    for (const auto& [m, metrics] : t.result.items()) results_[t.dataset][t.row][m][std::to_string(t.seed)] = metrics;
}

void ResultsBook::set_choice(const std::string& dataset, const Choice& choice, const std::vector<std::string>& rows,
                             const std::vector<int64_t>& dims, int64_t latent) {
  for (const Family& fam : families()) {
    if (std::none_of(rows.begin(), rows.end(), [&](const std::string& r) { return family_of_row(r) == fam.name; }))
      continue;
    json& c = chosen_[dataset][fam.name];
    if (fam.per_m) {
      for (int64_t m : dims) c[std::to_string(m)] = choice.of(fam, m);
      if (std::find(dims.begin(), dims.end(), latent) == dims.end()) c[std::to_string(latent)] = choice.of(fam, latent);
    } else {
      c["all"] = choice.of(fam, latent);
    }
  }
  variants_[dataset] = choice.of(family("mrl-mmd"), latent);
}

double ResultsBook::seconds_of(const ModelJob& job) const {
  return models_.at(job.dir.filename().string())["train_seconds"].get<double>();
}

void ResultsBook::add_train_times(const std::string& dataset, uint64_t seed, const ModelJob& mrl,
                                  const std::vector<Task>& tasks, const std::vector<int64_t>& dims) {
  double separate_seconds = 0;
  for (const Task& t : tasks)
    if (t.dataset == dataset && t.seed == seed && t.row == "mmd-at-m") separate_seconds += seconds_of(t.job);
  json& w = wall_[dataset][std::to_string(seed)];
  w["mrl_mmd_seconds"] = seconds_of(mrl);
  w["separate_mmd_seconds"] = separate_seconds;
  w["separate_dims"] = dims;
}

fs::path ResultsBook::write(const RunFacts& f) const {
  const ExperimentOptions& o = f.options;
  json doc;
  doc["schema"] = 1;
  doc["tool"] = version_string();
  doc["commit"] = git_commit();
  doc["profile"] = o.profile;
  doc["profile_settings"] = {{"epochs", f.profile.epochs},
                             {"lr_schedule", to_string(f.profile.lr_schedule)},
                             {"train_limit", f.profile.train_limit},
                             {"latent", f.profile.latent},
                             {"hidden", f.profile.hidden},
                             {"eval", f.eval.json}};
  doc["options"] = {{"datasets", o.datasets}, {"dims", o.dims},     {"seeds", o.seeds},
                    {"rows", o.rows},         {"epochs", o.epochs}, {"lr_schedule", o.lr_schedule}, {"attempts", o.attempts},
                    {"tune", f.tuned}};
  doc["machine"] = machine_info(o.threads);
  doc["machine"]["jobs"] = f.jobs;
  doc["machine"]["threads_per_job"] = f.job_threads;
  doc["machine"]["ranks"] = f.ranks;
  // Other work on the machine slows every timing in the report; the report says so.
  doc["machine"]["load_average_start"] = f.load_at_start;
  doc["machine"]["load_average_end"] = load_average();
  // The load average lags by a minute and counts this run's own threads; this is the others' share of
  // the cores over the whole run. Other ranks on this machine would count as others: left out then.
  const double others = f.local_ranks == 1 ? others_busy_cores(f.cpu_at_start, cpu_times()) : -1;
  if (others >= 0) doc["machine"]["others_busy_cores"] = others;
  doc["wall_seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - f.start).count();
  doc["train_times"] = wall_;
  doc["models"] = models_;
  // A rerun reuses finished models and evaluations, maybe of other builds: say which builds made them.
  json models_by = json::object();
  for (const auto& [name, m] : models_.items())
    for (const auto& c : m["trained_by"]) models_by[c.get<std::string>()] = models_by.value(c.get<std::string>(), 0) + 1;
  doc["provenance"] = {{"models_trained_by", models_by}, {"evaluations_by", evaluations_by_}};
  doc["configs"] = configs_;
  doc["mrl_variant"] = variants_;
  doc["chosen"] = chosen_;
  doc["tuning"] = tuning_;
  doc["results"] = results_;
  // What the report prints beside the numbers, so that it needs nothing but this file.
  for (const auto& row : experiment_rows()) doc["row_titles"][row] = row_title(row);
  for (const auto& v : mrl_variants()) doc["variant_descriptions"][v.name] = v.description;
  for (const Family& fam : families())
    for (const auto& c : fam.candidates) doc["candidate_descriptions"][fam.name][c.name] = c.description;
  doc["data"] = data_info(o.data_root, o.datasets);
  const fs::path path = out_ / "results.json";
  write_file_atomic(path, doc.dump(1) + "\n");
  return path;
}

}  // namespace matvae
