// The training loop, top to bottom: load data, build the model, then for every epoch
// train_epoch(...) over shuffled batches, evaluate(...) on the test set, append a metrics line and
// save the resume state. Everything random comes from generators seeded by the config, and the
// resume state holds their state, so a resumed run ends exactly where an uninterrupted one would.
#include "matvae/train/trainer.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "matvae/data/batches.h"
#include "matvae/report/image_grid.h"
#include "matvae/train/archive.h"
#include "matvae/train/fused_adam.h"
#include "matvae/util/error.h"
#include "matvae/util/file_io.h"
#include "matvae/util/machine.h"
#include "matvae/util/sha256.h"

namespace matvae {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kStateFile = "state.pt";
constexpr const char* kCheckpointFile = "checkpoint.pt";
constexpr const char* kConfigFile = "config.toml";
constexpr const char* kMetricsFile = "metrics.jsonl";

at::Generator make_cpu_generator(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

/// Where a run stands; saved in state.pt.
struct Progress {
  int64_t epoch = 0;          // 0-based epoch in progress (== epochs when finished)
  int64_t step_in_epoch = 0;  // batches of that epoch already done
  int64_t global_step = 0;
  double train_seconds = 0;
  std::vector<double> sums;   // epoch accumulators: [loss, recon_1..K, div_1..K, images, images_1..K]
                              // (images_k: of the steps that drew prefix k; all of them without sampling)
  std::string metrics_sha256; // of the metrics.jsonl lines this state covers; empty in old states
};

/// The checksum state.pt keeps of the metrics.jsonl lines written so far: metrics.jsonl is read
/// back on resume, so damage to it must be found, not carried into the finished run.
std::string metrics_digest(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  return sha256_hex(text.data(), text.size());
}

/// Builds the model, drawing its initial weights from LibTorch's global generator, seeded with
/// `seed` if given. The lock keeps models built at the same time on other threads (the experiment's
/// parallel jobs) from drawing from that stream between the seeding and the last weight.
Vae build_model(const TrainConfig& c, int64_t pixels, std::optional<uint64_t> seed = std::nullopt) {
  static std::mutex global_generator;
  std::lock_guard<std::mutex> lock(global_generator);
  if (seed) torch::manual_seed(*seed);
  VaeOptions o(pixels, c.latent);
  o.hidden(c.hidden).nesting(c.nesting).decoder(parse_decoder_form(c.decoder));
  return Vae(o);
}

FusedAdam build_optimizer(Vae& model, const TrainConfig& c) {
  return FusedAdam(model->parameters(), torch::optim::AdamOptions(c.lr).weight_decay(c.weight_decay));
}

void save_state(const fs::path& path, Vae& model, torch::optim::Adam& optimizer, at::Generator& gen,
                const Progress& p, const TrainConfig& config, const std::vector<std::string>& metric_lines) {
  torch::serialize::OutputArchive archive, model_archive, optim_archive;
  model->save(model_archive);
  optimizer.save(optim_archive);
  archive.write("model", model_archive);
  archive.write("optimizer", optim_archive);
  archive.write("rng", gen.get_state());
  archive.write("progress", torch::tensor({p.epoch, p.step_in_epoch, p.global_step}, torch::kInt64));
  archive.write("train_seconds", torch::tensor({p.train_seconds}, torch::kFloat64));
  archive.write("sums", torch::tensor(p.sums, torch::kFloat64));
  archive.write("config_hash", c10::IValue(config_hash(config)));
  archive.write("metrics_sha256", c10::IValue(metrics_digest(metric_lines)));
  save_archive(archive, path);
}

void check_config_hash(torch::serialize::InputArchive& archive, const TrainConfig& config, const fs::path& path) {
  c10::IValue hash;
  if (!archive.try_read("config_hash", hash) || !hash.isString())
    throw Error(path.string() + ": checkpoint has no config hash");
  if (hash.toStringRef() != config_hash(config))
    throw Error(path.string() + ": checkpoint was made with a different config than " + kConfigFile +
                " (model, latent size or other settings differ)");
}

void load_model_weights(torch::serialize::InputArchive& archive, Vae& model, const fs::path& path) {
  torch::serialize::InputArchive model_archive;
  if (!archive.try_read("model", model_archive)) throw Error(path.string() + ": checkpoint holds no model");
  // InputArchive replaces a tensor whatever the shape of the stored one, so a checkpoint of another
  // architecture would load without complaint and fail later in a matrix product: compare shapes.
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
  for (const auto& t : model->named_parameters()) shapes.emplace_back(t.key(), t.value().sizes().vec());
  for (const auto& t : model->named_buffers()) shapes.emplace_back(t.key(), t.value().sizes().vec());
  try {
    model->load(model_archive);
  } catch (const c10::Error& e) {
    throw Error(path.string() + ": checkpoint does not fit this model: " + first_line(e.what_without_backtrace()));
  }
  auto loaded = model->named_parameters();
  for (const auto& t : model->named_buffers()) loaded.insert(t.key(), t.value());
  for (const auto& [name, shape] : shapes) {
    const auto* t = loaded.find(name);
    if (t && t->sizes().vec() == shape) continue;
    throw Error(fmt::format("{}: checkpoint does not fit this model: {} is {} in the file, [{}] in the model",
                            path.string(), name, t ? fmt::format("[{}]", fmt::join(t->sizes().vec(), ", ")) : "missing",
                            fmt::join(shape, ", ")));
  }
}

Progress load_state(const fs::path& path, Vae& model, torch::optim::Adam& optimizer, at::Generator& gen,
                    const TrainConfig& config) {
  torch::serialize::InputArchive archive;
  load_archive(archive, path);
  check_config_hash(archive, config, path);
  load_model_weights(archive, model, path);
  Progress p;
  try {
    torch::serialize::InputArchive optim_archive;
    archive.read("optimizer", optim_archive);
    optimizer.load(optim_archive);
    torch::Tensor rng, progress, seconds, sums;
    archive.read("rng", rng);
    archive.read("progress", progress);
    archive.read("train_seconds", seconds);
    archive.read("sums", sums);
    gen.set_state(rng);
    p.epoch = progress[0].item<int64_t>();
    p.step_in_epoch = progress[1].item<int64_t>();
    p.global_step = progress[2].item<int64_t>();
    p.train_seconds = seconds.item<double>();
    p.sums.assign(sums.data_ptr<double>(), sums.data_ptr<double>() + sums.numel());
    c10::IValue digest;
    if (archive.try_read("metrics_sha256", digest) && digest.isString()) p.metrics_sha256 = digest.toStringRef();
  } catch (const c10::Error& e) {
    throw Error(path.string() + ": damaged resume state: " + first_line(e.what_without_backtrace()));
  }
  return p;
}

/// Names the first non-finite term of a step, or returns an empty string.
std::string non_finite_term(const double* v, const std::vector<int64_t>& nesting, const char* div_name) {
  const size_t K = nesting.size();
  if (!std::isfinite(v[0])) return "total loss";
  for (size_t k = 0; k < K; ++k) {
    if (!std::isfinite(v[1 + k])) return fmt::format("recon[m={}]", nesting[k]);
    if (!std::isfinite(v[1 + K + k])) return fmt::format("{}[m={}]", div_name, nesting[k]);
  }
  return {};
}

nlohmann::ordered_json terms_json(double loss, const std::vector<double>& recon, const std::vector<double>& div,
                                  const std::vector<int64_t>& nesting, const char* div_name) {
  nlohmann::ordered_json j;
  j["loss"] = loss;
  nlohmann::ordered_json r, d;
  for (size_t k = 0; k < nesting.size(); ++k) {
    r[std::to_string(nesting[k])] = recon[k];
    d[std::to_string(nesting[k])] = div[k];
  }
  j["recon"] = r;
  j[div_name] = d;
  return j;
}

/// Reads metrics.jsonl, keeping only lines of epochs before `epochs_done` (a crash between writing
/// metrics and state can leave one line too many).
std::vector<std::string> read_metric_lines(const fs::path& path, int64_t epochs_done) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      throw Error(path.string() + ": damaged metrics line " + std::to_string(lines.size() + 1));
    }
    if (j.value("epoch", int64_t{0}) <= epochs_done) lines.push_back(line);
  }
  return lines;
}

