// The MRL-MMD-VAE variants and the validation rule that chooses among them; see attempts.h.
#include "matvae/experiment/attempts.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "matvae/experiment/plan.h"
#include "matvae/util/error.h"

namespace matvae {
namespace {

/// c_k or lambda_k from a function of m / D, one per nesting size.
std::vector<double> per_prefix(const TrainConfig& c, const std::function<double(double)>& f) {
  std::vector<double> v;
  for (int64_t m : c.nesting) v.push_back(f(static_cast<double>(m) / static_cast<double>(c.latent)));
  return v;
}

// The levers; the variants below are these alone or combined.
void separate_decoder(TrainConfig& c) { c.decoder = DecoderForm::kSeparate; }
void weights_log(TrainConfig& c) {
  c.weights = per_prefix(c, [](double r) { return std::log2(1.0 / r) + 1.0; });
}
void weights_sqrt(TrainConfig& c) {
  c.weights = per_prefix(c, [](double r) { return std::sqrt(1.0 / r); });
}
/// Two of the K prefixes per step (c_m scaled by K/2): about a third of the decoder's cost for K = 6.
void sample_two(TrainConfig& c) { c.prefix_sample = 2; }
void warmup_quarter(TrainConfig& c) { c.warmup = std::max(0.5, static_cast<double>(c.epochs) / 4.0); }
/// lambda_m = f(lambda, m / D).
void lambdas_by(TrainConfig& c, double (*f)(double, double)) {
  const double l = c.lambda;
  c.lambdas = per_prefix(c, [l, f](double r) { return f(l, r); });
}
double times_sqrt(double l, double r) { return l * std::sqrt(r); }
double times(double l, double r) { return l * r; }
double over_sqrt(double l, double r) { return l / std::sqrt(r); }

}  // namespace

const std::vector<MrlVariant>& mrl_variants() {
  static const std::vector<MrlVariant> kVariants = {
      {"naive", "the plain Matryoshka loss: c_m = 1, tied decoder, lambda for every prefix",
       [](TrainConfig&) {}},
      {"separate", "a separate first decoder layer per prefix (MRL rather than MRL-E)", separate_decoder},
      {"c-log", "weights c_m = log2(D/m) + 1, favouring the small prefixes (6, 5, ..., 1 for D = 64)",
       weights_log},
      {"c-sqrt", "weights c_m = sqrt(D/m), favouring the small prefixes more steeply", weights_sqrt},
      {"warmup", "the MMD weight ramps up from 0 over the first quarter of training (at least half an epoch)",
       warmup_quarter},
      {"lambda-light-small", "lambda_m = lambda * sqrt(m/D): a looser prior match at small prefixes",
       [](TrainConfig& c) { lambdas_by(c, times_sqrt); }},
      {"lambda-linear", "lambda_m = lambda * m/D: the prior match loosened in proportion at small prefixes",
       [](TrainConfig& c) { lambdas_by(c, times); }},
      {"lambda-light-small+warmup", "lambda_m = lambda * sqrt(m/D) and the warm-up above",
       [](TrainConfig& c) {
         lambdas_by(c, times_sqrt);
         warmup_quarter(c);
       }},
      {"lambda-heavy-small", "lambda_m = lambda * sqrt(D/m): a tighter prior match at small prefixes",
       [](TrainConfig& c) { lambdas_by(c, over_sqrt); }},
      {"separate+c-sqrt", "separate first decoder layers and weights c_m = sqrt(D/m)",
       [](TrainConfig& c) {
         separate_decoder(c);
         weights_sqrt(c);
       }},
      {"separate+c-log", "separate first decoder layers and weights c_m = log2(D/m) + 1",
       [](TrainConfig& c) {
         separate_decoder(c);
         weights_log(c);
       }},
      // Not to close the gap but to price the speed-up: what sampling the prefixes costs in accuracy.
      {"sample-2", "naive, but each step trains 2 random prefixes of the K (c_m scaled by K/2)", sample_two},
      {"separate+c-log+sample-2", "separate+c-log, each step training 2 random prefixes of the K",
       [](TrainConfig& c) {
         separate_decoder(c);
         weights_log(c);
         sample_two(c);
       }},
  };
  return kVariants;
}

void apply_mrl_variant(const std::string& name, TrainConfig& config) {
  const auto& vs = mrl_variants();
  const auto it = std::find_if(vs.begin(), vs.end(), [&](const MrlVariant& v) { return v.name == name; });
  if (it == vs.end()) {
    std::vector<std::string> names;
    for (const auto& v : vs) names.push_back(v.name);
    throw UsageError(fmt::format("unknown MRL variant '{}' (expected one of {})", name, fmt::join(names, ", ")));
  }
  resolve(config);
  it->apply(config);
  resolve(config);
}

VariantScore score_variant(const AccuracyByM& reference, const AccuracyByM& variant) {
  if (reference.empty()) throw Error("score_variant: no reference accuracies");
  VariantScore s;
  s.worst_gap = -1e300;
  for (const auto& [m, ref] : reference) {
    const auto it = variant.find(m);
    if (it == variant.end()) throw Error(fmt::format("score_variant: the variant has no accuracy at m = {}", m));
    const double gap = ref - it->second;
    s.worst_gap = std::max(s.worst_gap, gap);
    s.mean_gap += gap / static_cast<double>(reference.size());
    s.mean_accuracy += it->second / static_cast<double>(reference.size());
  }
  return s;
}

std::string choose_variant(const std::map<std::string, VariantScore>& scores) {
  if (scores.empty()) throw Error("choose_variant: no variants");
  double best_worst = 1e300;
  for (const auto& [name, s] : scores) best_worst = std::min(best_worst, s.worst_gap);
  std::string chosen;
  double chosen_mean = -1e300;
  for (const auto& v : mrl_variants()) {  // the variants' own order breaks exact ties
    const auto it = scores.find(v.name);
    if (it == scores.end() || it->second.worst_gap > best_worst + 1e-3) continue;
    if (it->second.mean_accuracy > chosen_mean) {
      chosen = v.name;
      chosen_mean = it->second.mean_accuracy;
    }
  }
  if (chosen.empty()) throw Error("choose_variant: scores name no known variant");
  return chosen;
}

AttemptsVerdict judge_attempts(const std::vector<Task>& trials, const std::vector<int64_t>& dims, uint64_t seed,
                               const ValidationSplit& v, int64_t train_rows) {
  AttemptsVerdict out;
  nlohmann::ordered_json& record = out.record;
  record["seed"] = seed;
  record["validation_rows"] = {v.fit_rows, train_rows};
  record["train_limit"] = v.train_limit;
  AccuracyByM reference;
  for (size_t i = 0; i < dims.size(); ++i) {
    const std::string m = std::to_string(dims[i]);
    record["reference"][m] = trials[i].result[m];
    record["reference_runs"][m] = trials[i].job.dir.filename().string();
    reference[dims[i]] = trials[i].result[m]["probe"].get<double>();
  }
  std::map<std::string, VariantScore> scores;
  for (size_t i = 0; i < mrl_variants().size(); ++i) {
    const auto& mv = mrl_variants()[i];
    const Task& t = trials[dims.size() + i];
    AccuracyByM acc;
    for (int64_t m : dims) acc[m] = t.result[std::to_string(m)]["probe"].get<double>();
    const VariantScore sc = score_variant(reference, acc);
    scores[mv.name] = sc;
    nlohmann::ordered_json& e = record["variants"][mv.name];
    e["description"] = mv.description;
    e["run"] = t.job.dir.filename().string();
    e["config_hash"] = config_hash(t.job.config);
    e["metrics"] = t.result;
    e["worst_gap"] = sc.worst_gap;
    e["mean_gap"] = sc.mean_gap;
    e["mean_probe"] = sc.mean_accuracy;
  }
  out.chosen = choose_variant(scores);
  record["chosen"] = out.chosen;
  return out;
}

}  // namespace matvae
