// Planning the experiment's models and evaluations; see plan.h.
#include "matvae/experiment/plan.h"

#include <fmt/format.h>

#include "matvae/experiment/attempts.h"
#include "matvae/train/run_folder.h"
#include "matvae/util/sha256.h"

namespace matvae {
namespace fs = std::filesystem;
namespace {

// Bump when evaluation code changes what it measures, so cached evaluations are redone.
constexpr int kEvalVersion = 1;
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
  const std::string name =
      fmt::format("{}-d{}-s{}-{}", to_string(c.model), c.latent, c.seed, config_hash(c).substr(0, 10));
  return {dataset, c, runs / dataset / name};
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

std::vector<Task> plan_attempts(const PlanContext& ctx, uint64_t seed, const ValidationSplit& v) {
  TrainConfig base = base_config(ctx.profile, ctx.data_dir, seed, ctx.job_threads);
  base.limit = v.train_limit;
  std::vector<Task> trials;
  const auto add = [&](const std::string& row, const TrainConfig& c, const std::vector<int64_t>& dims) {
    const ModelJob job = make_job(ctx.dataset, c, ctx.runs);
    const fs::path cache = RunFolder(job.dir).validation_cache(ctx.eval_tag);
    trials.push_back(model_task(row, seed, job, EvalKind::kPrefixes, v.data, cache, dims));
  };
  for (int64_t m : ctx.dims) {
    TrainConfig c = base;
    c.model = ModelKind::kMmd;
    c.latent = m;
    add("reference", c, {m});
  }
  for (const auto& mv : mrl_variants()) {
    TrainConfig c = base;
    c.model = ModelKind::kMrlMmd;
    apply_mrl_variant(mv.name, c);
    add(mv.name, c, ctx.dims);
  }
  return trials;
}

ModelJob plan_seed(const PlanContext& ctx, uint64_t seed, const std::string& variant, const TrainTest& data,
                   std::vector<Task>& tasks) {
  const TrainConfig base = base_config(ctx.profile, ctx.data_dir, seed, ctx.job_threads);
  const auto job_for = [&](ModelKind model, int64_t latent) {
    TrainConfig c = base;
    c.model = model;
    c.latent = latent;
    if (model == ModelKind::kMrlMmd) apply_mrl_variant(variant, c);
    return make_job(ctx.dataset, c, ctx.runs);
  };
  const auto add = [&](const std::string& row, const ModelJob& job, EvalKind kind, const std::vector<int64_t>& dims) {
    if (ctx.rows.count(row))
      tasks.push_back(model_task(row, seed, job, kind, data, RunFolder(job.dir).eval_cache(row, ctx.eval_tag), dims));
  };
  const ModelJob mrl = job_for(ModelKind::kMrlMmd, ctx.profile.latent);
  add("mrl-mmd", mrl, EvalKind::kPrefixes, ctx.dims);
  add("mrl-vae", job_for(ModelKind::kMrlVae, ctx.profile.latent), EvalKind::kPrefixes, ctx.dims);
  for (const ModelKind kind : {ModelKind::kMmd, ModelKind::kVae})
    for (int64_t m : ctx.dims) add(to_string(kind) + "-at-m", job_for(kind, m), EvalKind::kPrefixes, {m});
  const ModelJob full_mmd = job_for(ModelKind::kMmd, ctx.profile.latent);
  add("mmd-trunc", full_mmd, EvalKind::kTruncated, ctx.dims);
  add("mmd-svd", full_mmd, EvalKind::kCodePca, ctx.dims);
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
