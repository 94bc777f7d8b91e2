// The VAE family: the tied decoder's prefix semantics, the fast all-prefix decoder against the
// plain one, and the nesting checks.
#include <gtest/gtest.h>

#include "matvae/models/vae.h"
#include "matvae/util/error.h"
#include "test_util.h"

namespace {
using matvae::DecoderForm;
using matvae::Vae;
using matvae::VaeOptions;
using matvae_test::tensors_close;

class VaeTest : public matvae_test::SeededTest {};

TEST_F(VaeTest, TiedPrefixEqualsFullDecoderWithTailZeroed) {
  Vae model(VaeOptions(20, 8).hidden({16, 12}).nesting({2, 4, 8}).decoder(DecoderForm::kTied));
  const auto z = torch::randn({5, 8});
  for (int64_t m : {2, 4, 8}) {
    SCOPED_TRACE("m = " + std::to_string(m));
    auto padded = z.clone();
    padded.narrow(1, m, 8 - m).zero_();
    EXPECT_TRUE(tensors_close(model->decode(z.narrow(1, 0, m)), model->decode(padded), 1e-5));
  }
  // And the prefix decoding really ignores the tail: changing z[m:] changes nothing.
  auto other = z.clone();
  other.narrow(1, 4, 4).normal_();
  EXPECT_TRUE(tensors_close(model->decode(other.narrow(1, 0, 4)), model->decode(z.narrow(1, 0, 4)), 0));
  EXPECT_FALSE(tensors_close(model->decode(other), model->decode(z), 1e-3));
}

TEST_F(VaeTest, FastPrefixDecoderMatchesPlainDecoder) {
  for (DecoderForm form : {DecoderForm::kTied, DecoderForm::kSeparate}) {
    SCOPED_TRACE(matvae::to_string(form));
    Vae model(VaeOptions(30, 16).hidden({24}).nesting({2, 4, 8, 16}).decoder(form));
    const auto z = torch::randn({7, 16});
    const auto all = model->decode_prefixes(z);
    ASSERT_EQ(all.sizes(), (std::vector<int64_t>{4, 7, 30}));
    int64_t k = 0;
    for (int64_t m : {2, 4, 8, 16}) EXPECT_TRUE(tensors_close(all[k++], model->decode(z.narrow(1, 0, m)), 1e-5));
  }
}

TEST_F(VaeTest, DecodingSomePrefixesGivesTheirRowsOfAll) {
  // Prefix sampling's path (only the drawn prefixes through the decoder) against the all-prefix one.
  for (DecoderForm form : {DecoderForm::kTied, DecoderForm::kSeparate}) {
    SCOPED_TRACE(matvae::to_string(form));
    Vae model(VaeOptions(30, 16).hidden({24}).nesting({2, 4, 8, 16}).decoder(form));
    const auto z = torch::randn({7, 16});
    const auto all = model->decode_prefixes(z);
    for (const std::vector<int64_t>& which :
         std::vector<std::vector<int64_t>>{{0}, {1, 2}, {0, 3}, {3}, {0, 1, 2, 3}}) {
      SCOPED_TRACE(::testing::PrintToString(which));
      const auto some = model->decode_prefixes(z, which);
      ASSERT_EQ(some.size(0), static_cast<int64_t>(which.size()));
      EXPECT_TRUE(tensors_close(some, all.index_select(0, torch::tensor(which)), 1e-5));
    }
    // Not ascending, repeated or out of range: refused.
    for (const std::vector<int64_t>& bad : std::vector<std::vector<int64_t>>{{2, 1}, {1, 1}, {4}, {-1}}) {
      EXPECT_THROW(model->decode_prefixes(z, bad), c10::Error);
    }
    // forward records what it decoded: everything by default.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
    EXPECT_EQ(model->forward(torch::rand({3, 30}), gen).prefixes, (std::vector<int64_t>{0, 1, 2, 3}));
    EXPECT_EQ(model->forward(torch::rand({3, 30}), gen, {1, 3}).prefixes, (std::vector<int64_t>{1, 3}));
  }
}

TEST_F(VaeTest, SeparateDecodersHaveTheirOwnFirstLayer) {
  Vae model(VaeOptions(10, 4).hidden({8}).nesting({2, 4}).decoder(DecoderForm::kSeparate));
  const auto params = model->named_parameters();
  EXPECT_EQ(params["decoder_first_2.weight"].sizes(), (std::vector<int64_t>{8, 2}));
  EXPECT_EQ(params["decoder_first_4.weight"].sizes(), (std::vector<int64_t>{8, 4}));
  // Zeroing the tail is NOT the same as the m = 2 decoder here: they are different layers.
  const auto z = torch::randn({3, 4});
  auto padded = z.clone();
  padded.narrow(1, 2, 2).zero_();
  EXPECT_FALSE(tensors_close(model->decode(z.narrow(1, 0, 2)), model->decode(padded), 1e-4));
}

TEST_F(VaeTest, ForwardShapesAndReparameterisation) {
  Vae model(VaeOptions(12, 6).hidden({10, 8}).nesting({3, 6}));
  const auto x = torch::rand({4, 12});
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const auto out = model->forward(x, gen);
  EXPECT_EQ(out.mu.sizes(), (std::vector<int64_t>{4, 6}));
  EXPECT_EQ(out.logvar.sizes(), (std::vector<int64_t>{4, 6}));
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{2, 4, 12}));
  // z = mu + eps * sigma with eps drawn from the given generator.
  auto gen2 = at::make_generator<at::CPUGeneratorImpl>(5);
  const auto eps = at::randn({4, 6}, gen2, torch::TensorOptions());
  EXPECT_TRUE(tensors_close(out.z, out.mu + eps * torch::exp(0.5 * out.logvar), 1e-6));
}