void write_grids(Vae& model, const TrainConfig& config, const Dataset& test, const fs::path& dir) {
  torch::NoGradGuard no_grad;
  model->eval();
  constexpr int64_t kCols = 10;
  const auto& nesting = config.nesting;
  const int64_t K = static_cast<int64_t>(nesting.size());
  const int64_t n = std::min<int64_t>(kCols, test.size());
  // Reconstructions from the posterior mean: row 0 the originals, row k+1 decoded from z[:m_k].
  const auto x = test.images.narrow(0, 0, n);
  const auto mu = model->encode(x).first;
  const auto recon = torch::sigmoid(model->decode_prefixes(mu));  // [K, n, P]
  write_png_grid(dir / "recon.png", torch::cat({x.unsqueeze(0), recon}, 0).reshape({(K + 1) * n, -1}), K + 1, n,
                 test.height, test.width);
  // Prior samples: row k decodes the first m_k coordinates of the same draws.
  auto gen = make_cpu_generator(config.seed + 7);
  const auto z = at::randn({kCols, config.latent}, gen, torch::TensorOptions());
  const auto samples = torch::sigmoid(model->decode_prefixes(z));
  write_png_grid(dir / "samples.png", samples.reshape({K * kCols, -1}), K, kCols, test.height, test.width);
}

