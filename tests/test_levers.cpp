// The levers of the Matryoshka objective and its rivals, each against a known answer: nested
// dropout's cut points follow the geometric law, TailDrop's rates rise along the index, the
// self-distillation term is 0 when every prefix sees the full code's neighbours, balanced terms of a
// step are each 1, a warm start copies exactly the weights it names, the decoder forms decode each
// prefix as the plain path does, and a run extended to more epochs ends where a longer run would.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "matvae/experiment/plan.h"
#include "matvae/losses/distill.h"
#include "matvae/models/vae.h"
#include "matvae/train/code_dropout.h"
#include "matvae/train/objective.h"
#include "matvae/train/run_folder.h"
#include "matvae/train/trainer.h"
#include "matvae/train/warm_start.h"
#include "matvae/util/error.h"
#include "test_util.h"

namespace {
namespace fs = std::filesystem;
using matvae::TrainConfig;
using matvae_test::contains;
using matvae_test::tensors_close;

at::Generator gen(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

TEST(NestedDropout, CutPointsFollowTheGeometricLaw) {
  constexpr int64_t kDraws = 100000, kD = 8;
  constexpr double kP = 0.3;
  const auto cuts = matvae::draw_nested_cuts(kDraws, kD, kP, gen(1));
  ASSERT_EQ(cuts.min().item<int64_t>(), 1);
  ASSERT_EQ(cuts.max().item<int64_t>(), kD);
  const auto counts = torch::bincount(cuts, {}, kD + 1);
  for (int64_t b = 1; b <= kD; ++b) {
    // P(b) = p (1-p)^(b-1) below D, and the whole tail (1-p)^(D-1) at D.
    const double expected = b < kD ? kP * std::pow(1 - kP, b - 1) : std::pow(1 - kP, kD - 1);
    const double got = counts[b].item<double>() / kDraws;
    const double sigma = std::sqrt(expected * (1 - expected) / kDraws);
    EXPECT_NEAR(got, expected, 5 * sigma) << "b = " << b;
  }
  // The mask keeps exactly the first b units of each row.
  const auto mask = matvae::draw_code_mask(matvae::CodeDropout::kNested, kP, 1000, kD, gen(2));
  const auto kept = mask.sum(1);
  const auto again = matvae::draw_nested_cuts(1000, kD, kP, gen(2)).to(torch::kFloat32);
  EXPECT_TRUE(tensors_close(kept, again, 0));
  EXPECT_TRUE(tensors_close(mask, torch::arange(kD).unsqueeze(0).lt(again.unsqueeze(1)).to(torch::kFloat32), 0));
}

TEST(TailDrop, RatesRiseLinearlyAlongTheIndex) {
  constexpr int64_t kRows = 100000, kD = 5;
  const auto mask = matvae::draw_code_mask(matvae::CodeDropout::kTailDrop, 0.8, kRows, kD, gen(3));
  const auto kept = mask.mean(0);
  for (int64_t i = 0; i < kD; ++i) EXPECT_NEAR(kept[i].item<double>(), 1 - 0.8 * i / (kD - 1), 0.006) << i;
  EXPECT_EQ(mask[0][0].item<float>(), 1.0f);  // the first unit is never dropped
}

TEST(CodeDropout, NoneDrawsNothing) {
  auto g = gen(4);
  const auto before = g.get_state();
  EXPECT_FALSE(matvae::draw_code_mask(matvae::CodeDropout::kNone, 0.1, 10, 8, g).defined());
  EXPECT_TRUE(torch::equal(g.get_state(), before));  // runs without dropout keep their random numbers
}

TEST(Distill, ZeroWhenEveryPrefixSeesTheFullCodesNeighbours) {
  torch::manual_seed(5);
  // Codes whose dimensions past 2 are zero: every prefix's distances are the full code's.
  auto codes = torch::zeros({16, 8});
  codes.narrow(1, 0, 2).copy_(torch::randn({16, 2}));
  const auto zero = matvae::loss_distill_prefixes(codes, {2, 4, 8}, 0.1);
  EXPECT_TRUE(tensors_close(zero, torch::zeros({3}), 1e-6));
  // Otherwise positive at the prefixes, 0 at the full code, and differentiable.
  auto other = torch::randn({16, 8}).requires_grad_(true);
  const auto kl = matvae::loss_distill_prefixes(other, {2, 4, 8}, 0.1);
  EXPECT_GT(kl[0].item<double>(), 1e-3);
  EXPECT_GT(kl[0].item<double>(), kl[1].item<double>());  // a longer prefix is closer to the full code
  EXPECT_EQ(kl[2].item<double>(), 0.0);
  kl.sum().backward();
  EXPECT_TRUE(other.grad().isfinite().all().item<bool>());
  EXPECT_GT(other.grad().abs().max().item<double>(), 0);
}

TEST(Balance, EachBalancedTermOfAStepIsOne) {
  torch::manual_seed(6);
  TrainConfig c;
  c.latent = 8;
  c.hidden = {16};
  c.weights = {1.0, 2.0, 3.0};
  matvae::resolve(c);  // nesting 2, 4, 8
  matvae::Vae model(matvae::VaeOptions(20, 8).hidden({16}).nesting(c.nesting));
  const auto x = torch::rand({12, 20});
  const matvae::Objective objective(c);
  const auto out = model->forward(x, gen(7));
  const auto plain = objective(out, x, gen(8));
  // Divided by their own values, the brackets are 1 each: the total is the sum of the weights.
  const auto v = plain.terms.to(torch::kFloat64).contiguous();
  const std::vector<double> own(v.data_ptr<double>(), v.data_ptr<double>() + 3);
  EXPECT_NEAR(objective(out, x, gen(8), 1.0, own).total.item<double>(), 6.0, 1e-5);
  // A prefix without a running mean yet is divided by its own value too.
  EXPECT_NEAR(objective(out, x, gen(8), 1.0, {NAN, own[1], own[2]}).total.item<double>(), 6.0, 1e-5);
  // Twice the divisor, half the term; the unbalanced total is the plain sum.
  EXPECT_NEAR(objective(out, x, gen(8), 1.0, {2 * own[0], own[1], own[2]}).total.item<double>(), 5.5, 1e-5);
  EXPECT_NEAR(plain.total.item<double>(), own[0] + 2 * own[1] + 3 * own[2], 1e-2);
}

TEST(DecoderForms, EveryFormDecodesEachPrefixAsThePlainPathDoes) {
  torch::manual_seed(9);
  const auto z = torch::randn({5, 8});
  for (const auto form : {matvae::DecoderForm::kTied, matvae::DecoderForm::kSeparate, matvae::DecoderForm::kSeparateTwo,
                          matvae::DecoderForm::kIndependent}) {
    SCOPED_TRACE(matvae::to_string(form));
    matvae::Vae vae(matvae::VaeOptions(12, 8).hidden({16, 10}).nesting({2, 4, 8}).decoder(form));
    const auto all = vae->decode_prefixes(z);
    ASSERT_EQ(all.sizes(), (std::vector<int64_t>{3, 5, 12}));
    for (int k = 0; k < 3; ++k) {
      const int64_t m = std::vector<int64_t>{2, 4, 8}[k];
      EXPECT_TRUE(tensors_close(all[k], vae->decode(z.narrow(1, 0, m)), 1e-5)) << "m = " << m;
    }
    const auto params = vae->named_parameters();
    const bool shared_rest = params.contains("decoder_rest.1.weight");
    EXPECT_EQ(shared_rest, form != matvae::DecoderForm::kIndependent);
    EXPECT_EQ(params.contains("decoder_private_2.1.weight"),
              form == matvae::DecoderForm::kSeparateTwo || form == matvae::DecoderForm::kIndependent);
  }
  EXPECT_EQ(matvae::private_layers(matvae::DecoderForm::kSeparateTwo, 3), 2);
  EXPECT_EQ(matvae::private_layers(matvae::DecoderForm::kIndependent, 3), 3);
}

TEST(WarmStart, CopiesExactlyTheWeightsItNames) {
  torch::manual_seed(10);
  matvae::Vae source(matvae::VaeOptions(12, 8).hidden({16}));  // a plain model, nesting {8}
  matvae::Vae target(matvae::VaeOptions(12, 8).hidden({16}).nesting({2, 4, 8}).decoder(matvae::DecoderForm::kSeparate));
  const auto untouched = target->named_parameters()["decoder_first_2.weight"].clone();
  const auto filled = matvae::warm_start(target, source);
  const auto s = source->named_parameters(), t = target->named_parameters();
  for (const char* name : {"encoder.0.weight", "encoder.0.bias", "mu.weight", "logvar.bias", "decoder_rest.1.weight"}) {
    EXPECT_TRUE(torch::equal(t[name], s[name])) << name;
    EXPECT_NE(std::find(filled.begin(), filled.end(), name), filled.end()) << name;
  }
  // Each separate first layer is the tied one's first m columns, with its bias.
  for (const int64_t m : {2, 4, 8}) {
    const std::string w = "decoder_first_" + std::to_string(m);
    EXPECT_TRUE(torch::equal(t[w + ".weight"], s["decoder_first.weight"].narrow(1, 0, m))) << m;
    EXPECT_TRUE(torch::equal(t[w + ".bias"], s["decoder_first.bias"])) << m;
  }
  EXPECT_FALSE(torch::equal(untouched, t["decoder_first_2.weight"]));
  EXPECT_EQ(filled.size(), t.size());  // every parameter of this target had a source
  // Another encoder is refused by name.
  matvae::Vae wide(matvae::VaeOptions(12, 8).hidden({32}));
  EXPECT_TRUE(contains(matvae_test::error_message<matvae::Error>([&] { matvae::warm_start(target, wide); }),
                       "encoder.0.weight"));
}

TEST(ComputeMatched, EpochsAreTheSeparateModelsMultiplyAddsOverOnes) {
  // Encoder 12*16 + 2*16*m... by hand for P = 12, hidden {16}, nesting {2, 8}:
  // a model of size m: encoder 12*16 + 2*16*m, decoder m*16 + 16*12.
  const auto macs = [](int64_t m) { return 12 * 16 + 2 * 16 * m + m * 16 + 16 * 12; };
  EXPECT_EQ(matvae::forward_macs_per_image(matvae::VaeOptions(12, 2).hidden({16})), macs(2));
  const int64_t mrl = 12 * 16 + 2 * 16 * 8 + (2 * 16 + 16 * 12) + (8 * 16 + 16 * 12);
  EXPECT_EQ(matvae::forward_macs_per_image(matvae::VaeOptions(12, 8).hidden({16}).nesting({2, 8})), mrl);
  TrainConfig c;
  c.latent = 8;
  c.hidden = {16};
  c.nesting = {2, 8};
  c.epochs = 10;
  matvae::resolve(c);
  const int64_t want = (10 * (macs(2) + macs(8)) + mrl - 1) / mrl;
  EXPECT_EQ(matvae::compute_matched_epochs(c, 12), want);
  EXPECT_GT(want, 10);
}

class Extend : public matvae_test::TempDirTest {
 protected:
  TrainConfig small(int64_t epochs) {
    matvae_test::write_small_idx_folder(dir() / "data", 120, 30, 6, 5);
    TrainConfig c;
    c.data = (dir() / "data").string();
    c.latent = 4;
    c.hidden = {16};
    c.batch_size = 20;
    c.epochs = epochs;
    c.threads = 1;
    c.balance = matvae::Balance::kRunningMean;  // the resume state carries the running means too
    return c;
  }
  static std::vector<nlohmann::json> metrics(const fs::path& run) {
    std::vector<nlohmann::json> out;
    std::ifstream in(run / "metrics.jsonl");
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line);
      j.erase("seconds");
      j.erase("images_per_s");
      out.push_back(j);
    }
    return out;
  }
};

