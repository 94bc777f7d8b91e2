// TrainConfig: validation, TOML in and out, hashing.
// Free of LibTorch (the model, loss and kernel names are checked here as plain strings, with the
// messages of their parse_* functions), so that the libFuzzer target in fuzz/ can build it with clang.
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
#include "matvae/util/error.h"
#include "matvae/util/file_io.h"
#include "matvae/util/sha256.h"

namespace matvae {
namespace {

// A bound far above any MLP on images that fits in memory; larger widths would only fail later
// in the allocator with a message that names no setting.
constexpr int64_t kMaxHidden = 65536;

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
      {"model", string_field(&TrainConfig::model, "model")},
      {"latent", int_field(&TrainConfig::latent, "latent")},
      {"nesting", list_field(&TrainConfig::nesting, "nesting")},
      {"hidden", list_field(&TrainConfig::hidden, "hidden")},
      {"decoder", string_field(&TrainConfig::decoder, "decoder")},
      {"likelihood", string_field(&TrainConfig::likelihood, "likelihood")},
      {"kernel", string_field(&TrainConfig::kernel, "kernel")},
      {"estimator", string_field(&TrainConfig::estimator, "estimator")},
      {"bandwidth", double_field(&TrainConfig::bandwidth, "bandwidth")},
      {"lambda", double_field(&TrainConfig::lambda, "lambda")},
      {"beta", double_field(&TrainConfig::beta, "beta")},
      {"weights", list_field(&TrainConfig::weights, "weights")},
      {"lambdas", list_field(&TrainConfig::lambdas, "lambdas")},
      {"warmup", double_field(&TrainConfig::warmup, "warmup")},
      {"prefix_sample", int_field(&TrainConfig::prefix_sample, "prefix_sample")},
      {"lr", double_field(&TrainConfig::lr, "lr")},
      {"weight_decay", double_field(&TrainConfig::weight_decay, "weight_decay")},
      {"batch_size", int_field(&TrainConfig::batch_size, "batch_size")},
      {"epochs", int_field(&TrainConfig::epochs, "epochs")},
      {"seed", int_field(&TrainConfig::seed, "seed")},
      {"threads", int_field(&TrainConfig::threads, "threads")},
      {"limit", int_field(&TrainConfig::limit, "limit")},
      {"checkpoint_every", int_field(&TrainConfig::checkpoint_every, "checkpoint_every")},
      {"data", string_field(&TrainConfig::data, "data")},
      {"classes", int_field(&TrainConfig::classes, "classes")},
  };
  return kFields;
}

// The same checks and messages as parse_decoder_form, parse_likelihood and
// parse_mmd_kernel (models/, losses/), which need LibTorch; tests/test_reliability.cpp holds them equal.
void check_names(const TrainConfig& c) {
  if (c.decoder != "tied" && c.decoder != "separate")
    throw UsageError("unknown decoder '" + c.decoder + "' (expected tied or separate)");
  if (c.likelihood != "bernoulli" && c.likelihood != "gaussian")
    throw UsageError("unknown likelihood '" + c.likelihood + "': expected 'bernoulli' or 'gaussian'");
  if (c.kernel != "gaussian" && c.kernel != "imq")
    throw UsageError("unknown MMD kernel '" + c.kernel + "': expected 'gaussian' or 'imq'");
}