/// The data a run uses; throws UsageError if the batch is larger than the training set.
TrainTest load_run_data(const TrainConfig& config) {
  TrainTest data = load_dataset(config.data, config.classes);
  data.train = data.train.head(config.limit > 0 ? config.limit : -1);
  if (data.train.size() < config.batch_size)
    throw UsageError(fmt::format("batch_size = {}: larger than the {} training images", config.batch_size,
                                 data.train.size()));
  // An MMD needs two codes: evaluate() has nothing to average over a test set of one image, and the
  // unbiased estimator fails on a last training batch of one.
  if (data.test.size() < 2)
    throw Error(fmt::format("{}: holds {} test image(s); evaluation needs at least 2",
                            idx_path(config.data, Split::kTest, false).string(), data.test.size()));
  if (config.estimator == "unbiased" && data.train.size() % config.batch_size == 1)
    throw UsageError(fmt::format("batch_size = {}: leaves a last batch of one of the {} training images, which the "
                                 "unbiased estimator cannot use; choose another batch size or limit",
                                 config.batch_size, data.train.size()));
  return data;
}

/// The shared body of train() and resume().
TrainResult run(const TrainConfig& config, const TrainTest& data, const fs::path& dir, const TrainHooks& hooks,
                bool resuming) {
  set_threads(config.threads);
  const Dataset& train_data = data.train;
  const Dataset& test_data = data.test;

  Vae model = build_model(config, train_data.pixels(), config.seed);
  auto optimizer = build_optimizer(model, config);
  auto gen = make_cpu_generator(config.seed * 2654435761ULL + 1);
  const Objective objective(config);
  const auto& nesting = config.nesting;
  const size_t K = nesting.size();

  Progress p;
  if (resuming) {
    p = load_state(dir / kStateFile, model, optimizer, gen, config);
  }
  // A state from before prefix sampling counted no images per prefix: every step trained them all.
  if (p.sums.size() == 2 + 2 * K) p.sums.resize(2 + 3 * K, p.sums[1 + 2 * K]);
  if (p.sums.size() != 2 + 3 * K) p.sums.assign(2 + 3 * K, 0.0);
  std::vector<std::string> metric_lines = read_metric_lines(dir / kMetricsFile, p.epoch);
  if (resuming && !p.metrics_sha256.empty() && metrics_digest(metric_lines) != p.metrics_sha256)
    throw Error(fmt::format("{}: damaged or missing lines: the lines of its first {} epoch(s) differ from what {} "
                            "recorded (checksum mismatch)",
                            (dir / kMetricsFile).string(), p.epoch, kStateFile));

  TrainResult result;
  const int64_t steps_per_epoch = (train_data.size() + config.batch_size - 1) / config.batch_size;
  const auto session_start = Clock::now();
  const double seconds_before = p.train_seconds;
  const int64_t steps_before = p.global_step;
  auto log = [&](const std::string& s) {
    if (hooks.on_log) hooks.on_log(s);
  };

  for (; p.epoch < config.epochs; ++p.epoch) {
    // --- train_epoch ---
    model->train();
    BatchIterator batches(train_data, config.batch_size, epoch_order(train_data.size(), config.seed, p.epoch));
    batches.skip(p.step_in_epoch);
    const auto epoch_start = Clock::now();
    const int64_t first_step = p.step_in_epoch;
    Batch batch;
    while (batches.next(batch)) {
      optimizer.zero_grad();
      const std::vector<int64_t> which = Objective::draw_prefixes(K, config.prefix_sample, gen);
      const VaeOutput out = model->forward(batch.images, gen, which);
      const LossTerms terms =
          objective(out, batch.images, gen, Objective::warmup_scale(config, p.global_step, steps_per_epoch));
      const auto drawn = torch::cat({terms.total.detach().view({1}), terms.recon.detach(), terms.divergence.detach()})
                             .to(torch::kFloat64);
      // [loss, recon_1..K, div_1..K] with each drawn prefix in its place; the others stay 0, uncounted.
      std::vector<double> values(1 + 2 * K, 0.0);
      const double* d = drawn.data_ptr<double>();
      const size_t S = which.size();
      values[0] = d[0];
      for (size_t s = 0; s < S; ++s) {
        values[1 + which[s]] = d[1 + s];
        values[1 + K + which[s]] = d[1 + S + s];
      }
      const double* v = values.data();
      const std::string bad = non_finite_term(v, nesting, objective.divergence_name());
      if (!bad.empty())
        throw Error(fmt::format("step {} (epoch {}): loss term {} is {}; training stopped, the last good checkpoint "
                                "{} is kept (try a lower --lr or --lambda)",
                                p.global_step + 1, p.epoch + 1, bad, v[0] != v[0] ? "NaN" : "infinite",
                                (dir / kStateFile).string()));
      terms.total.backward();
      optimizer.step();

      const double b = static_cast<double>(batch.images.size(0));
      p.sums[0] += v[0] * b;
      for (const int64_t k : which) {
        p.sums[1 + k] += v[1 + k] * b;
        p.sums[1 + K + k] += v[1 + K + k] * b;
        p.sums[2 + 2 * K + k] += b;
      }
      p.sums[1 + 2 * K] += b;
      ++p.step_in_epoch;
      ++p.global_step;

      const double elapsed = std::chrono::duration<double>(Clock::now() - session_start).count();
      if (hooks.on_step) {
        StepProgress sp;
        sp.epoch = p.epoch + 1;
        sp.epochs = config.epochs;
        sp.step = p.step_in_epoch;
        sp.steps = steps_per_epoch;
        sp.loss = p.sums[0] / p.sums[1 + 2 * K];
        const double step_rate = (p.global_step - steps_before) / std::max(elapsed, 1e-9);
        sp.images_per_s = step_rate * config.batch_size;
        sp.eta_s = (config.epochs * steps_per_epoch - p.global_step) / std::max(step_rate, 1e-9);
        hooks.on_step(sp);
      }
      const bool stop = hooks.stop && hooks.stop->load();
      if ((config.checkpoint_every > 0 && p.global_step % config.checkpoint_every == 0) || stop) {
        p.train_seconds = seconds_before + elapsed;
        save_state(dir / kStateFile, model, optimizer, gen, p, config, metric_lines);
      }
      if (stop) {
        result.interrupted = true;
        result.epochs_done = p.epoch;
        result.train_seconds = p.train_seconds;
        return result;
      }
    }
    const double epoch_seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();

    // --- evaluate ---
    const EvalStats test = evaluate(model, objective, test_data, config.batch_size, config.seed + 1000003ULL * (p.epoch + 1));
    const double n = p.sums[1 + 2 * K];
    std::vector<double> rec(K), div(K);
    for (size_t k = 0; k < K; ++k) {
      const double n_k = p.sums[2 + 2 * K + k];  // 0 only if sampling never drew prefix k this epoch: null
      rec[k] = p.sums[1 + k] / n_k;
      div[k] = p.sums[1 + K + k] / n_k;
    }
    nlohmann::ordered_json line;
    line["epoch"] = p.epoch + 1;
    line["step"] = p.global_step;
    line["train"] = terms_json(p.sums[0] / n, rec, div, nesting, objective.divergence_name());
    line["test"] = terms_json(test.loss, test.recon, test.divergence, nesting, objective.divergence_name());
    line["seconds"] = epoch_seconds;
    line["images_per_s"] = (p.step_in_epoch - first_step) * static_cast<double>(config.batch_size) /
                           std::max(epoch_seconds, 1e-9);
    line["commit"] = git_commit();  // a run resumed by another build says which build trained which epochs
    metric_lines.push_back(line.dump());
    std::string text;
    for (const auto& l : metric_lines) text += l + "\n";
    write_file_atomic(dir / kMetricsFile, text);
    log(fmt::format("epoch {}/{}: train loss {:.3f}, test loss {:.3f}, {:.0f} images/s", p.epoch + 1, config.epochs,
                    p.sums[0] / n, test.loss, line["images_per_s"].get<double>()));
    result.last_metrics = line;

    p.step_in_epoch = 0;
    std::fill(p.sums.begin(), p.sums.end(), 0.0);
    p.train_seconds = seconds_before + std::chrono::duration<double>(Clock::now() - session_start).count();
    Progress next = p;
    next.epoch = p.epoch + 1;
    save_state(dir / kStateFile, model, optimizer, gen, next, config, metric_lines);
  }

  // Pictures, then the final weights: checkpoint.pt marks a finished run (the experiment skips
  // such runs), so it comes last and a kill before it leaves a run that resume completes.
  write_grids(model, config, test_data, dir);
  torch::serialize::OutputArchive archive, model_archive;
  model->save(model_archive);
  archive.write("model", model_archive);
  archive.write("config_hash", c10::IValue(config_hash(config)));
  save_archive(archive, dir / kCheckpointFile);

  if (result.last_metrics.is_null() && !metric_lines.empty())
    result.last_metrics = nlohmann::ordered_json::parse(metric_lines.back());
  result.epochs_done = config.epochs;
  result.train_seconds = p.train_seconds;
  return result;
}

}  // namespace