TEST_F(Extend, AnExtendedRunEndsWhereALongerRunWould) {
  matvae::train(small(2), dir() / "short");
  matvae::train(small(3), dir() / "long");
  const auto r = matvae::resume(dir() / "short", {}, std::nullopt, 3);
  EXPECT_FALSE(r.interrupted);
  EXPECT_EQ(r.epochs_done, 3);
  EXPECT_EQ(metrics(dir() / "short"), metrics(dir() / "long"));
  const auto a = matvae::RunFolder(dir() / "short").load(), b = matvae::RunFolder(dir() / "long").load();
  EXPECT_EQ(a.config.epochs, 3);
  const auto pa = a.model->parameters(), pb = b.model->parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i])) << i;
  // Fewer epochs is refused, and says why.
  EXPECT_TRUE(contains(matvae_test::error_message<matvae::UsageError>(
                           [&] { matvae::resume(dir() / "short", {}, std::nullopt, 2); }),
                       "only extends"));
}

TEST_F(Extend, ARunWhoseRateIsAnnealedIsNotExtended) {
  // Its rate depends on the epoch count: an extended run would not be the longer run. The refusal
  // names the flag and the schedule, and leaves the run as it was.
  TrainConfig c = small(2);
  c.lr_schedule = matvae::LrSchedule::kCosine;
  matvae::train(c, dir() / "run");
  const auto before = metrics(dir() / "run");
  const std::string why = matvae_test::error_message<matvae::UsageError>(
      [&] { matvae::resume(dir() / "run", {}, std::nullopt, 3); });
  EXPECT_TRUE(contains(why, "--epochs 3")) << why;
  EXPECT_TRUE(contains(why, "lr_schedule = cosine")) << why;
  EXPECT_EQ(metrics(dir() / "run"), before);
  EXPECT_EQ(matvae::RunFolder(dir() / "run").load().config.epochs, 2);
  // Resuming it at its own epoch count is no extension.
  EXPECT_FALSE(matvae::resume(dir() / "run", {}, std::nullopt, 2).interrupted);
}

TEST_F(Extend, TheCommandLineTakesEpochsWithResumeAndNothingElse) {
  matvae::train(small(1), dir() / "run");
  const auto ok = matvae_test::run_matvae({"train", "--resume", (dir() / "run").string(), "--epochs", "2", "--quiet"});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_EQ(metrics(dir() / "run").size(), 2u);
  const auto bad = matvae_test::run_matvae({"train", "--resume", (dir() / "run").string(), "--lr", "0.1", "--quiet"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(contains(bad.output, "--lr"));
}

}  // namespace
