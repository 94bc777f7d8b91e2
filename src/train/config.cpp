// TrainConfig: validation, TOML in and out, hashing.
// Free of LibTorch, so that the libFuzzer target in fuzz/ can build it with clang.
#include "matvae/train/config.h"

#include <toml++/toml.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <sstream>

#include "matvae/models/nesting.h"
#include "matvae/train/toml_guard.h"
#include "matvae/util/choice.h"
#include "matvae/util/error.h"
#include "matvae/util/file_io.h"
#include "matvae/util/sha256.h"

namespace matvae {
namespace {

// A bound far above any MLP on images that fits in memory; larger widths would only fail later
// in the allocator with a message that names no setting.
constexpr int64_t kMaxHidden = 65536;

const ChoiceTable<ModelKind> kModels = {
    {{"vae", ModelKind::kVae}, {"mmd", ModelKind::kMmd}, {"mrl-mmd", ModelKind::kMrlMmd}, {"mrl-vae", ModelKind::kMrlVae}},
    [](const std::string& s) { return "model = " + s + ": expected vae, mmd, mrl-mmd or mrl-vae"; }};

const ChoiceTable<Balance> kBalances = {
    {{"none", Balance::kNone}, {"running-mean", Balance::kRunningMean}},
    [](const std::string& s) { return "balance = " + s + ": expected none or running-mean"; }};
const ChoiceTable<CodeDropout> kCodeDropouts = {
    {{"none", CodeDropout::kNone}, {"nested", CodeDropout::kNested}, {"taildrop", CodeDropout::kTailDrop}},
    [](const std::string& s) { return "code_dropout = " + s + ": expected none, nested or taildrop"; }};
const ChoiceTable<Parallel> kParallels = {
    {{"batch", Parallel::kBatch}, {"ops", Parallel::kOps}},
    [](const std::string& s) { return "parallel = " + s + ": expected batch or ops"; }};

const ChoiceTable<LrSchedule> kLrSchedules = {
    {{"constant", LrSchedule::kConstant}, {"cosine", LrSchedule::kCosine}},
    [](const std::string& s) { return "lr_schedule = " + s + ": expected constant or cosine"; }};

template <typename T>
void check(bool ok, const std::string& key, const T& value, const std::string& expected) {
  if (!ok) throw UsageError(fmt::format("{} = {}: expected {}", key, value, expected));
}

/// One table of setters, so that TOML keys, their types and the struct stay in one place.
struct Field {
  std::function<void(TrainConfig&, const toml::node&, const std::string&)> set;
  std::function<std::string(const TrainConfig&)> get;  // the value as TOML text
};

// TOML text of values. We format values ourselves rather than through toml++'s formatter: its
// line-width estimate for arrays of floats below 1 converts a negative log10 to size_t (UB that
// the config fuzzer found, toml++ 3.3.0).
std::string toml_value(const std::string& s) {
  std::string out = "\"";
  for (const unsigned char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += static_cast<char>(ch);
    } else if (ch < 0x20 || ch == 0x7f) {
      out += fmt::format("\\u{:04X}", ch);
    } else {
      out += static_cast<char>(ch);
    }
  }
  return out + "\"";
}
std::string toml_value(int64_t v) { return std::to_string(v); }
std::string toml_value(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::string t = fmt::format("{}", v);  // shortest text that reads back to the same double
  if (t.find_first_of(".e") == std::string::npos) t += ".0";
  return t;
}
template <typename T>
std::string toml_value(const std::vector<T>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + toml_value(static_cast<std::conditional_t<std::is_integral_v<T>, int64_t, double>>(v[i]));
  return out + "]";
}

[[noreturn]] void type_error(const std::string& name, const std::string& key, const char* want,
                             const toml::node& node) {
  const char* got = "something else";
  switch (node.type()) {
    case toml::node_type::string: got = "a string"; break;
    case toml::node_type::integer: got = "an integer"; break;
    case toml::node_type::floating_point: got = "a float"; break;
    case toml::node_type::boolean: got = "a boolean"; break;
    case toml::node_type::array: got = "an array"; break;
    case toml::node_type::table: got = "a table"; break;
    default: break;
  }
  throw UsageError(fmt::format("{}: key '{}' must be {}, got {}", name, key, want, got));
}

Field string_field(std::string TrainConfig::*member, const char* key) {
  return {[member, key](TrainConfig& c, const toml::node& n, const std::string& name) {
            if (!n.is_string()) type_error(name, key, "a string", n);
            c.*member = *n.value<std::string>();
          },
          [member](const TrainConfig& c) { return toml_value(c.*member); }};
}

/// A typed choice, read and written by name; its parser's message names a bad value.
template <typename E>
Field choice_field(E TrainConfig::*member, const char* key, E (*parse)(const std::string&),
                   std::string (*name)(E)) {
  return {[member, key, parse](TrainConfig& c, const toml::node& n, const std::string& file) {
            if (!n.is_string()) type_error(file, key, "a string", n);
            c.*member = parse(*n.value<std::string>());
          },
          [member, name](const TrainConfig& c) { return toml_value(name(c.*member)); }};
}

template <typename Int>
Field int_field(Int TrainConfig::*member, const char* key) {
  return {[member, key](TrainConfig& c, const toml::node& n, const std::string& name) {
            if (!n.is_integer()) type_error(name, key, "an integer", n);
            const int64_t v = *n.value<int64_t>();
            if (std::is_unsigned_v<Int> && v < 0) throw UsageError(fmt::format("{}: key '{}' must be >= 0", name, key));
            c.*member = static_cast<Int>(v);
          },
          [member](const TrainConfig& c) { return toml_value(static_cast<int64_t>(c.*member)); }};
}

Field double_field(double TrainConfig::*member, const char* key) {
  return {[member, key](TrainConfig& c, const toml::node& n, const std::string& name) {
            if (!n.is_number()) type_error(name, key, "a number", n);
            c.*member = *n.value<double>();
          },
          [member](const TrainConfig& c) { return toml_value(c.*member); }};
}

template <typename T>
Field list_field(std::vector<T> TrainConfig::*member, const char* key) {
  return {[member, key](TrainConfig& c, const toml::node& n, const std::string& name) {
            const auto* arr = n.as_array();
            if (!arr) type_error(name, key, "an array", n);
            std::vector<T> out;
            for (const auto& e : *arr) {
              if constexpr (std::is_integral_v<T>) {
                if (!e.is_integer()) type_error(name, key, "an array of integers", e);
              } else {
                if (!e.is_number()) type_error(name, key, "an array of numbers", e);
              }
              out.push_back(*e.value<T>());
            }
            c.*member = out;
          },
          [member](const TrainConfig& c) { return toml_value(c.*member); }};
}

const std::vector<std::pair<std::string, Field>>& fields() {
  static const std::vector<std::pair<std::string, Field>> kFields = {
      {"model", choice_field(&TrainConfig::model, "model", parse_model_kind, to_string)},
      {"latent", int_field(&TrainConfig::latent, "latent")},
      {"nesting", list_field(&TrainConfig::nesting, "nesting")},
      {"hidden", list_field(&TrainConfig::hidden, "hidden")},
      {"decoder", choice_field(&TrainConfig::decoder, "decoder", parse_decoder_form, to_string)},
      {"likelihood", choice_field(&TrainConfig::likelihood, "likelihood", parse_likelihood, to_string)},
      {"kernel", choice_field(&TrainConfig::kernel, "kernel", parse_mmd_kernel, to_string)},
      {"estimator", choice_field(&TrainConfig::estimator, "estimator", parse_mmd_estimator, to_string)},
      {"bandwidth", double_field(&TrainConfig::bandwidth, "bandwidth")},
      {"lambda", double_field(&TrainConfig::lambda, "lambda")},
      {"beta", double_field(&TrainConfig::beta, "beta")},
      {"weights", list_field(&TrainConfig::weights, "weights")},
      {"lambdas", list_field(&TrainConfig::lambdas, "lambdas")},
      {"warmup", double_field(&TrainConfig::warmup, "warmup")},
      {"balance", choice_field(&TrainConfig::balance, "balance", parse_balance, to_string)},
      {"distill", double_field(&TrainConfig::distill, "distill")},
      {"distill_temperature", double_field(&TrainConfig::distill_temperature, "distill_temperature")},
      {"code_dropout", choice_field(&TrainConfig::code_dropout, "code_dropout", parse_code_dropout, to_string)},
      {"dropout_rate", double_field(&TrainConfig::dropout_rate, "dropout_rate")},
      {"init_from", string_field(&TrainConfig::init_from, "init_from")},
      {"prefix_sample", int_field(&TrainConfig::prefix_sample, "prefix_sample")},
      {"lr", double_field(&TrainConfig::lr, "lr")},
      {"lr_schedule", choice_field(&TrainConfig::lr_schedule, "lr_schedule", parse_lr_schedule, to_string)},
      {"weight_decay", double_field(&TrainConfig::weight_decay, "weight_decay")},
      {"batch_size", int_field(&TrainConfig::batch_size, "batch_size")},
      {"epochs", int_field(&TrainConfig::epochs, "epochs")},
      {"seed", int_field(&TrainConfig::seed, "seed")},
      {"threads", int_field(&TrainConfig::threads, "threads")},
      {"parallel", choice_field(&TrainConfig::parallel, "parallel", parse_parallel, to_string)},
      {"limit", int_field(&TrainConfig::limit, "limit")},
      {"checkpoint_every", int_field(&TrainConfig::checkpoint_every, "checkpoint_every")},
      {"data", string_field(&TrainConfig::data, "data")},
      {"classes", int_field(&TrainConfig::classes, "classes")},
  };
  return kFields;
}

}  // namespace

