// Exporting a run as TorchScript, a weights dict and its settings; see export.h. The module is built
// in C++ (torch::jit::Module): its weights registered as parameters, its methods compiled from
// TorchScript source written out layer by layer, so it runs wherever LibTorch does.
#include "matvae/deploy/export.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/script.h>

#include "matvae/data/dataset.h"
#include "matvae/train/run_folder.h"
#include "matvae/util/error.h"
#include "matvae/util/file_io.h"

namespace matvae {
namespace fs = std::filesystem;
namespace {

/// A Linear layer's parameters by their attribute names in the module (dots become underscores).
struct Layer {
  std::string weight, bias;
};
std::string attr(const std::string& name) {
  std::string s = name;
  std::replace(s.begin(), s.end(), '.', '_');
  return s;
}

/// The model's Linear layers in order whose names start with `prefix` ("encoder." etc.).
std::vector<Layer> layers(const torch::OrderedDict<std::string, torch::Tensor>& params, const std::string& prefix) {
  std::vector<Layer> out;
  for (const auto& p : params) {
    const std::string& name = p.key();
    if (name.rfind(prefix, 0) != 0 || name.size() < 7 || name.compare(name.size() - 7, 7, ".weight") != 0) continue;
    const std::string stem = name.substr(0, name.size() - 7);
    out.push_back({attr(stem + ".weight"), attr(stem + ".bias")});
  }
  return out;
}

/// "h = torch.addmm(b, <input>, W.t())" for each layer, a ReLU before every layer after the first.
std::string apply(const std::vector<Layer>& ls, const std::string& input, bool relu_first, const std::string& indent) {
  std::string s;
  for (size_t i = 0; i < ls.size(); ++i) {
    const std::string in = i == 0 ? input : "h";
    const bool relu = i > 0 || relu_first;
    s += fmt::format("{}h = torch.addmm(self.{}, {}, self.{}.t())\n", indent, ls[i].bias,
                     relu ? "torch.relu(" + in + ")" : in, ls[i].weight);
  }
  return s;
}

std::string source(const LoadedRun& run) {
  const auto params = run.model->named_parameters();
  const TrainConfig& c = run.config;
  const int64_t D = c.latent;
  std::string s;
  // encode(x, m): the encoder's layers with ReLUs after each, then the mean head.
  s += "def encode(self, x: Tensor, m: int) -> Tensor:\n";
  s += fmt::format("    assert m >= 1 and m <= {}, \"encode: m must be in 1..{}\"\n", D, D);
  const auto enc = layers(params, "encoder.");
  for (size_t i = 0; i < enc.size(); ++i)
    s += fmt::format("    {} = torch.relu(torch.addmm(self.{}, {}, self.{}.t()))\n", "h", enc[i].bias, i ? "h" : "x",
                     enc[i].weight);
  s += "    mu = torch.addmm(self.mu_bias, h, self.mu_weight.t())\n    return mu.narrow(1, 0, m)\n\n";
  // decode_logits(z): the first layer(s) of z's prefix, then the shared rest.
  s += "def decode_logits(self, z: Tensor) -> Tensor:\n    m = z.size(1)\n";
  std::string known;
  for (const int64_t m : c.nesting) known += fmt::format("{}m == {}", known.empty() ? "" : " or ", m);
  s += fmt::format("    assert {}, \"decode: z must have as many columns as a size of the nesting list ({})\"\n", known,
                   fmt::join(c.nesting, ", "));
  if (c.decoder == DecoderForm::kTied) {
    s += "    h = torch.addmm(self.decoder_first_bias, z, self.decoder_first_weight.narrow(1, 0, m).t())\n";
  } else {
    // One branch per prefix size; the assert above leaves only the last for the final else.
    for (size_t k = 0; k < c.nesting.size(); ++k) {
      const std::string m = std::to_string(c.nesting[k]);
      const bool last = k + 1 == c.nesting.size();
      s += last ? (k ? "    else:\n" : "    if True:\n") : fmt::format("    {} m == {}:\n", k ? "elif" : "if", m);
      std::vector<Layer> own = {{"decoder_first_" + m + "_weight", "decoder_first_" + m + "_bias"}};
      for (const auto& l : layers(params, "decoder_private_" + m + ".")) own.push_back(l);
      s += apply(own, "z", false, "        ");
    }
  }
  s += apply(layers(params, "decoder_rest."), "h", true, "    ");
  s += "    return h\n\n";
  s += c.likelihood == Likelihood::kNormal ? "def decode(self, z: Tensor) -> Tensor:\n    return self.decode_logits(z)\n"
                                           : "def decode(self, z: Tensor) -> Tensor:\n    return torch.sigmoid(self.decode_logits(z))\n";
  return s;
}

}  // namespace

ExportResult export_run(const fs::path& run_dir, const fs::path& out) {
  const RunFolder folder(run_dir);
  LoadedRun run = folder.load();
  const TrainConfig& c = run.config;
  const auto record = folder.training_record();
  const std::string commit = fmt::format("{}", fmt::join(record.builds, ","));
  const auto test = load_split(c.data, Split::kTest, c.classes);  // the image shape, and a check that it fits

  torch::jit::Module m("MatvaeExport");
  const auto params = run.model->named_parameters();
  c10::Dict<std::string, at::Tensor> weights;
  for (const auto& p : params) {
    const auto t = p.value().detach().clone().contiguous();
    m.register_parameter(attr(p.key()), t, /*is_buffer=*/false);
    weights.insert(p.key(), t);
  }
  m.register_attribute("nesting", c10::ListType::ofInts(), c10::IValue(c10::List<int64_t>(c.nesting)));
  for (const auto& [name, value] : std::vector<std::pair<std::string, int64_t>>{
           {"latent", c.latent}, {"input", run.model->options().input()}, {"height", test.height}, {"width", test.width}})
    m.register_attribute(name, c10::IntType::get(), value);
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"model", to_string(c.model)}, {"decoder", to_string(c.decoder)},
           {"likelihood", to_string(c.likelihood)}, {"commit", commit}})
    m.register_attribute(name, c10::StringType::get(), value);
  try {
    m.define(source(run));
  } catch (const c10::Error& e) {
    throw Error("export: the generated TorchScript does not compile: " + first_line(e.what_without_backtrace()));
  }
  m.eval();

  ExportResult r;
  r.module = out;
  r.weights = out.parent_path() / (out.stem().string() + ".weights.pt");
  r.metadata = out.parent_path() / (out.stem().string() + ".json");
  std::ostringstream module_bytes;
  m.save(module_bytes);
  write_file_atomic(r.module, module_bytes.str());
  const std::vector<char> pickled = torch::jit::pickle_save(c10::IValue(weights));
  write_file_atomic(r.weights, pickled.data(), pickled.size());
  nlohmann::ordered_json meta;
  meta["format"] = "matvae export 1";
  meta["model"] = to_string(c.model);
  meta["latent"] = c.latent;
  meta["nesting"] = c.nesting;
  meta["hidden"] = c.hidden;
  meta["decoder"] = to_string(c.decoder);
  meta["likelihood"] = to_string(c.likelihood);
  meta["input"] = run.model->options().input();
  meta["image"] = {test.height, test.width};
  meta["trained_by"] = record.builds;
  meta["config_hash"] = config_hash(c);
  meta["weights"] = "a dict of the names below (models/vae.h) to tensors; Linear weights are [out, in]";
  for (const auto& p : params) meta["shapes"][p.key()] = p.value().sizes().vec();
  write_file_atomic(r.metadata, meta.dump(1) + "\n");
  return r;
}

}  // namespace matvae
