// The tuned families, their candidates and the rule that chooses among them; see tuning.h.
#include "matvae/experiment/tuning.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

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

// --- the levers; the variants below are these alone or combined ---
void separate_decoder(TrainConfig& c) { c.decoder = DecoderForm::kSeparate; }
void weights_log(TrainConfig& c) {
  c.weights = per_prefix(c, [](double r) { return std::log2(1.0 / r) + 1.0; });
}
void weights_sqrt(TrainConfig& c) {
  c.weights = per_prefix(c, [](double r) { return std::sqrt(1.0 / r); });
}
/// The full prefix weighted as much as all the others together.
void weights_full_heavy(TrainConfig& c) {
  c.weights.assign(c.nesting.size(), 1.0);
  c.weights.back() = static_cast<double>(std::max<size_t>(1, c.nesting.size() - 1));
}
/// Two of the K prefixes per step (c_m scaled by K/2): about a third of the decoder's cost for K = 6.
void sample_two(TrainConfig& c) { c.prefix_sample = 2; }
void warmup_quarter(TrainConfig& c) { c.warmup = std::max(0.5, static_cast<double>(c.epochs) / 4.0); }
void balance_running_mean(TrainConfig& c) { c.balance = Balance::kRunningMean; }
void distill(TrainConfig& c) { c.distill = 10.0; }
/// lambda_m = f(lambda, m / D).
void lambdas_by(TrainConfig& c, double (*f)(double, double)) {
  const double l = c.lambda;
  c.lambdas = per_prefix(c, [l, f](double r) { return f(l, r); });
}
double times_sqrt(double l, double r) { return l * std::sqrt(r); }
double times(double l, double r) { return l * r; }
double over_sqrt(double l, double r) { return l / std::sqrt(r); }
void nothing(TrainConfig&) {}
std::function<void(TrainConfig&)> code_dropout(CodeDropout kind, double rate) {
  return [kind, rate](TrainConfig& c) {
    c.code_dropout = kind;
    c.dropout_rate = rate;
  };
}

/// "a and b": the two levers one after the other.
std::function<void(TrainConfig&)> both(void (*a)(TrainConfig&), void (*b)(TrainConfig&)) {
  return [a, b](TrainConfig& c) {
    a(c);
    b(c);
  };
}

}  // namespace

const std::vector<Candidate>& mrl_variants() {
  static const std::vector<Candidate> kVariants = {
      {"naive", "the plain Matryoshka loss: c_m = 1, tied decoder, lambda for every prefix", nothing},
      {"separate", "a separate first decoder layer per prefix (MRL rather than MRL-E)", separate_decoder},
      {"separate-2", "the first two decoder layers of each prefix its own; the last layer shared",
       [](TrainConfig& c) { c.decoder = DecoderForm::kSeparateTwo; }},
      {"independent", "a whole decoder per prefix, one shared encoder",
       [](TrainConfig& c) { c.decoder = DecoderForm::kIndependent; }},
      {"c-log", "weights c_m = log2(D/m) + 1, favouring the small prefixes (6, 5, ..., 1 for D = 64)", weights_log},
      {"c-sqrt", "weights c_m = sqrt(D/m), favouring the small prefixes more steeply", weights_sqrt},
      {"full-heavy", "c_D = K - 1, the others 1: the full prefix weighs as much as all the others together",
       weights_full_heavy},
      {"balance", "each prefix's terms divided by a running mean of their own value (every prefix near c_m)",
       balance_running_mean},
      {"balance+full-heavy", "balance and the full prefix weighted as all the others together",
       both(balance_running_mean, weights_full_heavy)},
      {"separate-2+balance+full-heavy", "the first two decoder layers per prefix, balance and the full prefix heavy",
       [](TrainConfig& c) {
         c.decoder = DecoderForm::kSeparateTwo;
         balance_running_mean(c);
         weights_full_heavy(c);
       }},
      {"distill", "self-distillation: each prefix's neighbours in the batch pulled to the full code's (weight 10)",
       distill},
      {"distill-1", "the self-distillation with weight 1", [](TrainConfig& c) { c.distill = 1.0; }},
      {"separate+distill", "a separate first decoder layer per prefix and the self-distillation",
       both(separate_decoder, distill)},
      {"warm", "starts from the trained full-size MMD-VAE and fine-tunes it with the Matryoshka loss for half the epochs",
       nothing, /*warm_start=*/true},
      {"warmup", "the MMD weight ramps up from 0 over the first quarter of training (at least half an epoch)",
       warmup_quarter},
      {"lambda-light-small", "lambda_m = lambda * sqrt(m/D): a looser prior match at small prefixes",
       [](TrainConfig& c) { lambdas_by(c, times_sqrt); }},
      {"lambda-linear", "lambda_m = lambda * m/D: the prior match loosened in proportion at small prefixes",
       [](TrainConfig& c) { lambdas_by(c, times); }},
      {"lambda-heavy-small", "lambda_m = lambda * sqrt(D/m): a tighter prior match at small prefixes",
       [](TrainConfig& c) { lambdas_by(c, over_sqrt); }},
      {"separate+c-sqrt", "separate first decoder layers and weights c_m = sqrt(D/m)",
       both(separate_decoder, weights_sqrt)},
      {"separate+c-log", "separate first decoder layers and weights c_m = log2(D/m) + 1",
       both(separate_decoder, weights_log)},
      // Not to close the gap but to price the speed-up: what sampling the prefixes costs in accuracy.
      {"sample-2", "naive, but each step trains 2 random prefixes of the K (c_m scaled by K/2)", sample_two},
  };
  return kVariants;
}