ModelKind parse_model_kind(const std::string& name) { return kModels.parse(name); }
std::string to_string(ModelKind model) { return kModels.name(model); }
Balance parse_balance(const std::string& name) { return kBalances.parse(name); }
std::string to_string(Balance balance) { return kBalances.name(balance); }
CodeDropout parse_code_dropout(const std::string& name) { return kCodeDropouts.parse(name); }
std::string to_string(CodeDropout dropout) { return kCodeDropouts.name(dropout); }
Parallel parse_parallel(const std::string& name) { return kParallels.parse(name); }
std::string to_string(Parallel parallel) { return kParallels.name(parallel); }
LrSchedule parse_lr_schedule(const std::string& name) { return kLrSchedules.parse(name); }
std::string to_string(LrSchedule schedule) { return kLrSchedules.name(schedule); }

void resolve(TrainConfig& c) {
  check(c.latent > 0 && c.latent <= 4096, "latent", c.latent, "an integer in 1..4096");
  if (c.nesting.empty()) c.nesting = c.is_mrl() ? default_nesting(c.latent) : std::vector<int64_t>{c.latent};
  if (!c.is_mrl() && !(c.nesting.size() == 1 && c.nesting[0] == c.latent))
    throw UsageError(fmt::format("nesting = [{}]: model {} trains the full code only; use mrl-mmd or mrl-vae",
                                 fmt::join(c.nesting, ","), to_string(c.model)));
  check_nesting(c.nesting, c.latent);
  check(!c.hidden.empty(), "hidden", "[]", "at least one layer width");
  for (int64_t h : c.hidden) check(h > 0 && h <= kMaxHidden, "hidden", h, fmt::format("widths in 1..{}", kMaxHidden));
  check(std::isfinite(c.bandwidth) && c.bandwidth >= 0, "bandwidth", c.bandwidth, "a number >= 0 (0 = m^2)");
  check(std::isfinite(c.lambda) && c.lambda >= 0, "lambda", c.lambda, "a number >= 0");
  check(std::isfinite(c.beta) && c.beta >= 0, "beta", c.beta, "a number >= 0");
  if (!c.weights.empty() && c.weights.size() != c.nesting.size())
    throw UsageError(fmt::format("weights has {} values but the nesting list has {} sizes", c.weights.size(),
                                 c.nesting.size()));
  for (double w : c.weights) check(std::isfinite(w) && w >= 0, "weights", w, "numbers >= 0");
  if (c.weights.empty()) c.weights.assign(c.nesting.size(), 1.0);
  if (!c.lambdas.empty() && !c.uses_mmd())
    throw UsageError(fmt::format("lambdas: model {} has no MMD term; use beta for its KL weight", to_string(c.model)));
  if (!c.lambdas.empty() && c.lambdas.size() != c.nesting.size())
    throw UsageError(fmt::format("lambdas has {} values but the nesting list has {} sizes", c.lambdas.size(),
                                 c.nesting.size()));
  for (double l : c.lambdas) check(std::isfinite(l) && l >= 0, "lambdas", l, "numbers >= 0");
  check(std::isfinite(c.warmup) && c.warmup >= 0 && c.warmup <= 1e6, "warmup", c.warmup,
        "a number of epochs in 0..1000000 (0 = off)");
  check(std::isfinite(c.distill) && c.distill >= 0, "distill", c.distill, "a number >= 0 (0 = off)");
  check(std::isfinite(c.distill_temperature) && c.distill_temperature > 0, "distill_temperature",
        c.distill_temperature, "a number > 0");
  if (c.distill > 0 && c.nesting.size() < 2)
    throw UsageError(fmt::format("distill = {}: needs a nesting list of two or more sizes (mrl-mmd or mrl-vae)",
                                 c.distill));
  check(std::isfinite(c.dropout_rate) && c.dropout_rate > 0 && c.dropout_rate < 1, "dropout_rate", c.dropout_rate,
        "a number in (0, 1)");
  if (c.code_dropout != CodeDropout::kNone && c.is_mrl())
    throw UsageError(fmt::format("code_dropout = {}: for vae and mmd (the nesting list {{D}}); model {} nests already",
                                 to_string(c.code_dropout), to_string(c.model)));
  check(c.prefix_sample >= 0 && c.prefix_sample <= static_cast<int64_t>(c.nesting.size()), "prefix_sample",
        c.prefix_sample, fmt::format("an integer in 0..{} (the nesting sizes; 0 = every one)", c.nesting.size()));
  check(std::isfinite(c.lr) && c.lr > 0, "lr", c.lr, "a number > 0");
  check(std::isfinite(c.weight_decay) && c.weight_decay >= 0, "weight_decay", c.weight_decay, "a number >= 0");
  check(c.batch_size >= 2, "batch_size", c.batch_size, "an integer >= 2");
  check(c.epochs >= 1 && c.epochs <= 1000000, "epochs", c.epochs, "an integer in 1..1000000");
  // TOML integers are signed 64-bit: a larger seed could not be written to config.toml and read back.
  check(c.seed <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), "seed", c.seed,
        "an integer in 0..9223372036854775807");
  check(c.threads >= 0 && c.threads <= 1024, "threads", c.threads, "an integer in 0..1024 (0 = every core)");
  check(c.limit >= 0, "limit", c.limit, "an integer >= 0 (0 = all)");
  check(c.checkpoint_every >= 0, "checkpoint_every", c.checkpoint_every, "an integer >= 0");
  check(c.classes >= 0 && c.classes <= 256, "classes", c.classes, "an integer in 0..256 (0 = counted from the labels)");
  check(!c.data.empty(), "data", "\"\"", "a data folder");
}