/// toml++ 3.3 (Debian 12's) reaches __builtin_unreachable, i.e. undefined behaviour, on some
/// non-ASCII characters wherever it tests for whitespace: between and after tokens, inside keys and
/// bare values, after a line-ending backslash (upstream issues marzer/tomlplusplus#190 and #295;
/// found by fuzz/fuzz_config). TOML allows non-ASCII text only in strings and comments anyway, so
/// text with one anywhere else (or in a quoted key) is refused before it reaches the parser; string
/// values, such as a data path with an accent, and comments keep them.
void check_non_ascii(const std::string& text, const std::string& name) {
  enum class Mode { kKey, kValueStart, kBare, kAfterValue };
  Mode mode = Mode::kKey;
  std::vector<char> levels;  // open '[' arrays and '{' inline tables of the current value
  size_t line = 1, line_start = 0;
  const size_t n = text.size();
  const auto ascii = [&](size_t i) { return static_cast<unsigned char>(text[i]) < 0x80; };
  const auto space = [&](size_t i) { return text[i] == ' ' || text[i] == '\t' || text[i] == '\r'; };
  const auto newline = [&](size_t i) {
    ++line;
    line_start = i + 1;
  };
  const auto refuse = [&](size_t i) {
    throw UsageError(fmt::format("{}:{}:{}: non-ASCII character outside a string value or comment", name, line,
                                 i - line_start + 1));
  };
  // The string opening at i: returns the index of its last character (or of the one before the
  // line break that ends an unterminated one-line string).
  const auto skip_string = [&](size_t i, bool value) {
    const char q = text[i];
    const bool multi = text.compare(i, 3, std::string(3, q)) == 0;  // (the parser reads one as a key, then refuses it)
    for (i += multi ? 3 : 1; i < n; ++i) {
      if (!ascii(i) && !value) refuse(i);
      if (text[i] == '\n') {
        if (!multi) return i - 1;
        newline(i);
      } else if (q == '"' && text[i] == '\\' && i + 1 < n) {
        ++i;
        if (!ascii(i)) refuse(i);
        if (multi && (space(i) || text[i] == '\n')) {
          // A line-ending backslash: the parser skips whitespace up to the next character.
          if (text[i] == '\n') newline(i);
          for (; i + 1 < n && (space(i + 1) || text[i + 1] == '\n'); ++i)
            if (text[i + 1] == '\n') newline(i + 1);
          if (i + 1 < n && !ascii(i + 1)) refuse(i + 1);
        } else if (text[i] == '\n') {
          return i - 1;
        }
      } else if (text[i] == q && (!multi || text.compare(i, 3, std::string(3, q)) == 0)) {
        size_t run = 1;  // a multi-line string ends with the last three of up to five quotes
        while (multi && run < 5 && i + run < n && text[i + run] == q) ++run;
        return i + run - 1;
      }
    }
    return n - 1;
  };
  const size_t bom = text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;  // the parser skips a UTF-8 BOM
  for (size_t i = bom; i < n; ++i) {
    const char c = text[i];
    if (c == '#' && mode != Mode::kBare) {  // a comment, to the end of the line
      while (i + 1 < n && text[i + 1] != '\n') ++i;
      continue;
    }
    if (!ascii(i)) refuse(i);
    if (c == '\n') newline(i);
    const char top = levels.empty() ? 0 : levels.back();
    if (mode == Mode::kBare) {  // a number, boolean or date runs to the next terminator
      if (!(space(i) || c == '\n' || c == ',' || c == ']' || c == '}' || c == '#')) continue;
      mode = Mode::kAfterValue;
      if (c == '#') {
        while (i + 1 < n && text[i + 1] != '\n') ++i;
        continue;
      }
    }
    switch (mode) {
      case Mode::kKey:
        if (c == '"' || c == '\'') {
          i = skip_string(i, false);
        } else if (c == '=') {
          mode = Mode::kValueStart;
        } else if (c == '}' && top == '{') {
          levels.pop_back();
          mode = Mode::kAfterValue;
        }
        break;
      case Mode::kValueStart:
        if (c == '\n' && top == 0) {
          mode = Mode::kKey;
        } else if (c == '"' || c == '\'') {
          i = skip_string(i, true);
          mode = Mode::kAfterValue;
        } else if (c == '[') {
          levels.push_back('[');
        } else if (c == '{') {
          levels.push_back('{');
          mode = Mode::kKey;
        } else if ((c == ']' && top == '[') || (c == '}' && top == '{')) {
          levels.pop_back();
          mode = Mode::kAfterValue;
        } else if (!space(i) && c != '\n' && c != ',') {
          mode = Mode::kBare;
        }
        break;
      case Mode::kAfterValue:
      case Mode::kBare:
        if (c == '\n' && top != '[') {
          mode = Mode::kKey;
          levels.clear();
        } else if (c == ',') {
          mode = top == '[' ? Mode::kValueStart : Mode::kKey;
        } else if ((c == ']' || c == '}') && top != 0) {
          levels.pop_back();
        }
        break;
    }
  }
}

}  // namespace