/// A submodule of `model` by its registered name, as the type it was registered with.
template <class M>
std::shared_ptr<M> child(const Vae& model, const std::string& name) {
  const auto c = std::dynamic_pointer_cast<M>(model->named_children()[name]);
  if (!c) throw std::runtime_error("no child " + name);
  return c;
}

/// Prefix m's logits through the registered modules' own forward passes (Linear, ReLU, Sequential):
/// the reference for the model's fused layers, which place each ReLU themselves.
torch::Tensor decode_by_hand(const Vae& model, const torch::Tensor& z, int64_t m) {
  const auto children = model->named_children();
  const auto zm = z.narrow(1, 0, m);
  torch::Tensor h;
  if (model->options().decoder() == DecoderForm::kTied) {
    const auto first = child<torch::nn::LinearImpl>(model, "decoder_first");
    h = torch::nn::functional::linear(zm, first->weight.narrow(1, 0, m), first->bias);
  } else {
    h = child<torch::nn::LinearImpl>(model, "decoder_first_" + std::to_string(m))->forward(zm);
    if (children.contains("decoder_private_" + std::to_string(m)))
      h = child<torch::nn::SequentialImpl>(model, "decoder_private_" + std::to_string(m))->forward(h);
  }
  if (children.contains("decoder_rest")) h = child<torch::nn::SequentialImpl>(model, "decoder_rest")->forward(h);
  return h;
}

TEST_F(VaeTest, ForwardMatchesTheLayersComposedByHand) {
  // Every decoder form, two hidden layers: value and parameter gradients of encode and decode.
  for (DecoderForm form :
       {DecoderForm::kTied, DecoderForm::kSeparate, DecoderForm::kSeparateTwo, DecoderForm::kIndependent}) {
    SCOPED_TRACE(matvae::to_string(form));
    Vae model(VaeOptions(30, 8).hidden({24, 16}).nesting({2, 4, 8}).decoder(form));
    const auto x = torch::rand({9, 30});
    const auto [mu, logvar] = model->encode(x);
    const auto h = child<torch::nn::SequentialImpl>(model, "encoder")->forward(x);
    EXPECT_TRUE(tensors_close(mu, child<torch::nn::LinearImpl>(model, "mu")->forward(h), 1e-5));
    EXPECT_TRUE(tensors_close(logvar, child<torch::nn::LinearImpl>(model, "logvar")->forward(h), 1e-5));

    const auto z = torch::randn({9, 8});
    const auto w = torch::randn({3, 9, 30});
    const auto all = model->decode_prefixes(z);
    std::vector<torch::Tensor> by_hand;
    for (int64_t m : {2, 4, 8}) by_hand.push_back(decode_by_hand(model, z, m));
    const auto want = torch::stack(by_hand);
    ASSERT_TRUE(tensors_close(all, want, 1e-5));
    for (int64_t k = 0; k < 3; ++k) EXPECT_TRUE(tensors_close(model->decode(z.narrow(1, 0, 2 << k)), want[k], 1e-5));

    // The gradients to every parameter, through the encoder too (z from mu).
    const auto loss = [&](bool fused) {
      model->zero_grad();
      const auto code = model->encode(x).first;
      std::vector<torch::Tensor> rows;
      if (!fused)
        for (int64_t m : {2, 4, 8}) rows.push_back(decode_by_hand(model, code, m));
      (fused ? model->decode_prefixes(code) : torch::stack(rows)).mul(w).sum().backward();
      std::vector<torch::Tensor> grads;
      for (const auto& p : model->parameters()) grads.push_back(p.grad().defined() ? p.grad().clone() : torch::Tensor());
      return grads;
    };
    const auto fused = loss(true), plain = loss(false);
    ASSERT_EQ(fused.size(), plain.size());
    for (size_t i = 0; i < fused.size(); ++i) {
      SCOPED_TRACE("parameter " + std::to_string(i));
      ASSERT_EQ(fused[i].defined(), plain[i].defined());
      if (fused[i].defined()) EXPECT_TRUE(tensors_close(fused[i], plain[i], 1e-4));
    }
  }
}

TEST(NestingTest, RejectsBadLists) {
  using matvae::check_nesting;
  using matvae::UsageError;
  EXPECT_NO_THROW(check_nesting({2, 4, 8}, 8));
  EXPECT_TRUE(matvae_test::contains(matvae_test::error_message<UsageError>([] { check_nesting({2, 8, 4}, 4); }),
                                    "strictly increase"));
  EXPECT_TRUE(matvae_test::contains(matvae_test::error_message<UsageError>([] { check_nesting({2, 4, 4}, 4); }),
                                    "strictly increase"));
  EXPECT_TRUE(matvae_test::contains(matvae_test::error_message<UsageError>([] { check_nesting({2, 4}, 8); }),
                                    "must equal the latent size 8"));
  EXPECT_TRUE(matvae_test::contains(matvae_test::error_message<UsageError>([] { check_nesting({0, 4}, 4); }),
                                    "not positive"));
  EXPECT_TRUE(matvae_test::contains(matvae_test::error_message<UsageError>([] { check_nesting({}, 4); }), "empty"));
}

}  // namespace
