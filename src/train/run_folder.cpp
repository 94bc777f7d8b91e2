// Reading and writing a run folder's files; see run_folder.h for what each holds.
#include "matvae/train/run_folder.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "matvae/data/dataset.h"
#include "matvae/train/archive.h"
#include "matvae/train/build_model.h"
#include "matvae/util/error.h"
#include "matvae/util/file_io.h"
#include "matvae/util/sha256.h"

namespace matvae {
namespace fs = std::filesystem;
namespace {

/// The checksum state.pt keeps of the metrics.jsonl lines written so far: metrics.jsonl is read
/// back on resume, so damage to it must be found, not carried into the finished run.
std::string metrics_digest(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  return sha256_hex(text.data(), text.size());
}

// state.pt stores PrefixSums as one float64 tensor: [loss, recon_1..K, div_1..K, images, images_1..K].
// States written before prefix sampling lack the images_k (every step trained every prefix).
torch::Tensor sums_to_tensor(const PrefixSums& s) {
  std::vector<double> v = {s.loss};
  v.insert(v.end(), s.recon.begin(), s.recon.end());
  v.insert(v.end(), s.divergence.begin(), s.divergence.end());
  v.push_back(s.images);
  v.insert(v.end(), s.prefix_images.begin(), s.prefix_images.end());
  return torch::tensor(v, torch::kFloat64);
}

PrefixSums sums_from_tensor(const torch::Tensor& t, size_t K) {
  const double* v = t.data_ptr<double>();
  const size_t n = static_cast<size_t>(t.numel());
  PrefixSums s(K);
  if (n != 2 + 3 * K && n != 2 + 2 * K) return s;  // not of this config: the epoch's sums start again
  s.loss = v[0];
  for (size_t k = 0; k < K; ++k) {
    s.recon[k] = v[1 + k];
    s.divergence[k] = v[1 + K + k];
    s.prefix_images[k] = n == 2 + 3 * K ? v[2 + 2 * K + k] : v[1 + 2 * K];
  }
  s.images = v[1 + 2 * K];
  return s;
}

void check_config_hash(torch::serialize::InputArchive& archive, const TrainConfig& config, const fs::path& path,
                       const fs::path& config_file) {
  c10::IValue hash;
  if (!archive.try_read("config_hash", hash) || !hash.isString())
    throw Error(path.string() + ": checkpoint has no config hash");
  if (hash.toStringRef() != config_hash(config))
    throw Error(path.string() + ": checkpoint was made with a different config than " + config_file.filename().string() +
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

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

bool RunFolder::has_config() const {
  std::error_code ec;
  return fs::exists(config_file(), ec);
}
bool RunFolder::has_state() const {
  std::error_code ec;
  return fs::exists(state_file(), ec);
}
bool RunFolder::is_finished() const {
  std::error_code ec;
  return fs::exists(checkpoint_file(), ec);
}

// --- settings --------------------------------------------------------------------------------------

void RunFolder::create(const TrainConfig& config) const {
  std::error_code ec;
  if (fs::exists(dir_, ec) && !fs::is_directory(dir_, ec))
    throw UsageError("--out " + dir_.string() + ": exists and is not a folder");
  fs::create_directories(dir_, ec);
  if (ec) throw Error(dir_.string() + ": cannot create the run folder: " + ec.message());
  write_file_atomic(config_file(), to_toml(config));
}

TrainConfig RunFolder::read_config() const {
  std::error_code ec;
  if (!fs::exists(dir_, ec)) throw Error(dir_.string() + ": run folder does not exist");
  if (!fs::is_directory(dir_, ec)) throw Error(dir_.string() + ": is a file, expected a run folder");
  if (!has_config()) throw Error(config_file().string() + ": no such file (is " + dir_.string() + " a run folder?)");
  TrainConfig c;
  try {
    apply_toml(c, config_file());
    resolve(c);
  } catch (const UsageError& e) {
    throw Error(std::string("damaged run config: ") + e.what());
  }
  return c;
}

// --- metrics ---------------------------------------------------------------------------------------

std::vector<std::string> RunFolder::read_metric_lines(int64_t epochs_done) const {
  std::vector<std::string> lines;
  std::ifstream in(metrics_file());
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      throw Error(metrics_file().string() + ": damaged metrics line " + std::to_string(lines.size() + 1));
    }
    if (j.value("epoch", int64_t{0}) <= epochs_done) lines.push_back(line);
  }
  return lines;
}

void RunFolder::write_metric_lines(const std::vector<std::string>& lines) const {
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  write_file_atomic(metrics_file(), text);
}

TrainingRecord RunFolder::training_record() const {
  std::ifstream in(metrics_file());
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

// --- resume state and final weights ----------------------------------------------------------------

namespace {

/// The resume state's archive: weights, Adam, RNG, progress, and what it belongs to.
void write_state(torch::serialize::OutputArchive& archive, Vae& model, torch::optim::Optimizer& optimizer,
                 const at::Generator& gen, const RunProgress& p, const TrainConfig& config,
                 const std::vector<std::string>& metric_lines) {
  torch::serialize::OutputArchive model_archive, optim_archive;
  model->save(model_archive);
  optimizer.save(optim_archive);
  archive.write("model", model_archive);
  archive.write("optimizer", optim_archive);
  archive.write("rng", gen.get_state());
  archive.write("progress", torch::tensor({p.epoch, p.step_in_epoch, p.global_step}, torch::kInt64));
  archive.write("train_seconds", torch::tensor({p.train_seconds}, torch::kFloat64));
  archive.write("sums", sums_to_tensor(p.sums));
  if (!p.balance.empty()) archive.write("balance", torch::tensor(p.balance, torch::kFloat64));
  archive.write("config_hash", c10::IValue(config_hash(config)));
  archive.write("metrics_sha256", c10::IValue(metrics_digest(metric_lines)));
}

/// Loads a resume state's archive (from `source`, for messages) into the model, optimizer and
/// generator; returns the progress and the metrics checksum it recorded (empty if none).
std::pair<RunProgress, std::string> read_state(torch::serialize::InputArchive& archive, Vae& model,
                                               torch::optim::Optimizer& optimizer, at::Generator& gen,
                                               const TrainConfig& config, const fs::path& source,
                                               const fs::path& config_file) {
  check_config_hash(archive, config, source, config_file);
  load_model_weights(archive, model, source);
  RunProgress p;
  std::string digest;
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
    p.sums = sums_from_tensor(sums.contiguous(), config.nesting.size());
    c10::IValue stored;
    if (archive.try_read("metrics_sha256", stored) && stored.isString()) digest = stored.toStringRef();
    torch::Tensor balance;
    if (archive.try_read("balance", balance)) {
      const auto b = balance.to(torch::kFloat64).contiguous();
      p.balance.assign(b.data_ptr<double>(), b.data_ptr<double>() + b.numel());
    }
  } catch (const c10::Error& e) {
    throw Error(source.string() + ": damaged resume state: " + first_line(e.what_without_backtrace()));
  }
  return {std::move(p), digest};
}

}  // namespace

void RunFolder::save_state(Vae& model, torch::optim::Optimizer& optimizer, const at::Generator& gen,
                           const RunProgress& p, const TrainConfig& config,
                           const std::vector<std::string>& metric_lines) const {
  torch::serialize::OutputArchive archive;
  write_state(archive, model, optimizer, gen, p, config, metric_lines);
  save_archive(archive, state_file());
}

std::string RunFolder::state_bytes(Vae& model, torch::optim::Optimizer& optimizer, const at::Generator& gen,
                                   const RunProgress& p, const TrainConfig& config) {
  torch::serialize::OutputArchive archive;
  write_state(archive, model, optimizer, gen, p, config, {});
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

RunProgress RunFolder::load_state_bytes(const std::string& bytes, Vae& model, torch::optim::Optimizer& optimizer,
                                        at::Generator& gen, const TrainConfig& config) {
  torch::serialize::InputArchive archive;
  try {
    std::istringstream in(bytes);
    archive.load_from(in);
  } catch (const c10::Error& e) {
    throw Error(std::string("the resume state rank 0 sent: cannot read it: ") + first_line(e.what_without_backtrace()));
  }
  return read_state(archive, model, optimizer, gen, config, "the resume state rank 0 sent", "config.toml").first;
}

ResumePoint RunFolder::load_state(Vae& model, torch::optim::Optimizer& optimizer, at::Generator& gen,
                                  const TrainConfig& config) const {
  const fs::path path = state_file();
  torch::serialize::InputArchive archive;
  load_archive(archive, path);
  ResumePoint r;
  std::string digest;
  std::tie(r.progress, digest) = read_state(archive, model, optimizer, gen, config, path, config_file());
  const RunProgress& p = r.progress;
  r.metric_lines = read_metric_lines(p.epoch);
  if (!digest.empty() && metrics_digest(r.metric_lines) != digest)  // states of old builds have none
    throw Error(fmt::format("{}: damaged or missing lines: the lines of its first {} epoch(s) differ from what {} "
                            "recorded (checksum mismatch)",
                            metrics_file().string(), p.epoch, path.filename().string()));
  return r;
}

void RunFolder::check_state(const TrainConfig& config) const {
  torch::serialize::InputArchive archive;
  load_archive(archive, state_file());
  check_config_hash(archive, config, state_file(), config_file());
}

std::string RunFolder::state_config_hash() const {
  torch::serialize::InputArchive archive;
  load_archive(archive, state_file());
  c10::IValue hash;
  if (!archive.try_read("config_hash", hash) || !hash.isString())
    throw Error(state_file().string() + ": checkpoint has no config hash");
  return hash.toStringRef();
}

void RunFolder::save_checkpoint(Vae& model, const TrainConfig& config) const {
  torch::serialize::OutputArchive archive, model_archive;
  model->save(model_archive);
  archive.write("model", model_archive);
  archive.write("config_hash", c10::IValue(config_hash(config)));
  save_archive(archive, checkpoint_file());
}

LoadedRun RunFolder::load(const fs::path& data) const {
  LoadedRun r;
  r.config = read_config();
  if (!is_finished()) throw Error(checkpoint_file().string() + ": no such file (the run has not finished)");
  const Dataset probe = load_split(data.empty() ? fs::path(r.config.data) : data, Split::kTest, r.config.classes);
  r.model = build_model(r.config, probe.pixels());
  torch::serialize::InputArchive archive;
  load_archive(archive, checkpoint_file());
  check_config_hash(archive, r.config, checkpoint_file(), config_file());
  load_model_weights(archive, r.model, checkpoint_file());
  r.model->eval();
  return r;
}

void RunFolder::copy_resumable(const fs::path& dest) const {
  const RunFolder to(dest);
  std::error_code ec;
  fs::create_directories(dest, ec);
  if (ec) throw Error(dest.string() + ": cannot create the run folder: " + ec.message());
  for (const auto& [from, into] : {std::pair{state_file(), to.state_file()}, std::pair{metrics_file(), to.metrics_file()},
                                   std::pair{config_file(), to.config_file()}}) {
    const auto bytes = read_file(from);
    write_file_atomic(into, bytes.data(), bytes.size());
  }
}

void RunFolder::remove_stale_temporaries() const {
  const RunFolder& self = *this;
  matvae::remove_stale_temporaries(dir_, [&self](const std::string& name) {
    for (const fs::path& file : {self.state_file(), self.checkpoint_file(), self.config_file(), self.metrics_file(),
                                 self.recon_png(), self.samples_png(), self.eval_file(), self.adaptive_file()})
      if (name == file.filename().string()) return true;
    return is_cache_name(name);
  });
}

bool RunFolder::is_cache_name(const std::string& name) {
  return ends_with(name, ".json") && (name.rfind("eval-", 0) == 0 || name.rfind("val-", 0) == 0);
}

}  // namespace matvae