void set_threads(int64_t n) {
  const int64_t cores = std::max<int64_t>(1, std::thread::hardware_concurrency());
  const int64_t threads = n > 0 ? n : cores;
  torch::set_num_threads(static_cast<int>(threads));
  // The flush mode is per OS thread (MXCSR): set it here and once on each thread of this thread's
  // OpenMP team, which keeps its threads for the team's later parallel regions.
  at::globalContext().setFlushDenormal(true);
  at::parallel_for(0, threads, 1, [](int64_t, int64_t) { at::globalContext().setFlushDenormal(true); });
}

EvalStats evaluate(Vae& model, const Objective& objective, const Dataset& data, int64_t batch_size, uint64_t seed) {
  torch::NoGradGuard no_grad;
  model->eval();
  auto gen = make_cpu_generator(seed);
  const int64_t N = data.size();
  EvalStats s;
  std::vector<double> sums;
  double images = 0;
  for (int64_t start = 0; start < N; start += batch_size) {
    const int64_t b = std::min(batch_size, N - start);
    if (b < 2) break;  // an MMD needs two codes; drops at most one image
    const auto x = data.images.narrow(0, start, b);
    const VaeOutput out = model->forward(x, gen);
    const LossTerms t = objective(out, x, gen);
    const auto v = torch::cat({t.total.view({1}), t.recon, t.divergence}).to(torch::kFloat64);
    if (sums.empty()) sums.assign(v.numel(), 0.0);
    for (int64_t i = 0; i < v.numel(); ++i) sums[i] += v[i].item<double>() * b;
    images += b;
  }
  model->train();
  if (sums.empty())
    throw Error(fmt::format("{}: evaluation needs at least 2 images, the set has {}", data.source, N));
  const size_t K = (sums.size() - 1) / 2;
  s.loss = sums[0] / images;
  for (size_t k = 0; k < K; ++k) {
    s.recon.push_back(sums[1 + k] / images);
    s.divergence.push_back(sums[1 + K + k] / images);
  }
  return s;
}

