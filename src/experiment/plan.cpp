// Planning the experiment's models and evaluations; see plan.h.
#include "matvae/experiment/plan.h"

#include <fmt/format.h>

#include "matvae/models/vae.h"
#include "matvae/train/run_folder.h"
#include "matvae/util/sha256.h"

namespace matvae {
namespace fs = std::filesystem;
namespace {

// Bump when evaluation code changes what it measures, so cached evaluations are redone.
constexpr int kEvalVersion = 4;  // 2: 1-NN of standardised codes and by cosine; 3: retrieval at 10;
                                  // 4: cosine 1-NN in float64 at m <= 3
// The subsets the profiles take are seeded: the same rows on every run, whatever the files' order.
constexpr uint64_t kSubsetSeed = 12345;

/// The task that evaluates `job`'s model for `row` at `dims` on `data`, cached in `cache`.
Task model_task(const std::string& row, uint64_t seed, const ModelJob& job, EvalKind kind, const TrainTest& data,
                const fs::path& cache, const std::vector<int64_t>& dims) {
  Task t;
  t.dataset = job.dataset;
  t.row = row;
  t.seed = seed;
  t.job = job;
  t.kind = kind;
  t.data = &data;
  t.cache = cache;
  t.dims = dims;
  return t;
}

/// Builds the jobs of one data set's families: every model of a candidate, from one base config.
struct JobMaker {
  const PlanContext& ctx;
  TrainConfig base;  // seed, epochs, training rows
  const Choice* choice;  // the mmd candidate a warm start grows out of (the default one if null)

