// The training loop, top to bottom: load the data, build the model (or load its resume state),
// then for every epoch train_epoch(...) over shuffled batches, evaluate(...) on the test set, append
// a metrics line and save the resume state; at the end the pictures and the final weights.
// Everything random comes from generators seeded by the config, and the resume state holds their
// state, so a resumed run ends exactly where an uninterrupted one would.
#include "matvae/train/trainer.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>

#include "matvae/data/batches.h"
#include "matvae/dist/thread_team.h"
#include "matvae/io/image_grid.h"
#include "matvae/train/build_model.h"
#include "matvae/train/code_dropout.h"
#include "matvae/train/fresh_gradients.h"
#include "matvae/train/fused_adam.h"
#include "matvae/train/lr_schedule.h"
#include "matvae/train/run_folder.h"
#include "matvae/train/warm_start.h"
#include "matvae/util/error.h"
#include "matvae/util/file_io.h"
#include "matvae/util/machine.h"
#include "matvae/util/threads.h"

namespace matvae {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;
// The running means of balance = running-mean: each step moves them 1 % toward the step's brackets,
// an average over about the last hundred steps.
constexpr double kBalanceMomentum = 0.99;

at::Generator make_cpu_generator(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

// ================================================================================================
// One training session: the state a run carries from step to step, and the clock of this session.
// ================================================================================================

struct Session {
  Session(const TrainConfig& c, const RunFolder& f, int64_t pixels)
      : config(c),
        folder(f),
        model(build_model(c, pixels, c.seed)),
        optimizer(model->parameters(), torch::optim::AdamOptions(c.lr).weight_decay(c.weight_decay)),
        gen(make_cpu_generator(c.seed * 2654435761ULL + 1)),
        objective(c) {
    progress.sums = PrefixSums(c.nesting.size());
    if (c.balance == Balance::kRunningMean) progress.balance.assign(c.nesting.size(), std::nan(""));
  }

  /// Saves the resume state at `p` (the current progress, or the next epoch's start); rank 0 only.
  void save(const RunProgress& p) {
    if (writes()) folder.save_state(model, optimizer, gen, p, config, metric_lines);
  }
  /// Whether this process writes the run folder and evaluates: one process, or rank 0 of several.
  bool writes() const { return !ranks || ranks->is_root(); }
  double elapsed() const { return std::chrono::duration<double>(Clock::now() - start).count(); }
  double train_seconds() const { return seconds_before + elapsed(); }

  const TrainConfig& config;
  const RunFolder& folder;
  Vae model;
  FusedAdam optimizer;
  at::Generator gen;
  const Objective objective;
  Collectives* ranks = nullptr;  // data-parallel training; null for one process
  Session* root = nullptr;       // a thread team's rank 0, whose weights and optimizer every rank shares
  const std::vector<Session*>* team = nullptr;             // a thread team's sessions, by rank
  std::vector<std::vector<torch::Tensor>> team_parameters;  // their parameters, by rank
  bool stop_requested = false;  // this rank's stop request at its last step, read by the team
  int64_t threads = 1;           // the run's threads, of every rank of a thread team together
  RunProgress progress;
  std::vector<std::string> metric_lines;  // metrics.jsonl as written so far
  Clock::time_point start = Clock::now();
  double seconds_before = 0;  // training time of earlier sessions
  int64_t steps_before = 0;   // their steps
};

/// One step's terms, [loss, recon_1..K, div_1..K] with each drawn prefix in its place (the others 0).
struct StepTerms {
  double loss = 0;
  std::vector<double> recon, divergence;
};

StepTerms step_terms(const LossTerms& terms, const std::vector<int64_t>& which, size_t K) {
  const auto drawn = torch::cat({terms.total.detach().view({1}), terms.recon.detach(), terms.divergence.detach()})
                         .to(torch::kFloat64);
  const double* d = drawn.data_ptr<double>();
  const size_t S = which.size();
  StepTerms t{d[0], std::vector<double>(K, 0.0), std::vector<double>(K, 0.0)};
  for (size_t s = 0; s < S; ++s) {
    t.recon[which[s]] = d[1 + s];
    t.divergence[which[s]] = d[1 + S + s];
  }
  return t;
}

/// Names the first non-finite term of a step, or returns an empty string.
std::string non_finite_term(const StepTerms& t, const std::vector<int64_t>& nesting, const char* div_name) {
  if (!std::isfinite(t.loss)) return "total loss";
  for (size_t k = 0; k < nesting.size(); ++k) {
    if (!std::isfinite(t.recon[k])) return fmt::format("recon[m={}]", nesting[k]);
    if (!std::isfinite(t.divergence[k])) return fmt::format("{}[m={}]", div_name, nesting[k]);
  }
  return {};
}

/// Moves the running means of the drawn prefixes' brackets toward this step's (the first value seen
/// of a prefix starts its mean).
void update_balance(std::vector<double>& balance, const torch::Tensor& brackets, const std::vector<int64_t>& which) {
  const auto v = brackets.to(torch::kFloat64).contiguous();
  for (size_t s = 0; s < which.size(); ++s) {
    double& b = balance[static_cast<size_t>(which[s])];
    const double x = v.data_ptr<double>()[s];
    b = std::isnan(b) ? x : kBalanceMomentum * b + (1 - kBalanceMomentum) * x;
  }
}

void add_step(PrefixSums& sums, const StepTerms& t, const std::vector<int64_t>& which, double images) {
  sums.loss += t.loss * images;
  for (const int64_t k : which) {
    sums.recon[k] += t.recon[k] * images;
    sums.divergence[k] += t.divergence[k] * images;
    sums.prefix_images[k] += images;
  }
  sums.images += images;
}

/// The epoch's means; a prefix that sampling never drew this epoch is NaN (null in metrics.jsonl).
PrefixStats means_of(const PrefixSums& sums) {
  PrefixStats s;
  s.loss = sums.loss / sums.images;
  for (size_t k = 0; k < sums.prefixes(); ++k) {
    s.recon.push_back(sums.recon[k] / sums.prefix_images[k]);
    s.divergence.push_back(sums.divergence[k] / sums.prefix_images[k]);
  }
  return s;
}

// ================================================================================================
// Data-parallel training: the same state on every rank, and the gradients summed over them
// ================================================================================================

/// Every rank starts from rank 0's weights, optimiser, generator and progress (fresh, warm-started
/// or resumed), so that all ranks hold the same model: rank 0 broadcasts them as state.pt's bytes.
void share_state(Session& s) {
  const std::string bytes = s.ranks->broadcast_bytes(
      s.writes() ? RunFolder::state_bytes(s.model, s.optimizer, s.gen, s.progress, s.config) : std::string());
  if (!s.writes()) s.progress = RunFolder::load_state_bytes(bytes, s.model, s.optimizer, s.gen, s.config);
}

/// The ranks of a thread team share rank 0's weights (their parameters alias its memory) and its
/// optimizer, so that one Adam step, split over them, moves every rank's model at once: after
/// share_state, every rank publishes its session in `team` (one place per rank), and the others point
/// their parameters at rank 0's.
void share_root_weights(Session& s, std::vector<Session*>& team) {
  team[static_cast<size_t>(s.ranks->rank())] = &s;
  s.ranks->barrier();  // every session is published before anyone reads one
  s.team = &team;
  s.root = team.front();
  if (!s.writes()) {
    const auto mine = s.model->parameters(), roots = s.root->model->parameters();
    TORCH_INTERNAL_ASSERT(mine.size() == roots.size(), "a thread team's models differ");
    for (size_t i = 0; i < mine.size(); ++i) {
      torch::Tensor w = mine[i];  // shares the parameter: set_data gives it rank 0's memory
      w.set_data(roots[i]);
    }
  }
  // Each rank's parameters in the optimizer's order (it was built on model->parameters()), for the
  // step that sums their gradients.
  for (Session* rank : team) s.team_parameters.push_back(rank->model->parameters());
}

/// Sums every parameter's gradient over the ranks in one all-reduce, with this rank's stop request
/// appended, so that every rank stops after the same step. Each rank's gradient is its share of the
/// batch's (the objective scales by rows / total), so the sum is the one-process gradient. Returns
/// whether any rank asked to stop.
bool sum_gradients(Session& s, bool stop) {
  if (!s.ranks) return stop;
  // The same parameters have a gradient on every rank: each draws the same prefixes and mask.
  std::vector<torch::Tensor> parts;
  for (const auto& w : s.model->parameters())
    if (w.grad().defined()) parts.push_back(w.grad());
  parts.push_back(torch::full({1}, stop ? 1.0f : 0.0f));
  s.ranks->all_reduce_sum(parts);
  return parts.back().item<float>() > 0;
}

/// A thread team's step: rank 0 plans it (FusedAdam::plan_step), then each rank sums its share of
/// every gradient's elements over the ranks and moves those weights in the same pass
/// (update_part_of_sum), between two barriers: every gradient complete before, every weight moved
/// after. Returns whether any rank asked to stop.
bool team_step(Session& s, bool stop) {
  s.stop_requested = stop;
  if (s.writes())
    TORCH_INTERNAL_ASSERT(s.optimizer.plan_step(), "a thread team's parameters are float32 CPU tensors");
  s.ranks->barrier();
  bool any_stop = false;
  for (size_t r = 0; r < s.team_parameters.size(); ++r) any_stop = any_stop || (*s.team)[r]->stop_requested;
  s.root->optimizer.update_part_of_sum(s.ranks->rank(), s.ranks->world(), s.team_parameters);
  s.ranks->barrier();
  return any_stop;
}

/// The step after backward: the gradients summed over the ranks and the optimizer's step, the
/// thread team's fused (team_step) or an all-reduce then this rank's own. Returns whether any rank
/// asked to stop.
bool optimizer_step(Session& s, bool stop) {
  if (s.root) return team_step(s, stop);
  stop = sum_gradients(s, stop);
  s.optimizer.step();
  return stop;
}

// ================================================================================================
// train_epoch: the batches of one epoch, from where the progress stands
// ================================================================================================

struct EpochOutcome {
  bool interrupted = false;
  double seconds = 0;
  double collective_seconds = 0;  // of them, in the ranks' collectives
  int64_t steps = 0;              // taken in this session
};

EpochOutcome train_epoch(Session& s, const Dataset& data, const TrainHooks& hooks) {
  const TrainConfig& config = s.config;
  RunProgress& p = s.progress;
  const size_t K = config.nesting.size();
  const int64_t steps_per_epoch = (data.size() + config.batch_size - 1) / config.batch_size;
  s.model->train();
  BatchIterator batches(data, config.batch_size, epoch_order(data.size(), config.seed, p.epoch));
  batches.skip(p.step_in_epoch);
  const auto epoch_start = Clock::now();
  const double collective_start = s.ranks ? s.ranks->collective_seconds() : 0.0;
  EpochOutcome out;
  Batch batch;
  while (batches.next(batch)) {
    const std::vector<bool> had_gradient = drop_gradients(s.model->parameters());
    const std::vector<int64_t> which = Objective::draw_prefixes(K, config.prefix_sample, s.gen);
    // Every rank draws the whole batch's random numbers and keeps its own rows of them.
    const BatchShard shard = BatchShard::of(s.ranks, batch.images.size(0));
    const auto x = shard.slice(batch.images);
    auto mask = draw_code_mask(config.code_dropout, config.dropout_rate, shard.total, config.latent, s.gen);
    if (mask.defined()) mask = shard.slice(mask);
    const VaeOutput forward = s.model->forward(x, s.gen, which, mask,
                                               s.ranks ? BatchRows{shard.offset, shard.total} : BatchRows{});
    const LossTerms terms = s.objective(forward, x, s.gen, Objective::warmup_scale(config, p.global_step, steps_per_epoch),
                                        p.balance, s.ranks ? &shard : nullptr);
    const StepTerms t = step_terms(terms, which, K);
    const std::string bad = non_finite_term(t, config.nesting, s.objective.divergence_name());
    if (!bad.empty())
      throw Error(fmt::format("step {} (epoch {}): loss term {} is {}; training stopped, the last good checkpoint "
                              "{} is kept (try a lower --lr or --lambda)",
                              p.global_step + 1, p.epoch + 1, bad, t.loss != t.loss ? "NaN" : "infinite",
                              s.folder.state_file().string()));
    terms.total.backward();
    restore_zero_gradients(s.model->parameters(), had_gradient);
    s.optimizer.set_lr(scheduled_lr(config.lr, config.lr_schedule, p.global_step, config.epochs * steps_per_epoch));
    const bool stop = optimizer_step(s, hooks.stop && hooks.stop->load());
    if (!p.balance.empty()) update_balance(p.balance, terms.terms, which);
    add_step(p.sums, t, which, static_cast<double>(batch.images.size(0)));
    ++p.step_in_epoch;
    ++p.global_step;
    ++out.steps;

    if (hooks.on_step) {
      const double step_rate = (p.global_step - s.steps_before) / std::max(s.elapsed(), 1e-9);
      StepProgress sp;
      sp.epoch = p.epoch + 1;
      sp.epochs = config.epochs;
      sp.step = p.step_in_epoch;
      sp.steps = steps_per_epoch;
      sp.loss = p.sums.loss / p.sums.images;
      sp.images_per_s = step_rate * config.batch_size;
      sp.eta_s = (config.epochs * steps_per_epoch - p.global_step) / std::max(step_rate, 1e-9);
      sp.threads = s.threads;
      sp.split_operations = torch::get_num_threads() > 1;  // this rank's own LibTorch threads
      hooks.on_step(sp);
    }
    if ((config.checkpoint_every > 0 && p.global_step % config.checkpoint_every == 0) || stop) {
      p.train_seconds = s.train_seconds();
      s.save(p);
    }
    if (stop) {
      out.interrupted = true;
      return out;
    }
  }
  out.seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
  if (s.ranks) out.collective_seconds = s.ranks->collective_seconds() - collective_start;
  return out;
}

// ================================================================================================
// The epoch's record and the run's pictures
// ================================================================================================

nlohmann::ordered_json terms_json(const PrefixStats& s, const std::vector<int64_t>& nesting, const char* div_name) {
  nlohmann::ordered_json j;
  j["loss"] = s.loss;
  nlohmann::ordered_json r, d;
  for (size_t k = 0; k < nesting.size(); ++k) {
    r[std::to_string(nesting[k])] = s.recon[k];
    d[std::to_string(nesting[k])] = s.divergence[k];
  }
  j["recon"] = r;
  j[div_name] = d;
  return j;
}

nlohmann::ordered_json metrics_line(const Session& s, const PrefixStats& train, const PrefixStats& test,
                                    const EpochOutcome& epoch) {
  const char* div = s.objective.divergence_name();
  nlohmann::ordered_json line;
  line["epoch"] = s.progress.epoch + 1;
  line["step"] = s.progress.global_step;
  line["train"] = terms_json(train, s.config.nesting, div);
  line["test"] = terms_json(test, s.config.nesting, div);
  line["seconds"] = epoch.seconds;
  line["images_per_s"] = epoch.steps * static_cast<double>(s.config.batch_size) / std::max(epoch.seconds, 1e-9);
  if (s.ranks) {  // data-parallel: how many ranks trained the epoch, and rank 0's time in their collectives
    line["ranks"] = s.ranks->world();
    line["collective_seconds"] = epoch.collective_seconds;
  }
  line["commit"] = git_commit();  // a run resumed by another build says which build trained which epochs
  return line;
}

void write_grids(Vae& model, const TrainConfig& config, const Dataset& test, const RunFolder& folder) {
  torch::NoGradGuard no_grad;
  model->eval();
  constexpr int64_t kCols = 10;
  const int64_t K = static_cast<int64_t>(config.nesting.size());
  const int64_t n = std::min<int64_t>(kCols, test.size());
  // Reconstructions from the posterior mean: row 0 the originals, row k+1 decoded from z[:m_k].
  const auto x = test.images.narrow(0, 0, n);
  const auto mu = model->encode(x).first;
  const auto recon = torch::sigmoid(model->decode_prefixes(mu));  // [K, n, P]
  write_png_grid(folder.recon_png(), torch::cat({x.unsqueeze(0), recon}, 0).reshape({(K + 1) * n, -1}), K + 1, n,
                 test.height, test.width);
  // Prior samples: row k decodes the first m_k coordinates of the same draws.
  auto gen = make_cpu_generator(config.seed + 7);
  const auto z = at::randn({kCols, config.latent}, gen, torch::TensorOptions());
  const auto samples = torch::sigmoid(model->decode_prefixes(z));
  write_png_grid(folder.samples_png(), samples.reshape({K * kCols, -1}), K, kCols, test.height, test.width);
}

/// The data a run on `world` ranks uses; throws UsageError if the batch is larger than the training
/// set, or if a batch would leave a rank without an image.
TrainTest load_run_data(const TrainConfig& config, int64_t world) {
  TrainTest data = load_dataset(config.data, config.classes);
  data.train = data.train.head(config.limit > 0 ? config.limit : -1);
  if (data.train.size() < config.batch_size)
    throw UsageError(fmt::format("batch_size = {}: larger than the {} training images", config.batch_size,
                                 data.train.size()));
  const int64_t last = data.train.size() % config.batch_size;
  if (world > 1 && (config.batch_size < world || (last != 0 && last < world)))
    throw UsageError(fmt::format("batch_size = {}: {} ranks need at least one image each of every batch, and the last "
                                 "batch of the {} training images has {}; choose another batch size or limit",
                                 config.batch_size, world, data.train.size(), last == 0 ? config.batch_size : last));
  // An MMD needs two codes: evaluate() has nothing to average over a test set of one image, and the
  // unbiased estimator fails on a last training batch of one.
  if (data.test.size() < 2)
    throw Error(fmt::format("{}: holds {} test image(s); evaluation needs at least 2",
                            idx_path(config.data, Split::kTest, false).string(), data.test.size()));
  if (data.train.features && config.likelihood != Likelihood::kNormal)
    throw UsageError(fmt::format("likelihood = {}: {} holds feature rows, not intensities in [0, 1]; use --likelihood "
                                 "normal",
                                 to_string(config.likelihood), config.data));
  if (config.estimator == MmdEstimator::kUnbiased && data.train.size() % config.batch_size == 1)
    throw UsageError(fmt::format("batch_size = {}: leaves a last batch of one of the {} training images, which the "
                                 "unbiased estimator cannot use; choose another batch size or limit",
                                 config.batch_size, data.train.size()));
  return data;
}

/// Runs `work` where the run folder is written (one process, or rank 0 of several, every rank
/// learning its outcome), so that a check of the folder stops every rank alike.
void on_writer(Collectives* ranks, const std::function<void()>& work) {
  if (ranks)
    ranks->from_root(work);
  else
    work();
}

// ================================================================================================
// run: the loop itself, shared by train() and resume(); on each rank of a thread team
// ================================================================================================

/// One rank's run (or the one process's), on `threads` threads of its own out of the run's
/// `run_threads`. `team`: for the ranks of a thread team, where each publishes its session.
TrainResult run_rank(const TrainConfig& config, const TrainTest& data, const RunFolder& folder,
                     const TrainHooks& hooks, bool resuming, Vae warm_from, int64_t threads, int64_t run_threads,
                     std::vector<Session*>* team = nullptr) {
  set_threads(threads);
  Session s(config, folder, data.train.pixels());
  s.ranks = hooks.ranks;
  s.threads = run_threads;
  if (warm_from) warm_start(s.model, warm_from);
  if (resuming && s.writes()) {
    ResumePoint r = folder.load_state(s.model, s.optimizer, s.gen, config);
    s.progress = std::move(r.progress);
    s.metric_lines = std::move(r.metric_lines);
  }
  if (s.ranks) share_state(s);
  if (team) share_root_weights(s, *team);
  s.seconds_before = s.progress.train_seconds;
  s.steps_before = s.progress.global_step;
  RunProgress& p = s.progress;

  TrainResult result;
  for (; p.epoch < config.epochs; ++p.epoch) {
    const EpochOutcome epoch = train_epoch(s, data.train, hooks);
    if (epoch.interrupted) {
      result.interrupted = true;
      result.epochs_done = p.epoch;
      result.train_seconds = p.train_seconds;
      return result;
    }
    if (s.writes()) {  // the other ranks go on to the next epoch and wait for rank 0 there
      const PrefixStats train = means_of(p.sums);
      // On a thread team the other ranks wait meanwhile: rank 0 evaluates on all the run's threads.
      if (s.root) set_threads(s.threads);
      const PrefixStats test =
          evaluate(s.model, s.objective, data.test, config.batch_size, config.seed + 1000003ULL * (p.epoch + 1));
      if (s.root) set_threads(1);
      const auto line = metrics_line(s, train, test, epoch);
      s.metric_lines.push_back(line.dump());
      folder.write_metric_lines(s.metric_lines);
      if (hooks.on_log)
        hooks.on_log(fmt::format("epoch {}/{}: train loss {:.3f}, test loss {:.3f}, {:.0f} images/s", p.epoch + 1,
                                 config.epochs, train.loss, test.loss, line["images_per_s"].get<double>()));
      result.last_metrics = line;
    }

    p.step_in_epoch = 0;
    p.sums = PrefixSums(config.nesting.size());
    p.train_seconds = s.train_seconds();
    RunProgress next = p;
    next.epoch = p.epoch + 1;
    s.save(next);
  }

  // Pictures, then the final weights: checkpoint.pt marks a finished run (the experiment skips
  // such runs), so it comes last and a kill before it leaves a run that resume completes.
  // Every rank returns once rank 0 has finished the run (or fails with it).
  on_writer(s.ranks, [&] {
    if (!data.test.features) write_grids(s.model, config, data.test, folder);
    folder.save_checkpoint(s.model, config);
  });

  if (result.last_metrics.is_null() && !s.metric_lines.empty())
    result.last_metrics = nlohmann::ordered_json::parse(s.metric_lines.back());
  result.epochs_done = config.epochs;
  result.train_seconds = p.train_seconds;
  return result;
}

/// How many ranks of a thread team train this run: its threads with parallel = batch, as long as
/// every batch, the last one included, gives each at least one image; 1 (LibTorch's threads
/// splitting each operation) otherwise, and within a job of process ranks, which split the batch
/// already.
int64_t team_size(const TrainConfig& config, const TrainTest& data, const TrainHooks& hooks, int64_t threads) {
  if (hooks.ranks || config.parallel != Parallel::kBatch || threads < 2) return 1;
  const int64_t last = data.train.size() % config.batch_size;
  const int64_t fewest = std::min(config.batch_size, last == 0 ? config.batch_size : last);
  return fewest >= threads ? threads : 1;
}

TrainResult run(const TrainConfig& config, const TrainTest& data, const RunFolder& folder, const TrainHooks& hooks,
                bool resuming, Vae warm_from = nullptr) {
  const int64_t threads = thread_count(config.threads);
  const int64_t world = team_size(config, data, hooks, threads);
  if (world == 1) return run_rank(config, data, folder, hooks, resuming, warm_from, threads, threads);
  // Rank 0 (this thread) reports progress, watches the stop request and writes the run folder.
  TrainResult result;
  std::vector<Session*> sessions(static_cast<size_t>(world), nullptr);
  ThreadTeam team(world);
  team.run([&](Collectives& ranks) {
    TrainHooks mine;
    if (ranks.is_root()) mine = hooks;
    mine.ranks = &ranks;
    TrainResult r = run_rank(config, data, folder, mine, resuming, warm_from, 1, threads, &sessions);
    if (ranks.is_root()) result = std::move(r);
  });
  return result;
}

}  // namespace

PrefixStats evaluate(Vae& model, const Objective& objective, const Dataset& data, int64_t batch_size, uint64_t seed) {
  torch::NoGradGuard no_grad;
  model->eval();
  auto gen = make_cpu_generator(seed);
  const int64_t N = data.size();
  std::vector<double> sums;  // [loss, recon_1..K, div_1..K] times images
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
  PrefixStats s;
  s.loss = sums[0] / images;
  for (size_t k = 0; k < K; ++k) {
    s.recon.push_back(sums[1 + k] / images);
    s.divergence.push_back(sums[1 + K + k] / images);
  }
  return s;
}


TrainResult train(TrainConfig config, const fs::path& run_dir, const TrainHooks& hooks) {
  resolve(config);
  const RunFolder folder(run_dir);
  on_writer(hooks.ranks, [&] {
    if (folder.has_config())
      throw UsageError(run_dir.string() + " already holds a run; continue it with --resume " + run_dir.string() +
                       " or choose another --out");
    std::error_code ec;
    if (fs::exists(run_dir, ec) && !fs::is_directory(run_dir, ec))
      throw UsageError("--out " + run_dir.string() + ": exists and is not a folder");
  });
  // Every rank reads the data (each machine needs it at the same path); bad data fails before
  // anything is created.
  const TrainTest data = load_run_data(config, hooks.ranks ? hooks.ranks->world() : 1);
  config.classes = data.train.num_classes;  // counted from the labels unless given: recorded
  Vae warm_from{nullptr};
  on_writer(hooks.ranks, [&] {  // the other ranks receive the warm start with rank 0's state
    if (!config.init_from.empty()) {
      const RunFolder source(config.init_from);
      if (!source.is_finished())
        throw UsageError(fmt::format("init_from = {}: not a finished run (no {})", config.init_from,
                                     source.checkpoint_file().filename().string()));
      warm_from = source.load().model;
    }
    folder.create(config);
  });
  return run(config, data, folder, hooks, /*resuming=*/false, warm_from);
}

namespace {

/// The same run, trained `epochs` epochs. Throws UsageError for a bad count.
TrainConfig with_epochs(TrainConfig config, int64_t epochs) {
  config.epochs = epochs;
  resolve(config);
  return config;
}

/// Makes the run in `folder` one of `epochs` epochs: its resume state and config.toml are rewritten
/// for the longer run, and a finished run is no longer finished. Exact: a run extended from E to N
/// epochs ends where one started with N would (nothing but the learning-rate schedule depends on
/// the total, and a run with one that is not constant is refused). Returns the longer config.
TrainConfig extend(const RunFolder& folder, const TrainConfig& config, int64_t epochs, const TrainTest& data) {
  if (epochs < config.epochs)
    throw UsageError(fmt::format("--epochs {}: the run in {} trains {} epochs; --resume --epochs only extends a run",
                                 epochs, folder.dir().string(), config.epochs));
  if (epochs != config.epochs && config.lr_schedule != LrSchedule::kConstant)
    throw UsageError(fmt::format("--epochs {}: the run in {} anneals its learning rate over {} epochs (lr_schedule = "
                                 "{}); a run extended to more would not equal one trained {} from the start. "
                                 "Start a new run with --epochs {}",
                                 epochs, folder.dir().string(), config.epochs, to_string(config.lr_schedule), epochs,
                                 epochs));
  const TrainConfig longer = with_epochs(config, epochs);
  // A finished run first stops being one, then its state moves to the longer config, then
  // config.toml: a kill in between leaves a run that a rerun of the same command completes.
  std::error_code ec;
  fs::remove(folder.checkpoint_file(), ec);
  if (folder.has_state() && folder.state_config_hash() != config_hash(longer)) {
    Session s(config, folder, data.train.pixels());
    ResumePoint r = folder.load_state(s.model, s.optimizer, s.gen, config);
    folder.save_state(s.model, s.optimizer, s.gen, r.progress, longer, r.metric_lines);
  }
  write_file_atomic(folder.config_file(), to_toml(longer));
  return longer;
}

/// What resuming starts from: the run's settings and whether it has a resume state. Rank 0 reads
/// them from the run folder and passes them on, as the other ranks may not see the folder.
struct ResumeStart {
  TrainConfig config;
  bool has_state = false;
};

ResumeStart share_resume_start(Collectives* ranks, const ResumeStart& mine) {
  if (!ranks) return mine;
  const auto j = nlohmann::json::parse(ranks->share_from_root(
      ranks->is_root() ? nlohmann::json{{"config", to_toml(mine.config)}, {"has_state", mine.has_state}}.dump() : ""));
  if (ranks->is_root()) return mine;
  ResumeStart theirs;
  apply_toml_text(theirs.config, j.at("config").get<std::string>(), "rank 0's config.toml");
  resolve(theirs.config);
  theirs.has_state = j.at("has_state").get<bool>();
  return theirs;
}

}  // namespace

TrainResult resume(const fs::path& run_dir, const TrainHooks& hooks, std::optional<int64_t> threads,
                   std::optional<int64_t> epochs) {
  const RunFolder folder(run_dir);
  ResumeStart start;
  TrainConfig& config = start.config;
  on_writer(hooks.ranks, [&] {
    config = folder.read_config();
    start.has_state = folder.has_state();
    const bool extending = epochs && *epochs != config.epochs;
    // An extension that a kill interrupted has moved the state to the longer config already.
    const bool extension_begun =
        extending && start.has_state && folder.state_config_hash() == config_hash(with_epochs(config, *epochs));
    if (start.has_state && !extension_begun) {
      // Check the state and that it belongs to config.toml before the data load, so that a damaged
      // run folder is reported as such (and quickly), not as some later failure.
      folder.check_state(config);
    } else if (!start.has_state && folder.is_finished()) {
      throw Error(folder.state_file().string() + ": missing, but the run has a " +
                  folder.checkpoint_file().filename().string() + "; the run folder is damaged");
    } else if (!start.has_state && hooks.on_log) {
      // Stopped before its first checkpoint: nothing was trained yet, so start from the beginning.
      hooks.on_log(folder.state_file().string() + ": no checkpoint yet; starting the run from the beginning");
    }
    if (threads) config.threads = *threads;
  });
  start = share_resume_start(hooks.ranks, start);
  if (threads) config.threads = *threads;
  const TrainTest data = load_run_data(config, hooks.ranks ? hooks.ranks->world() : 1);
  const bool extending = epochs && *epochs != config.epochs;
  on_writer(hooks.ranks, [&] {
    folder.remove_stale_temporaries();
    if (extending) extend(folder, config, *epochs, data);
  });
  if (extending) config = with_epochs(config, *epochs);  // what extend() made of the run
  return run(config, data, folder, hooks, /*resuming=*/start.has_state);
}

}  // namespace matvae