void resolve(TrainConfig& c) {
  check(c.model == "vae" || c.model == "mmd" || c.model == "mrl-mmd" || c.model == "mrl-vae", "model", c.model,
        "vae, mmd, mrl-mmd or mrl-vae");
  check(c.latent > 0 && c.latent <= 4096, "latent", c.latent, "an integer in 1..4096");
  if (c.nesting.empty()) {
    if (c.is_mrl()) {
      for (int64_t m = 2; m < c.latent; m *= 2) c.nesting.push_back(m);
    }
    c.nesting.push_back(c.latent);
  }
  if (!c.is_mrl() && !(c.nesting.size() == 1 && c.nesting[0] == c.latent))
    throw UsageError(fmt::format("nesting = [{}]: model {} trains the full code only; use mrl-mmd or mrl-vae",
                                 fmt::join(c.nesting, ","), c.model));
  check_nesting(c.nesting, c.latent);
  check(!c.hidden.empty(), "hidden", "[]", "at least one layer width");
  for (int64_t h : c.hidden) check(h > 0 && h <= kMaxHidden, "hidden", h, fmt::format("widths in 1..{}", kMaxHidden));
  check_names(c);
  check(c.estimator == "biased" || c.estimator == "unbiased", "estimator", c.estimator, "biased or unbiased");
  check(std::isfinite(c.bandwidth) && c.bandwidth >= 0, "bandwidth", c.bandwidth, "a number >= 0 (0 = m^2)");
  check(std::isfinite(c.lambda) && c.lambda >= 0, "lambda", c.lambda, "a number >= 0");
  check(std::isfinite(c.beta) && c.beta >= 0, "beta", c.beta, "a number >= 0");
  if (!c.weights.empty() && c.weights.size() != c.nesting.size())
    throw UsageError(fmt::format("weights has {} values but the nesting list has {} sizes", c.weights.size(),
                                 c.nesting.size()));
  for (double w : c.weights) check(std::isfinite(w) && w >= 0, "weights", w, "numbers >= 0");
  if (c.weights.empty()) c.weights.assign(c.nesting.size(), 1.0);
  if (!c.lambdas.empty() && !c.uses_mmd())
    throw UsageError(fmt::format("lambdas: model {} has no MMD term; use beta for its KL weight", c.model));
  if (!c.lambdas.empty() && c.lambdas.size() != c.nesting.size())
    throw UsageError(fmt::format("lambdas has {} values but the nesting list has {} sizes", c.lambdas.size(),
                                 c.nesting.size()));
  for (double l : c.lambdas) check(std::isfinite(l) && l >= 0, "lambdas", l, "numbers >= 0");
  check(std::isfinite(c.warmup) && c.warmup >= 0 && c.warmup <= 1e6, "warmup", c.warmup,
        "a number of epochs in 0..1000000 (0 = off)");
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
  check(c.classes >= 1 && c.classes <= 256, "classes", c.classes, "an integer in 1..256");
  check(!c.data.empty(), "data", "\"\"", "a data folder");
}

void apply_toml_text(TrainConfig& config, const std::string& text, const std::string& name) {
  check_non_ascii(text, name);
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
  // Neither changes what is computed: checkpoints only save it, and the thread count only the
  // float rounding order (see README, Determinism).
  c.checkpoint_every = 0;
  c.threads = 0;
  std::string text = to_toml(c);
  // Settings added later leave the hash of a run that keeps their default (off) unchanged, so that
  // its cached models stay valid.
  for (const char* line : {"prefix_sample = 0\n"}) {
    const auto at = text.find(line);
    if (at != std::string::npos) text.erase(at, std::string(line).size());
  }
  return sha256_hex(text.data(), text.size()).substr(0, 16);
}

}  // namespace matvae
