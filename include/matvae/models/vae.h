// The one encoder/decoder family every model shares, so comparisons are fair:
// an MLP encoder to a diagonal Gaussian q(z|x), and an MLP decoder to per-pixel logits that can
// decode any prefix z[:m] of the nesting list (decoder_form.h: MRL-E "tied", MRL "separate", or
// more of the decoder per prefix).
// A plain VAE or MMD-VAE is simply the nesting list {D}.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "matvae/models/decoder_form.h"
#include "matvae/models/nesting.h"

namespace matvae {

struct VaeOptions {
  VaeOptions(int64_t input, int64_t latent) : input_(input), latent_(latent), nesting_({latent}) {}
  TORCH_ARG(int64_t, input);                          // P pixels
  TORCH_ARG(int64_t, latent);                         // D
  TORCH_ARG(std::vector<int64_t>, hidden) = {512, 256};  // encoder widths; the decoder mirrors them
  TORCH_ARG(std::vector<int64_t>, nesting);           // m_1 < ... < m_K = D
  TORCH_ARG(DecoderForm, decoder) = DecoderForm::kTied;
};

/// What one forward pass gives. mu, logvar, z: [N, D]; logits: [S, N, P], row s decoded from
/// z[:, :m_k] for k = prefixes[s] (every prefix, S = K, unless the pass asked for fewer).
struct VaeOutput {
  torch::Tensor mu;
  torch::Tensor logvar;
  torch::Tensor z;
  torch::Tensor logits;
  std::vector<int64_t> prefixes;  // indices into the nesting list, ascending
};

/// Where a forward pass's N rows sit in the batch they belong to: a data-parallel rank encodes rows
/// [offset, offset + N) of a batch of `total` and draws the whole batch's noise, so that its rows
/// get the same draws as in one process. total < 0: the rows are the whole batch.
struct BatchRows {
  int64_t offset = 0;
  int64_t total = -1;
};

class VaeImpl : public torch::nn::Module {
 public:
  explicit VaeImpl(const VaeOptions& options);

  /// x: [N, P] -> mu, logvar: [N, D].
  std::pair<torch::Tensor, torch::Tensor> encode(const torch::Tensor& x);

  /// The plain path: z: [N, m] with m in the nesting list -> logits [N, P].
  torch::Tensor decode(const torch::Tensor& z_prefix);

  /// The fast path: logits of every prefix of z: [N, D] -> [K, N, P], or of the prefixes whose
  /// nesting indices `which` lists (ascending) -> [S, N, P]. The first layer of all prefixes is one
  /// set of block products plus a cumulative sum (tied) and the rest of the decoder runs once on the
  /// stacked [S*N, H] activations.
  torch::Tensor decode_prefixes(const torch::Tensor& z, const std::vector<int64_t>& which = {});

  /// Samples z by reparameterisation with `gen` and decodes every prefix, or those in `which`.
  /// `code_mask` ([N, D], 0 or 1), if given, multiplies z before decoding (nested dropout and kin);
  /// out.z stays the unmasked code. `rows`: where x sits in its batch (data-parallel training).
  VaeOutput forward(const torch::Tensor& x, at::Generator gen, const std::vector<int64_t>& which = {},
                    const torch::Tensor& code_mask = {}, BatchRows rows = {});

  const VaeOptions& options() const { return options_; }

 private:
  // The forward passes run each Linear with the ReLU after it as one linear_relu (linear_relu.h), so
  // where a ReLU crosses from one part of the decoder to the next, the part before applies it.
  torch::Tensor decoder_rest(const torch::Tensor& h);  // the shared layers after the owned ones, to logits
  torch::Tensor first_layer(const torch::Tensor& pre_activation, const torch::Tensor& bias);  // tied: + bias (+ ReLU)
  torch::Tensor decode_owned(int64_t k, const torch::Tensor& z_prefix);  // prefix k's own layers (separate forms)
  std::vector<int64_t> check_prefixes(const std::vector<int64_t>& which) const;  // {} -> 0..K-1

  VaeOptions options_;
  torch::nn::Sequential encoder_{nullptr};
  torch::nn::Linear mu_head_{nullptr}, logvar_head_{nullptr};
  torch::nn::Linear first_tied_{nullptr};             // [H, D], tied form
  std::vector<torch::nn::Linear> first_separate_;     // [H, m_k] each, separate forms
  std::vector<torch::nn::Sequential> private_rest_;   // each prefix's further own layers (separate-2, independent)
  torch::nn::Sequential decoder_rest_{nullptr};       // null when every layer is a prefix's own
};
TORCH_MODULE(Vae);

/// Multiply-adds of one image's forward pass through the encoder and the decoder of every prefix of
/// the nesting list (the backward pass costs about twice as much, for every model alike): what
/// comparing models at equal compute counts.
int64_t forward_macs_per_image(const VaeOptions& options);

}  // namespace matvae