void apply_toml_text(TrainConfig& config, const std::string& text, const std::string& name) {
  refuse_non_ascii_outside_strings(text, name);
  toml::table table;
  try {
    table = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    throw UsageError(fmt::format("{}:{}:{}: {}", name, where.line, where.column, e.description()));
  }
  for (const auto& [key, node] : table) {
    const std::string k(key.str());
    const auto& fs = fields();
    const auto it = std::find_if(fs.begin(), fs.end(), [&](const auto& f) { return f.first == k; });
    if (it == fs.end()) throw UsageError(fmt::format("{}: unknown key '{}'", name, k));
    it->second.set(config, node, name);
  }
}

void apply_toml(TrainConfig& config, const std::filesystem::path& path) {
  std::vector<uint8_t> bytes;
  try {
    bytes = read_file(path);
  } catch (const Error& e) {
    throw UsageError(std::string("config ") + e.what());
  }
  apply_toml_text(config, std::string(bytes.begin(), bytes.end()), path.string());
}

std::string to_toml(const TrainConfig& config) {
  std::string out = "# matvae run settings, every default included\n";
  for (const auto& [key, field] : fields()) out += key + " = " + field.get(config) + "\n";
  return out;
}

std::string config_hash(const TrainConfig& config) {
  TrainConfig c = config;
  // None changes what is computed: checkpoints only save it, and the thread count and how the
  // threads share a step only the float rounding order (see README, Determinism).
  c.checkpoint_every = 0;
  c.threads = 0;
  c.parallel = Parallel::kBatch;
  // A warm start is named by its source run's folder name (the experiment's names carry the source's
  // own hash), not by where that folder happens to be.
  if (!c.init_from.empty()) {
    std::filesystem::path p = std::filesystem::path(c.init_from).lexically_normal();
    if (p.filename().empty()) p = p.parent_path();
    c.init_from = p.filename().string();
  }
  std::string text = to_toml(c);
  // Settings added later leave the hash of a run that keeps their default (off) unchanged, so that
  // its cached models stay valid.
  for (const char* line : {"parallel = \"batch\"\n", "prefix_sample = 0\n", "balance = \"none\"\n", "distill = 0.0\n", "distill_temperature = 0.1\n",
                           "code_dropout = \"none\"\n", "dropout_rate = 0.1\n", "init_from = \"\"\n",
                           "lr_schedule = \"constant\"\n"}) {
    const auto at = text.find(line);
    if (at != std::string::npos) text.erase(at, std::string(line).size());
  }
  return sha256_hex(text.data(), text.size()).substr(0, 16);
}

}  // namespace matvae
