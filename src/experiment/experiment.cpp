// The experiment driver: plan the models every requested row needs, train or resume each in its
// own cached run folder, evaluate each (cached too), then write results.json and the report.
#include "matvae/experiment/experiment.h"

#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "matvae/data/dataset.h"
#include "matvae/experiment/attempts.h"
#include "matvae/experiment/model_eval.h"
#include "matvae/report/report.h"
#include "matvae/report/svg_plot.h"
#include "matvae/train/trainer.h"
#include "matvae/util/error.h"
#include "matvae/util/file_io.h"
#include "matvae/util/machine.h"
#include "matvae/util/sha256.h"

namespace matvae {
namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

// Bump when evaluation code changes what it measures, so cached evaluations are redone.
constexpr int kEvalVersion = 1;

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

/// A JSON file with an embedded checksum of its payload: damage is detected, never used.
void write_checked_json(const fs::path& path, const json& payload) {
  const std::string body = payload.dump();
  json envelope;
  envelope["sha256"] = sha256_hex(body.data(), body.size());
  envelope["payload"] = payload;
  write_file_atomic(path, envelope.dump(1) + "\n");
}

/// Reads a file written by write_checked_json; returns null if absent, throws Error if damaged.
json read_checked_json(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return nullptr;
  const auto bytes = read_file(path);
  json envelope;
  try {
    envelope = json::parse(bytes.begin(), bytes.end());
  } catch (const json::exception&) {
    throw Error(path.string() + ": damaged cached result (not JSON); delete it to recompute");
  }
  if (!envelope.is_object() || !envelope.contains("payload") || !envelope.contains("sha256"))
    throw Error(path.string() + ": damaged cached result (missing fields); delete it to recompute");
  const std::string body = envelope["payload"].dump();
  if (envelope["sha256"] != sha256_hex(body.data(), body.size()))
    throw Error(path.string() + ": damaged cached result (checksum mismatch); delete it to recompute");
  return envelope["payload"];
}

/// One model to train: which rows it serves is decided by the caller.
struct ModelJob {
  std::string dataset;
  TrainConfig config;
  fs::path dir;
};

/// n rows of `d` chosen by a fixed seeded permutation (kept in file order); all if n is 0 or too large.
Dataset random_subset(const Dataset& d, int64_t n) {
  if (n <= 0 || n >= d.size()) return d;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(12345);
  const auto idx = std::get<0>(torch::randperm(d.size(), gen, torch::TensorOptions().dtype(torch::kInt64)).narrow(0, 0, n).sort());
  Dataset out = d;
  out.images = d.images.index_select(0, idx);
  out.labels = d.labels.index_select(0, idx);
  return out;
}

/// The last n rows of `d` (a view): Dataset::head's other end.
Dataset tail(const Dataset& d, int64_t n) {
  Dataset out = d;
  out.images = d.images.narrow(0, d.size() - n, n);
  out.labels = d.labels.narrow(0, d.size() - n, n);
  return out;
}

/// Where the attempts are measured: the last tenth of train, which no attempt model (nor its
/// reference) trains on. The probe and k-NN fit on codes of the other nine tenths.
struct ValidationSplit {
  TrainTest data;
  int64_t fit_rows = 0;      // train rows [0, fit_rows) may be trained on
  int64_t train_limit = 0;   // the attempt models' `limit`
};

ValidationSplit validation_split(const Dataset& train, const ExperimentProfile& p) {
  const int64_t n = train.size(), n_val = std::max<int64_t>(n / 10, 2);
  ValidationSplit v;
  v.fit_rows = n - n_val;
  v.train_limit = p.train_limit > 0 ? std::min(p.train_limit, v.fit_rows) : v.fit_rows;
  v.data.train = random_subset(train.head(v.fit_rows), p.eval_train_limit);
  v.data.test = random_subset(tail(train, n_val), p.eval_test_limit);
  return v;
}

std::vector<int64_t> powers_of_two(int64_t latent) {
  std::vector<int64_t> v;
  for (int64_t m = 2; m < latent; m *= 2) v.push_back(m);
  v.push_back(latent);
  return v;
}

TrainConfig base_config(const ExperimentProfile& p, const fs::path& data_dir, uint64_t seed, int64_t threads) {
  TrainConfig c;
  c.data = data_dir.string();
  c.latent = p.latent;
  c.hidden = p.hidden;
  c.epochs = p.epochs;
  c.limit = p.train_limit;
  c.seed = seed;
  c.threads = threads;
  c.checkpoint_every = 200;  // an interrupted experiment loses at most a few seconds of a model
  return c;
}

ModelJob make_job(const std::string& dataset, TrainConfig c, const fs::path& runs) {
  resolve(c);
  const std::string name = fmt::format("{}-d{}-s{}-{}", c.model, c.latent, c.seed, config_hash(c).substr(0, 10));
  return {dataset, c, runs / dataset / name};
}

/// Trains the job's model unless its run folder already holds a finished one; resumes a partial one.
/// Returns false if interrupted.
bool ensure_trained(const ModelJob& job, const ExperimentOptions& o) {
  std::error_code ec;
  if (fs::exists(job.dir / "checkpoint.pt", ec)) return true;
  TrainHooks hooks;
  hooks.stop = o.stop;
  const auto log = [&](const std::string& s) {
    if (o.log) o.log(s);
  };
  TrainResult r;
  if (fs::exists(job.dir / "state.pt", ec)) {
    log(fmt::format("{}: resuming {}", job.dataset, job.dir.filename().string()));
    r = resume(job.dir, hooks, job.config.threads);
  } else {
    if (fs::exists(job.dir, ec)) fs::remove_all(job.dir, ec);  // stopped before its first checkpoint
    log(fmt::format("{}: training {}", job.dataset, job.dir.filename().string()));
    r = train(job.config, job.dir, hooks);
  }
  return !r.interrupted;
}

/// Training seconds of a finished run: the per-epoch times in its metrics.jsonl.
double train_seconds(const fs::path& dir) {
  std::ifstream in(dir / "metrics.jsonl");
  std::string line;
  double s = 0;
  while (std::getline(in, line))
    if (!line.empty()) s += nlohmann::json::parse(line).value("seconds", 0.0);
  return s;
}

/// Returns the cached evaluation `file` for `dims`, computing (and caching) the missing dims.
json cached_eval(const fs::path& file, const std::vector<int64_t>& dims,
                 const std::function<json(const std::vector<int64_t>&)>& compute) {
  json have = read_checked_json(file);
  if (have.is_null()) have = json::object();
  std::vector<int64_t> missing;
  for (int64_t m : dims)
    if (!have.contains(std::to_string(m))) missing.push_back(m);
  if (!missing.empty()) {
    const json fresh = compute(missing);
    for (const auto& [k, v] : fresh.items()) have[k] = v;
    fs::create_directories(file.parent_path());
    write_checked_json(file, have);
  }
  json out;
  for (int64_t m : dims) out[std::to_string(m)] = have[std::to_string(m)];
  return out;
}

/// The Matryoshka model's pictures: reconstructions and samples per prefix (copied from its run
/// folder) and, for m = 2, a scatter of the test codes coloured by class.
void write_mrl_figures(Vae& model, const TrainTest& data, const fs::path& out, const std::string& dataset,
                       const fs::path& run_dir) {
  for (const char* name : {"recon", "samples"}) {
    const auto bytes = read_file(run_dir / (std::string(name) + ".png"));
    write_file_atomic(out / fmt::format("{}_{}.png", name, dataset), bytes.data(), bytes.size());
  }
  const auto codes = encode_mu(model, data.test.images).narrow(1, 0, 2).to(torch::kFloat64).contiguous();
  const auto labels = data.test.labels.contiguous();
  ScatterPlot plot;
  plot.title = fmt::format("{}: MRL-MMD-VAE test codes, prefix m = 2", dataset);
  const double* c = codes.data_ptr<double>();
  for (int64_t i = 0; i < codes.size(0); ++i) {
    plot.x.push_back(c[2 * i]);
    plot.y.push_back(c[2 * i + 1]);
    plot.cls.push_back(labels[i].item<int64_t>());
  }
  for (int64_t k = 0; k < data.train.num_classes; ++k) plot.class_names.push_back(std::to_string(k));
  write_scatter_svg(out / fmt::format("scatter_m2_{}.svg", dataset), plot);
}

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

}  // namespace

