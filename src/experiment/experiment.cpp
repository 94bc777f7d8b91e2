// The experiment driver: plan the models every requested row needs, train or resume each in its
// own cached run folder, evaluate each (cached too), then write results.json and the report.
#include "matvae/experiment/experiment.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

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
#include "matvae/util/work_pool.h"

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

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

/// What a killed experiment may have left half-written: temporaries of its results, report and
/// pictures, and of cached evaluations. A run folder's training files are its trainer's to clean.
void remove_stale_outputs(const fs::path& out, const std::vector<std::string>& datasets) {
  remove_stale_temporaries(out, [](const std::string& name) {
    return ends_with(name, ".json") || ends_with(name, ".md") || ends_with(name, ".png") || ends_with(name, ".svg");
  });
  const auto is_eval = [](const std::string& name) { return ends_with(name, ".json"); };
  for (const auto& dataset : datasets) {
    const fs::path dir = out / "runs" / dataset;
    remove_stale_temporaries(dir, is_eval);
    std::error_code ec;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
      std::error_code ec2;
      if (it->is_directory(ec2)) remove_stale_temporaries(it->path(), [](const std::string& name) {
          return ends_with(name, ".json") && (name.rfind("eval-", 0) == 0 || name.rfind("val-", 0) == 0);
        });
    }
  }
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
bool ensure_trained(const ModelJob& job, const std::atomic<bool>* stop,
                    const std::function<void(const std::string&)>& log) {
  std::error_code ec;
  if (fs::exists(job.dir / "checkpoint.pt", ec)) return true;
  TrainHooks hooks;
  hooks.stop = stop;
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

using ModelEval = std::function<json(Vae&, const TrainConfig&, const std::vector<int64_t>&)>;

/// One evaluation for one row: of a model, trained first unless its run folder holds it, or of
/// the pixels (pixel PCA: no model, job.dir empty).
struct Task {
  std::string dataset, row;
  uint64_t seed = 0;
  ModelJob job;
  fs::path cache;                                                // the evaluation's cache file
  std::vector<int64_t> dims;
  ModelEval eval;                                                // of the model
  std::function<json(const std::vector<int64_t>&)> eval_pixels;  // without one
  json result;                                                   // per m, once run; null if interrupted
  std::set<std::string> evaluated_by;                            // the builds that computed `result`
};

/// The task that evaluates `job`'s model for `row` at `dims`, cached as `cache_name` in its run folder.
Task model_task(const std::string& row, uint64_t seed, const ModelJob& job, const std::string& cache_name,
                const std::vector<int64_t>& dims, ModelEval eval) {
  Task t;
  t.dataset = job.dataset;
  t.row = row;
  t.seed = seed;
  t.job = job;
  t.cache = job.dir / cache_name;
  t.dims = dims;
  t.eval = std::move(eval);
  return t;
}

/// What a finished run's metrics.jsonl says of its training: the seconds of its epochs, summed, and
/// the builds that trained them, in epoch order ("unknown" for lines written before builds recorded it).
struct TrainingRecord {
  double seconds = 0;
  std::vector<std::string> builds;
};
TrainingRecord training_record(const fs::path& dir) {
  std::ifstream in(dir / "metrics.jsonl");
  std::string line;
  TrainingRecord r;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    r.seconds += j.value("seconds", 0.0);
    const std::string c = j.value("commit", std::string("unknown"));
    if (std::find(r.builds.begin(), r.builds.end(), c) == r.builds.end()) r.builds.push_back(c);
  }
  return r;
}

