// Self-distillation of every Matryoshka prefix toward the full code: each prefix's neighbour
// structure within the batch is pulled to the full code's, as 2D-Matryoshka and Starbucks align
// their layers and US-Nets distil in place. It aims at what k-NN sees: which codes lie near which.
#pragma once

#include <torch/torch.h>

#include <vector>

namespace matvae {

/// codes: [N, D], N >= 2; nesting: m_1 < ... < m_K = D -> [K]. Element k is the mean over the rows i
/// of KL(T_i || P_i^k), where the row P_i^k = softmax_j(-d_k(i, j) / (s_k * temperature)) over j != i,
/// d_k the squared distances of the prefix codes codes[:, :m_k], s_k their mean over the pairs
/// i != j (so that every prefix's similarities are on one scale), and T_i the same row of the full
/// code, with no gradient. Element K - 1 is 0. Differentiable in codes.
torch::Tensor loss_distill_prefixes(const torch::Tensor& codes, const std::vector<int64_t>& nesting,
                                    double temperature);

}  // namespace matvae