const std::vector<Family>& families() {
  const auto variant = [](const std::string& name) {
    const auto& vs = mrl_variants();
    return *std::find_if(vs.begin(), vs.end(), [&](const Candidate& v) { return v.name == name; });
  };
  static const std::vector<Family> kFamilies = {
      // The Matryoshka model's candidates: the plain loss (the control), and the levers that did best
      // in a 5-epoch exploration on MNIST validation data (`experiment --attempts`; not yet committed as a
      // report, so these choices are the full profile's tuning to confirm): balance with the
      // full prefix heavy (the best large prefixes and reconstruction), the same with more decoder
      // per prefix (the small prefixes' capacity), and the warm start (the best 1-NN at large m).
      {"mrl-mmd", ModelKind::kMrlMmd, false,
       {variant("naive"), variant("balance+full-heavy"), variant("separate-2+balance+full-heavy"), variant("warm")}},
      {"mmd", ModelKind::kMmd, true,
       {{"default", "lambda = 100, kernel width 2m, learning rate 1e-3", nothing},
        {"lambda-30", "lambda = 30", [](TrainConfig& c) { c.lambda = 30; }},
        {"lambda-300", "lambda = 300", [](TrainConfig& c) { c.lambda = 300; }},
        {"lr-3e-3", "learning rate 3e-3", [](TrainConfig& c) { c.lr = 3e-3; }}}},
      {"vae", ModelKind::kVae, true,
       {{"default", "beta = 1, learning rate 1e-3", nothing},
        {"beta-0.5", "beta = 0.5", [](TrainConfig& c) { c.beta = 0.5; }},
        {"beta-2", "beta = 2", [](TrainConfig& c) { c.beta = 2; }},
        {"lr-3e-3", "learning rate 3e-3", [](TrainConfig& c) { c.lr = 3e-3; }}}},
      {"mrl-vae", ModelKind::kMrlVae, false,
       {{"default", "beta = 1, learning rate 1e-3", nothing},
        {"beta-0.5", "beta = 0.5", [](TrainConfig& c) { c.beta = 0.5; }},
        {"beta-2", "beta = 2", [](TrainConfig& c) { c.beta = 2; }},
        {"lr-3e-3", "learning rate 3e-3", [](TrainConfig& c) { c.lr = 3e-3; }}}},
      {"nested-dropout", ModelKind::kMmd, false,
       {{"p-0.1", "nested dropout, cut b ~ Geometric(0.1) (mean 10)",
         code_dropout(CodeDropout::kNested, 0.1)},
        {"p-0.05", "nested dropout, p = 0.05 (mean cut 20)",
         code_dropout(CodeDropout::kNested, 0.05)},
        {"p-0.2", "nested dropout, p = 0.2 (mean cut 5)",
         code_dropout(CodeDropout::kNested, 0.2)},
        {"p-0.02", "nested dropout, p = 0.02 (mean cut 50)",
         code_dropout(CodeDropout::kNested, 0.02)}}},
      {"taildrop", ModelKind::kMmd, false,
       {{"rate-0.5", "TailDrop, the last unit dropped half the time",
         code_dropout(CodeDropout::kTailDrop, 0.5)},
        {"rate-0.25", "TailDrop, last-unit rate 0.25",
         code_dropout(CodeDropout::kTailDrop, 0.25)},
        {"rate-0.75", "TailDrop, last-unit rate 0.75",
         code_dropout(CodeDropout::kTailDrop, 0.75)},
        {"rate-0.95", "TailDrop, last-unit rate 0.95",
         code_dropout(CodeDropout::kTailDrop, 0.95)}}},
  };
  return kFamilies;
}

const Family& family(const std::string& name) {
  for (const auto& f : families())
    if (f.name == name) return f;
  throw UsageError("unknown row family '" + name + "'");
}

std::string family_of_row(const std::string& row) {
  if (row == "mrl-mmd" || row == "mrl-mmd-matched") return "mrl-mmd";
  if (row == "mmd-at-m" || row == "mmd-trunc" || row == "mmd-svd") return "mmd";
  if (row == "vae-at-m") return "vae";
  if (row == "mrl-vae" || row == "nested-dropout" || row == "taildrop") return row;
  return "";
}

