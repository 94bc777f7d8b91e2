// Exported models: the TorchScript module runs in C++ (torch::jit::load) and in Python
// (torch.jit.load), its encode equals matvae's codes and its decode the model's, at every prefix and
// for every decoder form; the weights file is a dict torch.load reads; the README's Python example
// runs as written; a run whose data folder moved is read against the data folder given.
#include <gtest/gtest.h>
#include <torch/script.h>

#include <fstream>
#include <regex>

#include "matvae/deploy/export.h"
#include "matvae/eval/code_metrics.h"
#include "matvae/eval/run_eval.h"
#include "matvae/io/npy.h"
#include "matvae/train/run_folder.h"
#include "matvae/train/trainer.h"
#include "test_util.h"

namespace {
namespace fs = std::filesystem;
using matvae::TrainConfig;
using matvae_test::contains;
using matvae_test::tensors_close;

class Export : public matvae_test::TempDirTest {
 protected:
  /// A small trained Matryoshka model with `form`, in dir()/name.
  fs::path trained(const std::string& name, matvae::DecoderForm form) {
    matvae_test::write_small_idx_folder(dir() / "data", 120, 30, 6, 5);
    TrainConfig c;
    c.data = (dir() / "data").string();
    c.latent = 8;
    c.hidden = {16, 12};
    c.batch_size = 20;
    c.epochs = 1;
    c.threads = 1;
    c.decoder = form;
    matvae::train(c, dir() / name);
    return dir() / name;
  }
};

TEST_F(Export, TheModuleEqualsTheModelInCppForEveryDecoderForm) {
  for (const auto form : {matvae::DecoderForm::kTied, matvae::DecoderForm::kSeparate,
                          matvae::DecoderForm::kSeparateTwo, matvae::DecoderForm::kIndependent}) {
    const std::string name = matvae::to_string(form);
    SCOPED_TRACE(name);
    const fs::path run = trained(name, form);
    const auto r = matvae::export_run(run, dir() / (name + ".pt"));
    EXPECT_TRUE(fs::exists(r.weights));
    EXPECT_TRUE(fs::exists(r.metadata));
    auto module = torch::jit::load(r.module.string());
    auto loaded = matvae::RunFolder(run).load();
    torch::manual_seed(1);
    const auto x = torch::rand({7, 30});
    const auto codes = matvae::encode_mu(loaded.model, x);
    EXPECT_EQ(module.attr("nesting").toIntList().vec(), (std::vector<int64_t>{2, 4, 8}));
    EXPECT_EQ(module.attr("input").toInt(), 30);
    EXPECT_EQ(module.attr("height").toInt(), 6);
    EXPECT_EQ(module.attr("model").toStringRef(), "mrl-mmd");
    EXPECT_EQ(module.attr("decoder").toStringRef(), name);
    EXPECT_FALSE(module.attr("commit").toStringRef().empty());
    torch::NoGradGuard no_grad;
    for (const int64_t m : {2, 4, 8}) {
      const auto enc = module.run_method("encode", x, m).toTensor();
      EXPECT_TRUE(tensors_close(enc, codes.narrow(1, 0, m), 1e-5)) << "m = " << m;
      const auto dec = module.run_method("decode", enc).toTensor();
      EXPECT_TRUE(tensors_close(dec, torch::sigmoid(loaded.model->decode(codes.narrow(1, 0, m))), 1e-5)) << "m = " << m;
    }
    // A prefix length outside the nesting list is refused with a message, not a wrong answer.
    try {
      module.run_method("decode", torch::zeros({2, 3}));
      ADD_FAILURE() << "decode accepted 3 columns";
    } catch (const std::exception& e) {
      EXPECT_TRUE(contains(e.what(), "nesting list"));
    }
  }
}

TEST_F(Export, ARunWhoseDataMovedIsReadAgainstTheDataGiven) {
  const fs::path run = trained("run", matvae::DecoderForm::kTied);
  fs::rename(dir() / "data", dir() / "moved");
  // Without a data folder the run's own is looked for, and its absence named.
  try {
    matvae::RunFolder(run).load();
    ADD_FAILURE() << "loaded without its data";
  } catch (const std::exception& e) {
    EXPECT_TRUE(contains(e.what(), (dir() / "data").string())) << e.what();
  }
  // With one (--data of eval, retrieve and encode), that one alone is read.
  matvae::write_codes_npy(run, dir() / "moved", matvae::Split::kTest, 8, dir() / "codes.npy");
  EXPECT_EQ(matvae::read_npy(dir() / "codes.npy").size(0), 30);
  const auto j = matvae::retrieve_run(run, dir() / "moved");
  EXPECT_EQ(j["retrieval"]["database"].get<int64_t>(), 120);
  const auto e = matvae::evaluate_run(run, {8}, 0, dir() / "moved");
  EXPECT_TRUE(e["metrics"].contains("8"));
}

TEST_F(Export, PythonRunsTheModuleAndReadsTheWeights) {
  if (matvae_test::torch_python().empty()) GTEST_SKIP() << "no python3 with torch (apt-get install python3-torch)";
  const fs::path run = trained("run", matvae::DecoderForm::kSeparate);
  const auto r = matvae::export_run(run, dir() / "model.pt");
  matvae::write_codes_npy(run, dir() / "data", matvae::Split::kTest, 8, dir() / "codes.npy");
  matvae_test::write_bytes(dir() / "check.py", R"(
import sys, numpy as np, torch
model = torch.jit.load(sys.argv[1])
codes = torch.from_numpy(np.load(sys.argv[2]))
import struct
raw = open(sys.argv[3], "rb").read()
n, h, w = struct.unpack(">III", raw[4:16])
x = torch.frombuffer(bytearray(raw[16:]), dtype=torch.uint8).float().div(255).view(n, h * w)
for m in model.nesting:
    assert torch.allclose(model.encode(x, m), codes[:, :m], atol=1e-5), m
weights = torch.load(sys.argv[4])
assert isinstance(weights, dict) and "encoder.0.weight" in weights, list(weights)
assert torch.equal(weights["mu.weight"], model.mu_weight)
print("ok", len(weights))
)");
  const auto out = matvae::run_process({matvae_test::torch_python(), (dir() / "check.py").string(), r.module.string(),
                                        (dir() / "codes.npy").string(), (dir() / "data" / "t10k-images-idx3-ubyte").string(),
                                        r.weights.string()});
  EXPECT_EQ(out.exit_code, 0) << out.output;
  EXPECT_TRUE(contains(out.output, "ok"));
}

TEST_F(Export, TheReadmesPythonExampleRuns) {
  if (matvae_test::torch_python().empty()) GTEST_SKIP() << "no python3 with torch (apt-get install python3-torch)";
  const auto readme = matvae_test::read_bytes(fs::path(MATVAE_SOURCE_DIR) / "README.md");
  const std::string text(readme.begin(), readme.end());
  const size_t at = text.find("## Using the codes from Python");
  ASSERT_NE(at, std::string::npos);
  const size_t begin = text.find("```python\n", at), end = text.find("```\n", begin + 10);
  ASSERT_NE(begin, std::string::npos);
  const std::string example = text.substr(begin + 10, end - begin - 10);
  // The files it names, made as its comments say.
  const fs::path run = trained("run", matvae::DecoderForm::kTied);
  matvae::export_run(run, dir() / "model.pt");
  matvae::write_codes_npy(run, dir() / "data", matvae::Split::kTest, 8, dir() / "codes.npy");
  matvae_test::write_bytes(dir() / "example.py", example);
  const auto out = matvae::run_process({matvae_test::torch_python(), "example.py"}, dir());
  EXPECT_EQ(out.exit_code, 0) << out.output << "\n--- the example:\n" << example;
}

}  // namespace
