// Code masks of nested dropout and TailDrop; see code_dropout.h.
#include "matvae/train/code_dropout.h"

#include <cmath>

namespace matvae {

torch::Tensor draw_nested_cuts(int64_t n, int64_t d, double p, at::Generator gen) {
  TORCH_CHECK(p > 0 && p < 1, "draw_nested_cuts: expected p in (0, 1), got ", p);
  // Inversion: b = 1 + floor(log(1 - u) / log(1 - p)) is geometric on 1, 2, ... for u uniform in [0, 1).
  const auto u = at::rand({n}, gen, torch::TensorOptions().dtype(torch::kFloat64));
  const auto b = 1 + torch::floor(torch::log1p(-u) / std::log1p(-p));
  return b.clamp_max(static_cast<double>(d)).to(torch::kInt64);
}

torch::Tensor draw_code_mask(CodeDropout kind, double rate, int64_t n, int64_t d, at::Generator gen) {
  switch (kind) {
    case CodeDropout::kNone:
      return {};
    case CodeDropout::kNested: {
      const auto cuts = draw_nested_cuts(n, d, rate, gen);
      return (torch::arange(d, torch::kInt64).unsqueeze(0) < cuts.unsqueeze(1)).to(torch::kFloat32);
    }
    case CodeDropout::kTailDrop: {
      const auto index = torch::arange(d, torch::kFloat32);
      const auto drop = d > 1 ? index * static_cast<float>(rate / static_cast<double>(d - 1)) : torch::zeros({d});
      return (at::rand({n, d}, gen, torch::TensorOptions()) >= drop.unsqueeze(0)).to(torch::kFloat32);
    }
  }
  TORCH_INTERNAL_ASSERT(false, "unhandled CodeDropout ", static_cast<int>(kind));
}

}  // namespace matvae