const std::vector<std::string>& experiment_rows() {
  static const std::vector<std::string> kRows = {"mrl-mmd", "mmd-at-m", "vae-at-m", "mmd-trunc",
                                                 "pca",     "mrl-vae",  "mmd-svd"};
  return kRows;
}

std::string row_title(const std::string& row) {
  static const std::map<std::string, std::string> kTitles = {
      {"mrl-mmd", "MRL-MMD-VAE, prefix z[:m] (one model)"},
      {"mmd-at-m", "MMD-VAE trained at m"},
      {"vae-at-m", "VAE trained at m"},
      {"mmd-trunc", "MMD-VAE-D truncated to z[:m]"},
      {"pca", "PCA of the pixels to m"},
      {"mrl-vae", "MRL-VAE, prefix z[:m]"},
      {"mmd-svd", "MMD-VAE-D codes reduced to m by PCA"},
  };
  const auto it = kTitles.find(row);
  return it == kTitles.end() ? row : it->second;
}

ExperimentProfile experiment_profile(const std::string& name) {
  ExperimentProfile p;
  if (name == "quick") {
    p.epochs = 2;
    p.train_limit = 20000;
    p.hidden = {512, 256};
    p.seeds = {0};
    p.eval_train_limit = 20000;
    // Chosen by `--attempts` at this scale: the smallest worst validation gap over MNIST and
    // Fashion-MNIST together (reports/quick-attempts/REPORT.md).
    p.mrl_variant = "lambda-light-small";
  } else if (name == "full") {
    p.epochs = 20;
    p.hidden = {512, 256};
    p.seeds = {0, 1, 2};
    // The best at 10 epochs on MNIST's validation split: within 0.9 points of the separate models at
    // every m (reports/mnist-10-epochs/REPORT.md);
    // run with --attempts to choose at this scale.
    p.mrl_variant = "separate+c-log";
  } else if (name == "tiny") {  // for tests: seconds, not minutes
    p.epochs = 1;
    p.train_limit = 1000;
    p.latent = 8;
    p.hidden = {32};
    p.seeds = {0};
    p.eval_train_limit = 1000;
    p.eval_test_limit = 300;
  } else {
    throw UsageError("unknown profile '" + name + "' (expected quick, full or tiny)");
  }
  return p;
}