TrainConfig read_run_config(const fs::path& run_dir) {
  const fs::path path = run_dir / kConfigFile;
  std::error_code ec;
  if (!fs::exists(run_dir, ec)) throw Error(run_dir.string() + ": run folder does not exist");
  if (!fs::is_directory(run_dir, ec)) throw Error(run_dir.string() + ": is a file, expected a run folder");
  if (!fs::exists(path, ec)) throw Error(path.string() + ": no such file (is " + run_dir.string() + " a run folder?)");
  TrainConfig c;
  try {
    apply_toml(c, path);
    resolve(c);
  } catch (const UsageError& e) {
    throw Error(std::string("damaged run config: ") + e.what());
  }
  return c;
}

TrainResult train(TrainConfig config, const fs::path& run_dir, const TrainHooks& hooks) {
  resolve(config);
  std::error_code ec;
  if (fs::exists(run_dir / kConfigFile, ec))
    throw UsageError(run_dir.string() + " already holds a run; continue it with --resume " + run_dir.string() +
                     " or choose another --out");
  if (fs::exists(run_dir, ec) && !fs::is_directory(run_dir, ec))
    throw UsageError("--out " + run_dir.string() + ": exists and is not a folder");
  const TrainTest data = load_run_data(config);  // fails on bad data before anything is created
  fs::create_directories(run_dir, ec);
  if (ec) throw Error(run_dir.string() + ": cannot create the run folder: " + ec.message());
  write_file_atomic(run_dir / kConfigFile, to_toml(config));
  return run(config, data, run_dir, hooks, /*resuming=*/false);
}

