// Self-distillation toward the full code; see distill.h.
#include "matvae/losses/distill.h"

namespace matvae {
namespace {

/// [N, N] log-similarity rows from squared distances, the diagonal left out (a very negative logit,
/// finite so that 0 * logit stays 0).
torch::Tensor log_rows(const torch::Tensor& d2, double temperature, const torch::Tensor& diagonal) {
  const int64_t n = d2.size(0);
  const auto scale = (d2.sum() / static_cast<double>(n * (n - 1))).detach().clamp_min(1e-12);
  return torch::log_softmax((-d2 / (scale * temperature)).masked_fill(diagonal, -1e4), 1);
}

}  // namespace

torch::Tensor loss_distill_prefixes(const torch::Tensor& codes, const std::vector<int64_t>& nesting,
                                    double temperature) {
  TORCH_CHECK(codes.dim() == 2 && codes.size(0) >= 2, "loss_distill_prefixes: expected codes [N, D] with N >= 2, got ",
              codes.sizes());
  TORCH_CHECK(!nesting.empty() && nesting.back() == codes.size(1),
              "loss_distill_prefixes: expected a nesting list ending at D = ", codes.size(1), ", got ",
              c10::IntArrayRef(nesting));
  TORCH_CHECK(temperature > 0, "loss_distill_prefixes: expected a temperature > 0, got ", temperature);
  const int64_t n = codes.size(0);
  const auto diagonal = torch::eye(n, codes.options().dtype(torch::kBool));
  // Squared distances per block of columns, summed cumulatively: every prefix's at the cost of one.
  std::vector<torch::Tensor> d2;
  torch::Tensor running;
  int64_t start = 0;
  for (const int64_t end : nesting) {
    TORCH_CHECK(end > start, "loss_distill_prefixes: expected a strictly increasing nesting list, got ",
                c10::IntArrayRef(nesting));
    const auto block = codes.narrow(1, start, end - start);
    const auto sq = block.square().sum(1);
    const auto part = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * block.matmul(block.t())).clamp_min(0.0);
    running = running.defined() ? running + part : part;
    d2.push_back(running);
    start = end;
  }
  const auto log_target = log_rows(d2.back().detach(), temperature, diagonal);
  const auto target = log_target.exp();
  std::vector<torch::Tensor> out;
  for (size_t k = 0; k + 1 < d2.size(); ++k) {
    const auto log_p = log_rows(d2[k], temperature, diagonal);
    out.push_back((target * (log_target - log_p)).sum(1).mean());
  }
  out.push_back(torch::zeros({}, codes.options()));
  return torch::stack(out);
}

}  // namespace matvae