  /// The job of `fam`'s candidate `name` for a model of size `latent`. A warm-start candidate grows
  /// out of the full-size MMD-VAE of the same base, trained first.
  ModelJob job(const Family& fam, const std::string& name, int64_t latent) const {
    TrainConfig c = base;
    c.model = fam.model;
    c.latent = latent;
    c.nesting.clear();
    apply_candidate(fam, name, c);
    std::shared_ptr<const ModelJob> from;
    if (candidate(fam, name).warm_start) {
      const Family& mmd = family("mmd");
      from = std::make_shared<const ModelJob>(
          job(mmd, choice ? choice->of(mmd, ctx.profile.latent) : mmd.candidates.front().name, ctx.profile.latent));
      c.init_from = from->dir.string();
      c.epochs = std::max<int64_t>(1, base.epochs / 2);
    }
    ModelJob j = make_job(ctx.dataset, c, ctx.runs);
    j.source = from;
    return j;
  }
};

/// How a family's models are measured: prefixes of their own, or truncated (the ordered-code rivals).
EvalKind eval_kind(const Family& fam) {
  return fam.name == "nested-dropout" || fam.name == "taildrop" ? EvalKind::kTruncated : EvalKind::kPrefixes;
}

}  // namespace

EvalSettings eval_settings(const ExperimentProfile& profile) {
  EvalSettings s;
  s.json["version"] = kEvalVersion;
  s.json["train_limit"] = profile.eval_train_limit;
  s.json["test_limit"] = profile.eval_test_limit;
  const std::string dump = s.json.dump();
  s.tag = sha256_hex(dump.data(), dump.size()).substr(0, 8);
  return s;
}

TrainConfig base_config(const PlanContext& ctx, uint64_t seed) {
  const ExperimentProfile& p = ctx.profile;
  TrainConfig c;
  c.data = ctx.data_dir.string();
  c.classes = ctx.classes;
  if (ctx.features) c.likelihood = Likelihood::kNormal;
  c.latent = p.latent;
  c.hidden = p.hidden;
  c.epochs = p.epochs;
  c.lr_schedule = p.lr_schedule;
  c.limit = p.train_limit;
  c.seed = seed;
  c.threads = ctx.job_threads;
  c.checkpoint_every = 200;  // an interrupted experiment loses at most a few seconds of a model
  return c;
}

ModelJob make_job(const std::string& dataset, TrainConfig c, const fs::path& runs) {
  resolve(c);
  const std::string name =
      fmt::format("{}-d{}-s{}-{}", to_string(c.model), c.latent, c.seed, config_hash(c).substr(0, 10));
  return {dataset, c, runs / dataset / name, nullptr, false};
}

TrainTest evaluation_data(const TrainTest& full, const ExperimentProfile& p) {
  return {random_subset(full.train, p.eval_train_limit, kSubsetSeed), random_subset(full.test, p.eval_test_limit, kSubsetSeed)};
}

ValidationSplit validation_split(const Dataset& train, const ExperimentProfile& p) {
  const int64_t n = train.size(), n_val = std::max<int64_t>(n / 10, 2);
  ValidationSplit v;
  v.fit_rows = n - n_val;
  v.train_limit = p.train_limit > 0 ? std::min(p.train_limit, v.fit_rows) : v.fit_rows;
  v.data.train = random_subset(train.head(v.fit_rows), p.eval_train_limit, kSubsetSeed);
  v.data.test = random_subset(train.tail(n_val), p.eval_test_limit, kSubsetSeed);
  return v;
}

int64_t compute_matched_epochs(const TrainConfig& mrl, int64_t pixels) {
  int64_t separate = 0;
  for (const int64_t m : mrl.nesting) separate += forward_macs_per_image(VaeOptions(pixels, m).hidden(mrl.hidden));
  const int64_t one = forward_macs_per_image(VaeOptions(pixels, mrl.latent).hidden(mrl.hidden).nesting(mrl.nesting));
  return (mrl.epochs * separate + one - 1) / one;
}

std::vector<Task> plan_tuning(const PlanContext& ctx, uint64_t seed, const ValidationSplit& v) {
  JobMaker maker{ctx, base_config(ctx, seed), nullptr};
  maker.base.limit = v.train_limit;
  if (ctx.profile.tune_epochs > 0) maker.base.epochs = std::min(ctx.profile.tune_epochs, ctx.profile.epochs);
  std::set<std::string> wanted;
  for (const auto& row : ctx.rows)
    if (!family_of_row(row).empty()) wanted.insert(family_of_row(row));
  std::vector<Task> tasks;
  for (const Family& fam : families()) {
    if (!wanted.count(fam.name)) continue;
    const auto& pool = fam.name == "mrl-mmd" && ctx.all_variants ? mrl_variants() : fam.candidates;
    for (const Candidate& c : pool) {
      for (const int64_t m : fam.per_m ? ctx.dims : std::vector<int64_t>{ctx.profile.latent}) {
        const ModelJob job = maker.job(fam, c.name, m);
        const std::vector<int64_t> dims = fam.per_m ? std::vector<int64_t>{m} : ctx.dims;
        Task t = model_task(fam.name, seed, job, eval_kind(fam), v.data,
                            RunFolder(job.dir).validation_cache(ctx.eval_tag), dims);
        t.family = fam.name;
        t.candidate = c.name;
        tasks.push_back(std::move(t));
      }
    }
  }
  return tasks;
}

ModelJob plan_seed(const PlanContext& ctx, uint64_t seed, const Choice& choice, const TrainTest& data,
                   std::vector<Task>& tasks) {
  const JobMaker maker{ctx, base_config(ctx, seed), &choice};
  const int64_t D = ctx.profile.latent;
  const auto add = [&](const std::string& row, const std::string& fam_name, int64_t latent, EvalKind kind,
                       const std::vector<int64_t>& dims) {
    const Family& fam = family(fam_name);
    const ModelJob job = maker.job(fam, choice.of(fam, latent), latent);
    if (ctx.rows.count(row))
      tasks.push_back(model_task(row, seed, job, kind, data, RunFolder(job.dir).eval_cache(row, ctx.eval_tag), dims));
    return job;
  };
  const ModelJob mrl = add("mrl-mmd", "mrl-mmd", D, EvalKind::kPrefixes, ctx.dims);
  if (ctx.rows.count("mrl-mmd"))  // its adaptive uses: funnel retrieval and the classification cascade
    tasks.push_back(model_task("adaptive", seed, mrl, EvalKind::kAdaptive, data,
                               RunFolder(mrl.dir).eval_cache("adaptive", ctx.eval_tag), {D}));
  if (ctx.rows.count("mrl-mmd-matched")) {
    // The same model trained on to the compute of the separate MMD-VAEs: a longer run of its settings,
    // extended from its resume state; or, where its learning rate is annealed over the epochs (which
    // an extended run would not equal), trained from the start with the longer schedule.
    TrainConfig c = mrl.config;
    c.epochs = compute_matched_epochs(mrl.config, ctx.pixels);
    ModelJob job = make_job(ctx.dataset, c, ctx.runs);
    if (c.lr_schedule == LrSchedule::kConstant) {
      job.source = std::make_shared<const ModelJob>(mrl);
      job.extends_source = true;
    }
    tasks.push_back(model_task("mrl-mmd-matched", seed, job, EvalKind::kPrefixes, data,
                               RunFolder(job.dir).eval_cache("mrl-mmd-matched", ctx.eval_tag), ctx.dims));
  }
  add("mrl-vae", "mrl-vae", D, EvalKind::kPrefixes, ctx.dims);
  for (const std::string fam : {"mmd", "vae"})
    for (int64_t m : ctx.dims) add(fam + "-at-m", fam, m, EvalKind::kPrefixes, {m});
  add("mmd-trunc", "mmd", D, EvalKind::kTruncated, ctx.dims);
  add("mmd-svd", "mmd", D, EvalKind::kCodePca, ctx.dims);
  add("nested-dropout", "nested-dropout", D, EvalKind::kTruncated, ctx.dims);
  add("taildrop", "taildrop", D, EvalKind::kTruncated, ctx.dims);
  if (ctx.rows.count("pca")) {
    Task t;
    t.dataset = ctx.dataset;
    t.row = "pca";
    t.seed = seed;
    t.kind = EvalKind::kPixelPca;
    t.data = &data;
    t.cache = ctx.runs / ctx.dataset / fmt::format("pca-s{}-{}.json", seed, ctx.eval_tag);
    t.dims = ctx.dims;
    tasks.push_back(std::move(t));
  }
  return mrl;
}

}  // namespace matvae