ExperimentResult run_experiment(const ExperimentOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const double load_at_start = load_average();
  ExperimentProfile profile = experiment_profile(options.profile);
  if (options.epochs < 0 || options.epochs > 1000000)
    throw UsageError(fmt::format("--epochs: {} is outside 0..1000000 (0 = the profile's)", options.epochs));
  if (options.epochs > 0) profile.epochs = options.epochs;
  ExperimentOptions o = options;
  if (o.out.empty()) o.out = fs::path("results") / o.profile;
  if (o.dims.empty()) o.dims = powers_of_two(profile.latent);
  if (o.seeds.empty()) o.seeds = profile.seeds;
  if (o.rows.empty()) o.rows = experiment_rows();
  const std::vector<int64_t> nesting = powers_of_two(profile.latent);
  for (int64_t m : o.dims)
    if (std::find(nesting.begin(), nesting.end(), m) == nesting.end())
      throw UsageError(fmt::format("--dims: {} is not in the profile's nesting list {}", m,
                                   fmt::join(nesting, ",")));
  for (const auto& r : o.rows)
    if (std::find(experiment_rows().begin(), experiment_rows().end(), r) == experiment_rows().end())
      throw UsageError(fmt::format("--rows: unknown row '{}' (expected {})", r, fmt::join(experiment_rows(), ",")));
  for (const auto& d : o.datasets)
    if (d.empty()) throw UsageError("--datasets: empty name");
  std::sort(o.dims.begin(), o.dims.end());
  o.dims.erase(std::unique(o.dims.begin(), o.dims.end()), o.dims.end());
  // Now, not only when a model trains: a rerun that finds every model cached would otherwise
  // evaluate on LibTorch's default thread count (here 1 of 2 cores: it counts physical cores).
  set_threads(o.threads);
  const auto log = [&](const std::string& s) {
    if (o.log) o.log(s);
  };
  const std::set<std::string> rows(o.rows.begin(), o.rows.end());
  const fs::path runs = o.out / "runs";
  std::error_code ec;
  fs::create_directories(runs, ec);
  if (ec) throw Error(o.out.string() + ": cannot create the results folder: " + ec.message());

  json eval_settings;
  eval_settings["version"] = kEvalVersion;
  eval_settings["train_limit"] = profile.eval_train_limit;
  eval_settings["test_limit"] = profile.eval_test_limit;
  const std::string eval_dump = eval_settings.dump();
  const std::string eval_tag = sha256_hex(eval_dump.data(), eval_dump.size()).substr(0, 8);

  json results = json::object(), models = json::object(), wall = json::object();
  json attempts = json::object(), variants_used = json::object();
  ExperimentResult out;
  auto stopped = [&] { return o.stop && o.stop->load(); };
  auto interrupted = [&] {
    out.interrupted = true;
    return out;
  };
  // Lists a model in results.json (what the report's run table shows), with its training time.
  auto note_model = [&](const ModelJob& job) {
    json j;
    j["dataset"] = job.dataset;
    j["model"] = job.config.model;
    j["latent"] = job.config.latent;
    j["seed"] = job.config.seed;
    j["config_hash"] = config_hash(job.config);
    j["run_dir"] = fs::relative(job.dir, o.out).string();
    j["train_seconds"] = train_seconds(job.dir);
    models[job.dir.filename().string()] = j;
  };
  auto seconds_of = [&](const ModelJob& job) {  // as noted, not read again from metrics.jsonl
    return models[job.dir.filename().string()]["train_seconds"].get<double>();
  };
  // Trains (or finds) one model and runs `eval` on it at `dims`, cached in `cache_name` inside its
  // run folder; null if interrupted.
  auto train_and_eval = [&](const ModelJob& job, const std::string& cache_name, const std::vector<int64_t>& dims,
                            const std::function<json(Vae&, const TrainConfig&, const std::vector<int64_t>&)>& eval) {
    if (stopped() || !ensure_trained(job, o)) return json();
    const json per_dim = cached_eval(job.dir / cache_name, dims, [&](const std::vector<int64_t>& missing) {
      LoadedRun run = load_run(job.dir);
      log(fmt::format("{}: evaluating {} ({})", job.dataset, job.dir.filename().string(), cache_name));
      const auto eval_start = std::chrono::steady_clock::now();
      json fresh = eval(run.model, run.config, missing);
      log(fmt::format("{}: evaluated {} at {} prefix size(s) in {:.1f} s", job.dataset, job.dir.filename().string(),
                      missing.size(), seconds_since(eval_start)));
      return fresh;
    });
    note_model(job);
    return per_dim;
  };

  for (const auto& dataset : o.datasets) {
    const fs::path data_dir = o.data_root / dataset;
    const TrainTest full = load_dataset(data_dir);
    // A seeded random subset, not the first rows: a split may be sorted by class.
    TrainTest data;
    data.train = random_subset(full.train, profile.eval_train_limit);
    data.test = random_subset(full.test, profile.eval_test_limit);

    // The attempts: every MRL variant and the separately trained MMD-VAEs, all on the first seed,
    // measured on the validation split; the test set plays no part in the choice.
    std::string variant = profile.mrl_variant;
    if (o.attempts) {
      const uint64_t seed = o.seeds.front();
      const ValidationSplit v = validation_split(full.train, profile);
      TrainConfig base = base_config(profile, data_dir, seed, o.threads);
      base.limit = v.train_limit;
      const std::string cache = fmt::format("val-{}.json", eval_tag);
      auto eval_val = [&](Vae& m, const TrainConfig& c, const std::vector<int64_t>& d) {
        return evaluate_prefixes(m, c, v.data, d, false, seed);
      };
      json record;
      record["seed"] = seed;
      record["validation_rows"] = {v.fit_rows, full.train.size()};
      record["train_limit"] = v.train_limit;
      AccuracyByM reference;
      for (int64_t m : o.dims) {
        TrainConfig c = base;
        c.model = "mmd";
        c.latent = m;
        const ModelJob job = make_job(dataset, c, runs);
        const json r = train_and_eval(job, cache, {m}, eval_val);
        if (r.is_null()) return interrupted();
        record["reference"][std::to_string(m)] = r[std::to_string(m)];
        record["reference_runs"][std::to_string(m)] = job.dir.filename().string();
        reference[m] = r[std::to_string(m)]["probe"].get<double>();
      }
      std::map<std::string, VariantScore> scores;
      for (const auto& mv : mrl_variants()) {
        TrainConfig c = base;
        c.model = "mrl-mmd";
        apply_mrl_variant(mv.name, c);
        const ModelJob job = make_job(dataset, c, runs);
        const json r = train_and_eval(job, cache, o.dims, eval_val);
        if (r.is_null()) return interrupted();
        AccuracyByM acc;
        for (int64_t m : o.dims) acc[m] = r[std::to_string(m)]["probe"].get<double>();
        const VariantScore sc = score_variant(reference, acc);
        scores[mv.name] = sc;
        json& e = record["variants"][mv.name];
        e["description"] = mv.description;
        e["run"] = job.dir.filename().string();
        e["config_hash"] = config_hash(job.config);
        e["metrics"] = r;
        e["worst_gap"] = sc.worst_gap;
        e["mean_gap"] = sc.mean_gap;
        e["mean_probe"] = sc.mean_accuracy;
      }
      variant = choose_variant(scores);
      record["chosen"] = variant;
      attempts[dataset] = record;
      log(fmt::format("{}: attempts done; the mrl-mmd row uses variant '{}'", dataset, variant));
    }
    variants_used[dataset] = variant;

    for (uint64_t seed : o.seeds) {
      const std::string seed_key = std::to_string(seed);
      const TrainConfig base = base_config(profile, data_dir, seed, o.threads);
      auto record = [&](const std::string& row, const json& per_dim) {
        for (const auto& [m, metrics] : per_dim.items()) results[dataset][row][m][seed_key] = metrics;
      };
      // Train (or find) one model and evaluate it for one row on the test set; false if interrupted.
      auto run_row = [&](const std::string& row, const ModelJob& job, const std::vector<int64_t>& dims,
                         const std::function<json(Vae&, const TrainConfig&, const std::vector<int64_t>&)>& eval) {
        const json per_dim = train_and_eval(job, fmt::format("eval-{}-{}.json", row, eval_tag), dims, eval);
        if (per_dim.is_null()) return false;
        record(row, per_dim);
        return true;
      };
      auto test_eval = [&](bool truncate) {
        return [&data, truncate, seed](Vae& m, const TrainConfig& c, const std::vector<int64_t>& d) {
          return evaluate_prefixes(m, c, data, d, truncate, seed);
        };
      };

      double mrl_seconds = 0, separate_seconds = 0;
      auto job_for = [&](const std::string& model, int64_t latent) {
        TrainConfig c = base;
        c.model = model;
        c.latent = latent;
        if (model == "mrl-mmd") apply_mrl_variant(variant, c);
        return make_job(dataset, c, runs);
      };
      const ModelJob mrl = job_for("mrl-mmd", profile.latent);
      if (rows.count("mrl-mmd")) {
        if (!run_row("mrl-mmd", mrl, o.dims, test_eval(false))) return interrupted();
        mrl_seconds = seconds_of(mrl);
      }
      if (rows.count("mrl-vae") && !run_row("mrl-vae", job_for("mrl-vae", profile.latent), o.dims, test_eval(false)))
        return interrupted();
      for (const char* kind : {"mmd", "vae"}) {
        const std::string row = std::string(kind) + "-at-m";
        if (!rows.count(row)) continue;
        for (int64_t m : o.dims) {
          const ModelJob job = job_for(kind, m);
          if (!run_row(row, job, {m}, test_eval(false))) return interrupted();
          if (row == "mmd-at-m") separate_seconds += seconds_of(job);
        }
      }
      const ModelJob full_mmd = job_for("mmd", profile.latent);
      if (rows.count("mmd-trunc") && !run_row("mmd-trunc", full_mmd, o.dims, test_eval(true))) return interrupted();
      if (rows.count("mmd-svd") &&
          !run_row("mmd-svd", full_mmd, o.dims, [&](Vae& m, const TrainConfig& c, const auto& d) {
            return evaluate_code_pca(m, c, data, d, seed);
          }))
        return interrupted();
      if (rows.count("pca")) {
        const fs::path file = runs / dataset / fmt::format("pca-s{}-{}.json", seed, eval_tag);
        record("pca", cached_eval(file, o.dims, [&](const std::vector<int64_t>& d) {
                 log(fmt::format("{}: evaluating pca", dataset));
                 const auto eval_start = std::chrono::steady_clock::now();
                 json fresh = evaluate_pixel_pca(data, d, seed);
                 log(fmt::format("{}: evaluated pca at {} prefix size(s) in {:.1f} s", dataset, d.size(),
                                 seconds_since(eval_start)));
                 return fresh;
               }));
      }
      if (rows.count("mrl-mmd") && rows.count("mmd-at-m")) {
        wall[dataset][seed_key]["mrl_mmd_seconds"] = mrl_seconds;
        wall[dataset][seed_key]["separate_mmd_seconds"] = separate_seconds;
        wall[dataset][seed_key]["separate_dims"] = o.dims;
      }
      // Pictures of the first seed's Matryoshka model.
      if (rows.count("mrl-mmd") && seed == o.seeds.front()) {
        LoadedRun run = load_run(mrl.dir);
        write_mrl_figures(run.model, data, o.out, dataset, mrl.dir);
      }
    }
  }

  json doc;
  doc["schema"] = 1;
  doc["tool"] = version_string();
  doc["commit"] = git_commit();
  doc["profile"] = o.profile;
  doc["profile_settings"] = {{"epochs", profile.epochs},
                             {"train_limit", profile.train_limit},
                             {"latent", profile.latent},
                             {"hidden", profile.hidden},
                             {"eval", eval_settings}};
  doc["options"] = {{"datasets", o.datasets}, {"dims", o.dims}, {"seeds", o.seeds}, {"rows", o.rows}, {"epochs", o.epochs}, {"attempts", o.attempts}};
  doc["machine"] = machine_info(o.threads);
  // Other work on the machine slows every timing in the report; the report says so.
  doc["machine"]["load_average_start"] = load_at_start;
  doc["machine"]["load_average_end"] = load_average();
  doc["wall_seconds"] = seconds_since(start);
  doc["train_times"] = wall;
  doc["models"] = models;
  json configs = json::object();
  for (const auto& [name, m] : models.items()) {
    configs[name] = to_toml(read_run_config(o.out / m["run_dir"].get<std::string>()));
  }
  doc["configs"] = configs;
  doc["mrl_variant"] = variants_used;
  doc["attempts"] = attempts;
  doc["results"] = results;
  out.results_json = o.out / "results.json";
  write_file_atomic(out.results_json, doc.dump(1) + "\n");
  out.report_md = o.out / "REPORT.md";
  write_report(out.results_json, o.out);
  log(fmt::format("results: {}, report: {} ({:.0f} s)", out.results_json.string(), out.report_md.string(),
                  seconds_since(start)));
  return out;
}

}  // namespace matvae