const Candidate& candidate(const Family& fam, const std::string& name) {
  const auto find = [&](const std::vector<Candidate>& list) {
    return std::find_if(list.begin(), list.end(), [&](const Candidate& c) { return c.name == name; });
  };
  if (const auto it = find(fam.candidates); it != fam.candidates.end()) return *it;
  if (fam.model == ModelKind::kMrlMmd)
    if (const auto it = find(mrl_variants()); it != mrl_variants().end()) return *it;
  std::vector<std::string> names;
  for (const auto& c : fam.model == ModelKind::kMrlMmd ? mrl_variants() : fam.candidates) names.push_back(c.name);
  throw UsageError(fmt::format("unknown {} candidate '{}' (expected one of {})", fam.name, name, fmt::join(names, ", ")));
}

void apply_candidate(const Family& fam, const std::string& name, TrainConfig& config) {
  const Candidate& c = candidate(fam, name);
  resolve(config);
  c.apply(config);
  resolve(config);
}

std::vector<Regret> regrets(const std::vector<ScoresByM>& candidates) {
  if (candidates.empty()) throw Error("regrets: no candidates");
  const ScoresByM& first = candidates.front();
  if (first.empty()) throw Error("regrets: no prefix sizes");
  for (const auto& c : candidates)
    for (const auto& [m, s] : first)
      if (!c.count(m)) throw Error(fmt::format("regrets: a candidate has no score at m = {}", m));
  std::vector<Regret> out(candidates.size(), Regret{-1e300, 0});
  const double cells = 3.0 * static_cast<double>(first.size());
  for (const auto& [m, unused] : first) {
    double probe = -1e300, knn1 = -1e300, recon = 1e300;
    for (const auto& c : candidates) {
      probe = std::max(probe, c.at(m).probe);
      knn1 = std::max(knn1, c.at(m).knn1);
      recon = std::min(recon, c.at(m).recon);
    }
    for (size_t i = 0; i < candidates.size(); ++i) {
      const ValidationScore& s = candidates[i].at(m);
      for (const double r : {100 * (probe - s.probe), 100 * (knn1 - s.knn1), (s.recon - recon) / 2}) {
        out[i].worst = std::max(out[i].worst, r);
        out[i].mean += r / cells;
      }
    }
  }
  return out;
}

size_t choose_candidate(const std::vector<Regret>& r) {
  if (r.empty()) throw Error("choose_candidate: no candidates");
  double best_worst = 1e300;
  for (const auto& x : r) best_worst = std::min(best_worst, x.worst);
  size_t chosen = r.size();
  for (size_t i = 0; i < r.size(); ++i) {
    if (r[i].worst > best_worst + 0.1) continue;
    if (chosen == r.size() || r[i].mean < r[chosen].mean) chosen = i;
  }
  return chosen;
}

const std::string& Choice::of(const Family& fam, int64_t m) const {
  const auto it = chosen_.find({fam.name, fam.per_m ? m : 0});
  if (it != chosen_.end()) return it->second;
  const auto d = defaults_.find(fam.name);
  return d != defaults_.end() ? d->second : fam.candidates.front().name;
}

TuningVerdict judge_tuning(const std::vector<Task>& tasks, const std::vector<int64_t>& dims) {
  TuningVerdict out;
  for (const Family& fam : families()) {
    // This family's tasks, in plan order: its candidates (for per-m families, each at every m).
    std::vector<const Task*> mine;
    for (const Task& t : tasks)
      if (t.family == fam.name) mine.push_back(&t);
    if (mine.empty()) continue;
    nlohmann::ordered_json& rec = out.record[fam.name];
    rec["model"] = to_string(fam.model);
    rec["per_m"] = fam.per_m;
    std::vector<std::string> names;
    for (const Task* t : mine) {
      if (std::find(names.begin(), names.end(), t->candidate) == names.end()) names.push_back(t->candidate);
      nlohmann::ordered_json& c = rec["candidates"][t->candidate];
      c["description"] = candidate(fam, t->candidate).description;
      c["config_hash"][std::to_string(t->job.config.latent)] = config_hash(t->job.config);
      for (const auto& [m, metrics] : t->result.items()) {
        c["metrics"][m] = metrics;
        c["runs"][m] = t->job.dir.filename().string();
      }
    }
    const auto scores_at = [&](const std::vector<int64_t>& ms) {
      std::vector<ScoresByM> scores;
      for (const auto& name : names) {
        ScoresByM s;
        const auto& metrics = rec["candidates"][name]["metrics"];
        for (int64_t m : ms) {
          const auto& x = metrics.at(std::to_string(m));
          s[m] = {x.at("probe").get<double>(), x.at("knn1").get<double>(), x.at("recon").get<double>()};
        }
        scores.push_back(s);
      }
      return scores;
    };
    const auto judge = [&](const std::vector<int64_t>& ms, const std::string& key, int64_t m) {
      const std::vector<Regret> r = regrets(scores_at(ms));
      for (size_t i = 0; i < names.size(); ++i) rec["regret"][key][names[i]] = {{"worst", r[i].worst}, {"mean", r[i].mean}};
      const std::string& chosen = names[choose_candidate(r)];
      rec["chosen"][key] = chosen;
      out.choice.set(fam, m, chosen);
    };
    if (fam.per_m) {
      for (int64_t m : dims) judge({m}, std::to_string(m), m);
    } else {
      judge(dims, "all", 0);
    }
  }
  return out;
}

}  // namespace matvae