TrainResult resume(const fs::path& run_dir, const TrainHooks& hooks, std::optional<int64_t> threads) {
  TrainConfig config = read_run_config(run_dir);
  const fs::path state = run_dir / kStateFile;
  std::error_code ec;
  const bool has_state = fs::exists(state, ec);
  if (has_state) {
    // Check the state and that it belongs to config.toml before the data load, so that a damaged
    // run folder is reported as such (and quickly), not as some later failure.
    torch::serialize::InputArchive archive;
    load_archive(archive, state);
    check_config_hash(archive, config, state);
  } else if (fs::exists(run_dir / kCheckpointFile, ec)) {
    throw Error(state.string() + ": missing, but the run has a " + kCheckpointFile + "; the run folder is damaged");
  } else if (hooks.on_log) {
    // Stopped before its first checkpoint: nothing was trained yet, so start from the beginning.
    hooks.on_log(state.string() + ": no checkpoint yet; starting the run from the beginning");
  }
  if (threads) config.threads = *threads;
  const TrainTest data = load_run_data(config);
  remove_stale_temporaries(run_dir, [](const std::string& name) {
    for (const char* file : {kStateFile, kCheckpointFile, kConfigFile, kMetricsFile, "recon.png", "samples.png"})
      if (name == file) return true;
    return false;
  });
  return run(config, data, run_dir, hooks, /*resuming=*/has_state);
}

LoadedRun load_run(const fs::path& run_dir) {
  LoadedRun r;
  r.config = read_run_config(run_dir);
  const fs::path path = run_dir / kCheckpointFile;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(path.string() + ": no such file (the run has not finished)");
  const Dataset probe = load_split(r.config.data, Split::kTest, r.config.classes);
  r.model = build_model(r.config, probe.pixels());
  torch::serialize::InputArchive archive;
  load_archive(archive, path);
  check_config_hash(archive, r.config, path);
  load_model_weights(archive, r.model, path);
  r.model->eval();
  return r;
}

}  // namespace matvae
