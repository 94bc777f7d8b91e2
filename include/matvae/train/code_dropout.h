// The ordered-code rivals of the Matryoshka loss: masks that hide the tail of the code from the
// decoder during training, so that a model of size D learns to put what matters first.
// Nested dropout (Rippel, Gelbart, Adams, ICML 2014) keeps a random prefix per image, its length
// from a geometric law; TailDrop (after the rateless autoencoder of Koike-Akino & Wang, 2020)
// drops each unit with a rate that rises along the latent index.
#pragma once

#include <torch/torch.h>

#include "matvae/train/config.h"

namespace matvae {

/// Nested dropout's cut points for n images: b in 1..d with P(b) = p (1 - p)^(b - 1) for b < d and
/// the rest of the mass, (1 - p)^(d - 1), at d. -> [n] int64.
torch::Tensor draw_nested_cuts(int64_t n, int64_t d, double p, at::Generator gen);

/// [n, d] float32 mask of 0s and 1s for one batch, drawn with `gen`: nested keeps z[:b] per image,
/// taildrop keeps unit i with probability 1 - rate * i / (d - 1). Undefined for CodeDropout::kNone
/// (and nothing is drawn, so runs without dropout take the same random numbers as before).
torch::Tensor draw_code_mask(CodeDropout kind, double rate, int64_t n, int64_t d, at::Generator gen);

}  // namespace matvae