/// Returns the cached evaluation `file` for `dims`, computing (and caching) the missing dims. The
/// cache keeps, beside each m, the build that computed it; those of `dims` are added to `by`.
json cached_eval(const fs::path& file, const std::vector<int64_t>& dims,
                 const std::function<json(const std::vector<int64_t>&)>& compute, std::set<std::string>* by) {
  constexpr const char* kBuilds = "commits";  // not a number, so never taken for a prefix size
  json have = read_checked_json(file);
  if (have.is_null()) have = json::object();
  std::vector<int64_t> missing;
  for (int64_t m : dims)
    if (!have.contains(std::to_string(m))) missing.push_back(m);
  if (!missing.empty()) {
    const json fresh = compute(missing);
    for (const auto& [k, v] : fresh.items()) {
      have[k] = v;
      have[kBuilds][k] = git_commit();
    }
    fs::create_directories(file.parent_path());
    write_checked_json(file, have);
  }
  json out;
  for (int64_t m : dims) {
    const std::string k = std::to_string(m);
    if (!have.contains(k)) return json();  // stopped part-way: the m done are cached, the rest are not
    out[k] = have[k];
    by->insert(have.contains(kBuilds) && have[kBuilds].contains(k) ? have[kBuilds][k].get<std::string>()
                                                                     : std::string("unknown"));
  }
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
  if (options.jobs < 0 || options.jobs > 1024)
    throw UsageError(fmt::format("--jobs: {} is outside 0..1024 (0 = one per thread)", options.jobs));
  if (options.threads < 0 || options.threads > 1024)
    throw UsageError(fmt::format("--threads: {} is outside 0..1024 (0 = every core)", options.threads));
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
  // For what runs on this thread (the figures; the workers set their own): LibTorch's default here
  // is 1 of 2 cores, as it counts physical cores.
  set_threads(o.threads);
  // Models train and evaluate `jobs` at a time, each on `job_threads` LibTorch threads: two of these
  // small models side by side, one thread each, beat one after the other on two threads by 1.3-1.7x.
  const int64_t cores = std::max<int64_t>(1, std::thread::hardware_concurrency());
  const int64_t total_threads = o.threads > 0 ? o.threads : cores;
  const int64_t jobs = o.jobs > 0 ? o.jobs : total_threads;
  const int64_t job_threads = std::max<int64_t>(1, total_threads / jobs);
  std::mutex log_mutex;
  const std::function<void(const std::string&)> log = [&](const std::string& s) {
    std::lock_guard<std::mutex> lock(log_mutex);
    if (o.log) o.log(s);
  };
  const std::set<std::string> rows(o.rows.begin(), o.rows.end());
  const fs::path runs = o.out / "runs";
  std::error_code ec;
  fs::create_directories(runs, ec);
  if (ec) throw Error(o.out.string() + ": cannot create the results folder: " + ec.message());
  remove_stale_outputs(o.out, o.datasets);

  json eval_settings;
  eval_settings["version"] = kEvalVersion;
  eval_settings["train_limit"] = profile.eval_train_limit;
  eval_settings["test_limit"] = profile.eval_test_limit;
  const std::string eval_dump = eval_settings.dump();
  const std::string eval_tag = sha256_hex(eval_dump.data(), eval_dump.size()).substr(0, 8);

  json results = json::object(), models = json::object(), wall = json::object();
  json attempts = json::object(), variants_used = json::object();
  json evaluations_by = json::object();  // commit -> how many evaluation tasks it computed (part of)
  ExperimentResult out;
  // Raised by a Ctrl-C (o.stop) or by a failing task: every running task saves and returns.
  std::atomic<bool> halt{false};
  const EvalStop stopped = [&] { return halt.load() || (o.stop && o.stop->load()); };
  auto interrupted = [&] {
    out.interrupted = true;
    return out;
  };
  // Lists a model in results.json (what the report's run table shows), with its training time.
  auto note_model = [&](const ModelJob& job) {
    const std::string name = job.dir.filename().string();
    if (models.contains(name)) return;  // a model with several evaluations: read its run folder once
    json j;
    j["dataset"] = job.dataset;
    j["model"] = job.config.model;
    j["latent"] = job.config.latent;
    j["seed"] = job.config.seed;
    j["config_hash"] = config_hash(job.config);
    j["run_dir"] = fs::relative(job.dir, o.out).string();
    const TrainingRecord record = training_record(job.dir);
    j["train_seconds"] = record.seconds;
    j["trained_by"] = record.builds;
    models[name] = j;
  };
  auto seconds_of = [&](const ModelJob& job) {  // as noted, not read again from metrics.jsonl
    return models[job.dir.filename().string()]["train_seconds"].get<double>();
  };
  // Trains (or finds) one model and runs `eval` on it at `dims`, cached in `cache`; null if interrupted.
  auto train_and_eval = [&](const ModelJob& job, const fs::path& cache, const std::vector<int64_t>& dims,
                            const ModelEval& eval, std::set<std::string>* by) {
    if (stopped() || !ensure_trained(job, &halt, log)) return json();
    return cached_eval(cache, dims, [&](const std::vector<int64_t>& missing) {
      LoadedRun run = load_run(job.dir);
      log(fmt::format("{}: evaluating {} ({})", job.dataset, job.dir.filename().string(), cache.filename().string()));
      const auto eval_start = std::chrono::steady_clock::now();
      json fresh = eval(run.model, run.config, missing);
      log(fmt::format("{}: evaluated {} at {} prefix size(s) in {:.1f} s", job.dataset, job.dir.filename().string(),
                      fresh.size(), seconds_since(eval_start)));
      return fresh;
    }, by);
  };
  // Runs the tasks on the workers; false if interrupted. The tasks of one model run in order on one
  // worker, so that it trains once. The longest start first, so that no worker is left alone with one
  // at the end: Matryoshka models, then models with several evaluations, then by latent size.
  auto run_tasks = [&](std::vector<Task>& tasks) {
    if (stopped()) return false;
    std::vector<std::vector<size_t>> groups;
    std::map<std::string, size_t> group_of;
    for (size_t i = 0; i < tasks.size(); ++i) {
      const fs::path& key = tasks[i].job.dir.empty() ? tasks[i].cache : tasks[i].job.dir;
      const auto [it, fresh] = group_of.emplace(key.string(), groups.size());
      if (fresh) groups.emplace_back();
      groups[it->second].push_back(i);
    }
    const auto cost = [&](const std::vector<size_t>& g) {
      const Task& t = tasks[g.front()];
      const bool mrl = !t.job.dir.empty() && t.job.config.model.rfind("mrl", 0) == 0;
      const int64_t size = t.job.dir.empty() ? t.dims.back() : t.job.config.latent;
      return std::make_tuple(mrl, g.size(), size);
    };
    std::stable_sort(groups.begin(), groups.end(),
                     [&](const std::vector<size_t>& a, const std::vector<size_t>& b) { return cost(a) > cost(b); });
    WorkPoolOptions pool;
    pool.workers = jobs;
    pool.setup = [&] { set_threads(job_threads); };
    pool.stop = o.stop;
    run_work_pool(
        groups.size(),
        [&](size_t g) {
          for (size_t i : groups[g]) {
            Task& t = tasks[i];
            t.result = t.job.dir.empty() ? cached_eval(t.cache, t.dims, t.eval_pixels, &t.evaluated_by)
                                         : train_and_eval(t.job, t.cache, t.dims, t.eval, &t.evaluated_by);
            if (t.result.is_null()) return;
          }
        },
        halt, pool);
    for (const Task& t : tasks) {
      if (t.result.is_null()) return false;
      if (!t.job.dir.empty()) note_model(t.job);  // here, in task order: results.json lists them so
      for (const std::string& c : t.evaluated_by) evaluations_by[c] = evaluations_by.value(c, 0) + 1;
    }
    return true;
  };

  // Every data set's and seed's tasks are planned first and then run together (the attempts of
  // a data set before them: they choose its variant); the tasks hold on to their data set here.
  std::deque<TrainTest> data_of;
  std::vector<Task> tasks;
  std::map<std::pair<std::string, uint64_t>, ModelJob> mrl_of;
  for (const auto& dataset : o.datasets) {
    const fs::path data_dir = o.data_root / dataset;
    const TrainTest full = load_dataset(data_dir);
    // A seeded random subset, not the first rows: a split may be sorted by class.
    TrainTest& data = data_of.emplace_back();
    data.train = random_subset(full.train, profile.eval_train_limit);
    data.test = random_subset(full.test, profile.eval_test_limit);

    // The attempts: every MRL variant and the separately trained MMD-VAEs, all on the first seed,
    // measured on the validation split; the test set plays no part in the choice.
    std::string variant = profile.mrl_variant;
    if (o.attempts) {
      const uint64_t seed = o.seeds.front();
      const ValidationSplit v = validation_split(full.train, profile);
      TrainConfig base = base_config(profile, data_dir, seed, job_threads);
      base.limit = v.train_limit;
      const std::string cache = fmt::format("val-{}.json", eval_tag);
      const ModelEval eval_val = [&v, &stopped, seed](Vae& m, const TrainConfig& c, const std::vector<int64_t>& d) {
        return evaluate_prefixes(m, c, v.data, d, false, seed, stopped);
      };
      std::vector<Task> trials;  // the references (one per m), then the variants (one each)
      auto add = [&](const std::string& row, const TrainConfig& c, const std::vector<int64_t>& dims) {
        trials.push_back(model_task(row, seed, make_job(dataset, c, runs), cache, dims, eval_val));
      };
      for (int64_t m : o.dims) {
        TrainConfig c = base;
        c.model = "mmd";
        c.latent = m;
        add("reference", c, {m});
      }
      for (const auto& mv : mrl_variants()) {
        TrainConfig c = base;
        c.model = "mrl-mmd";
        apply_mrl_variant(mv.name, c);
        add(mv.name, c, o.dims);
      }
      if (!run_tasks(trials)) return interrupted();

      json record;
      record["seed"] = seed;
      record["validation_rows"] = {v.fit_rows, full.train.size()};
      record["train_limit"] = v.train_limit;
      AccuracyByM reference;
      for (size_t i = 0; i < o.dims.size(); ++i) {
        const std::string m = std::to_string(o.dims[i]);
        record["reference"][m] = trials[i].result[m];
        record["reference_runs"][m] = trials[i].job.dir.filename().string();
        reference[o.dims[i]] = trials[i].result[m]["probe"].get<double>();
      }
      std::map<std::string, VariantScore> scores;
      for (size_t i = 0; i < mrl_variants().size(); ++i) {
        const auto& mv = mrl_variants()[i];
        const Task& t = trials[o.dims.size() + i];
        AccuracyByM acc;
        for (int64_t m : o.dims) acc[m] = t.result[std::to_string(m)]["probe"].get<double>();
        const VariantScore sc = score_variant(reference, acc);
        scores[mv.name] = sc;
        json& e = record["variants"][mv.name];
        e["description"] = mv.description;
        e["run"] = t.job.dir.filename().string();
        e["config_hash"] = config_hash(t.job.config);
        e["metrics"] = t.result;
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
      const TrainConfig base = base_config(profile, data_dir, seed, job_threads);
      auto job_for = [&](const std::string& model, int64_t latent) {
        TrainConfig c = base;
        c.model = model;
        c.latent = latent;
        if (model == "mrl-mmd") apply_mrl_variant(variant, c);
        return make_job(dataset, c, runs);
      };
      auto test_eval = [&data, &stopped, seed](bool truncate) -> ModelEval {
        return [&data, &stopped, truncate, seed](Vae& m, const TrainConfig& c, const std::vector<int64_t>& d) {
          return evaluate_prefixes(m, c, data, d, truncate, seed, stopped);
        };
      };
      auto add = [&](const std::string& row, const ModelJob& job, const std::vector<int64_t>& dims, ModelEval eval) {
        if (rows.count(row))
          tasks.push_back(model_task(row, seed, job, fmt::format("eval-{}-{}.json", row, eval_tag), dims, std::move(eval)));
      };
      const ModelJob& mrl = mrl_of[{dataset, seed}] = job_for("mrl-mmd", profile.latent);
      add("mrl-mmd", mrl, o.dims, test_eval(false));
      add("mrl-vae", job_for("mrl-vae", profile.latent), o.dims, test_eval(false));
      for (const char* kind : {"mmd", "vae"})
        for (int64_t m : o.dims) add(std::string(kind) + "-at-m", job_for(kind, m), {m}, test_eval(false));
      const ModelJob full_mmd = job_for("mmd", profile.latent);
      add("mmd-trunc", full_mmd, o.dims, test_eval(true));
      add("mmd-svd", full_mmd, o.dims, [&data, &stopped, seed](Vae& m, const TrainConfig& c, const std::vector<int64_t>& d) {
        return evaluate_code_pca(m, c, data, d, seed, stopped);
      });
      if (rows.count("pca")) {
        Task t;
        t.dataset = dataset;
        t.row = "pca";
        t.seed = seed;
        t.cache = runs / dataset / fmt::format("pca-s{}-{}.json", seed, eval_tag);
        t.dims = o.dims;
        t.eval_pixels = [&data, &log, &stopped, dataset, seed](const std::vector<int64_t>& d) {
          log(fmt::format("{}: evaluating pca", dataset));
          const auto eval_start = std::chrono::steady_clock::now();
          json fresh = evaluate_pixel_pca(data, d, seed, stopped);
          log(fmt::format("{}: evaluated pca at {} prefix size(s) in {:.1f} s", dataset, fresh.size(),
                          seconds_since(eval_start)));
          return fresh;
        };
        tasks.push_back(std::move(t));
      }
    }
  }
  if (!run_tasks(tasks)) return interrupted();

  for (const Task& t : tasks)
    for (const auto& [m, metrics] : t.result.items()) results[t.dataset][t.row][m][std::to_string(t.seed)] = metrics;
  for (size_t d = 0; d < o.datasets.size(); ++d) {
    const std::string& dataset = o.datasets[d];
    for (uint64_t seed : o.seeds) {
      const std::string seed_key = std::to_string(seed);
      const ModelJob& mrl = mrl_of[{dataset, seed}];
      if (rows.count("mrl-mmd") && rows.count("mmd-at-m")) {
        double separate_seconds = 0;
        for (const Task& t : tasks)
          if (t.dataset == dataset && t.seed == seed && t.row == "mmd-at-m") separate_seconds += seconds_of(t.job);
        wall[dataset][seed_key]["mrl_mmd_seconds"] = seconds_of(mrl);
        wall[dataset][seed_key]["separate_mmd_seconds"] = separate_seconds;
        wall[dataset][seed_key]["separate_dims"] = o.dims;
      }
      // Pictures of the first seed's Matryoshka model.
      if (rows.count("mrl-mmd") && seed == o.seeds.front()) {
        LoadedRun run = load_run(mrl.dir);
        write_mrl_figures(run.model, data_of[d], o.out, dataset, mrl.dir);
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
  doc["machine"]["jobs"] = jobs;
  doc["machine"]["threads_per_job"] = job_threads;
  // Other work on the machine slows every timing in the report; the report says so.
  doc["machine"]["load_average_start"] = load_at_start;
  doc["machine"]["load_average_end"] = load_average();
  doc["wall_seconds"] = seconds_since(start);
  doc["train_times"] = wall;
  doc["models"] = models;
  // A rerun reuses finished models and evaluations, maybe of other builds: say which builds made them.
  json models_by = json::object();
  for (const auto& [name, m] : models.items())
    for (const auto& c : m["trained_by"]) models_by[c.get<std::string>()] = models_by.value(c.get<std::string>(), 0) + 1;
  doc["provenance"] = {{"models_trained_by", models_by}, {"evaluations_by", evaluations_by}};
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
