// The one-pass Adam update; see fused_adam.h.
#include "matvae/train/fused_adam.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

namespace matvae {
namespace {

/// Whether every parameter with a gradient is something the fused loop handles.
bool fusable(const std::vector<torch::optim::OptimizerParamGroup>& groups) {
  for (const auto& group : groups) {
    if (static_cast<const torch::optim::AdamOptions&>(group.options()).amsgrad()) return false;
    for (const auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const auto& g = p.grad();
      if (!p.device().is_cpu() || p.scalar_type() != torch::kFloat32 || !p.is_contiguous() || g.is_sparse() ||
          g.scalar_type() != torch::kFloat32 || !g.is_contiguous() || g.sizes() != p.sizes())
        return false;
    }
  }
  return true;
}

/// Adam's update of n elements. A plain function, not the body of parallel_for's lambda: inside the
/// lambda, built with -fopenmp, GCC 12 did not vectorise the loop (-fopt-info-vec: "no vectype for
/// stmt"), and Adam went from 7% to 22% of a 1-thread step. Distinct tensors: the pointers do not alias.
void adam_update(float* __restrict w, const float* __restrict g, float* __restrict m, float* __restrict v,
                 int64_t n, const FusedAdam::Scalars k) {
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i] + k.decay * w[i];  // decay 0 adds an exact 0
    const float mi = m[i] * k.b1 + k.one_minus_b1 * gi;
    const float vi = v[i] * k.b2 + k.one_minus_b2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] += k.neg_step * (mi / (std::sqrt(vi) / k.sqrt_bc2 + k.eps));
  }
}

/// out = a + b over n elements (out may be a).
void add_two(float* out, const float* a, const float* __restrict b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

/// adam_update with the gradient the sum of two ranks' (a + b), summed as it is read: one loop over
/// six streams (a buffered sum, as for more ranks, measured 1.2-1.7x slower here).
void adam_update_sum2(float* __restrict w, const float* __restrict a, const float* __restrict b, float* __restrict m,
                      float* __restrict v, int64_t n, const FusedAdam::Scalars k) {
  for (int64_t i = 0; i < n; ++i) {
    const float gi = (a[i] + b[i]) + k.decay * w[i];
    const float mi = m[i] * k.b1 + k.one_minus_b1 * gi;
    const float vi = v[i] * k.b2 + k.one_minus_b2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] += k.neg_step * (mi / (std::sqrt(vi) / k.sqrt_bc2 + k.eps));
  }
}

}  // namespace

torch::Tensor FusedAdam::step(LossClosure closure) {
  if (!fusable(param_groups_)) return torch::optim::Adam::step(std::move(closure));
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  if (!plan_step()) return torch::optim::Adam::step();
  for (const Planned& p : planned_) {
    at::parallel_for(0, p.n, 1 << 15, [&](int64_t begin, int64_t end) {
      adam_update(p.w + begin, p.g + begin, p.m + begin, p.v + begin, end - begin, p.k);
    });
  }
  planned_.clear();
  return loss;
}

void FusedAdam::set_lr(double lr) {
  for (auto& group : param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
}

bool FusedAdam::plan_step() {
  planned_.clear();
  if (!fusable(param_groups_)) return false;
  torch::NoGradGuard no_grad;
  size_t index = 0;
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const torch::optim::AdamOptions&>(group.options());
    for (auto& p : group.params()) {
      const size_t at = index++;
      if (!p.grad().defined()) continue;
      // The state Adam keeps, created as Adam creates it.
      const std::string key = c10::guts::to_string(p.unsafeGetTensorImpl());
      auto it = state_.find(key);
      if (it == state_.end()) {
        auto fresh = std::make_unique<torch::optim::AdamParamState>();
        fresh->step(0);
        fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        it = state_.emplace(key, std::move(fresh)).first;
      }
      auto& state = static_cast<torch::optim::AdamParamState&>(*it->second);
      state.step(state.step() + 1);
      const double beta1 = std::get<0>(options.betas()), beta2 = std::get<1>(options.betas());
      const double bias_correction1 = 1 - std::pow(beta1, state.step());
      const double bias_correction2 = 1 - std::pow(beta2, state.step());
      // Adam's arithmetic, in its order, with its scalars cast to float as ATen casts them.
      planned_.push_back({p.data_ptr<float>(), state.exp_avg().data_ptr<float>(), state.exp_avg_sq().data_ptr<float>(),
                          p.grad().data_ptr<float>(), p.numel(),
                          Scalars{static_cast<float>(beta1), static_cast<float>(1 - beta1), static_cast<float>(beta2),
                                  static_cast<float>(1 - beta2), static_cast<float>(std::sqrt(bias_correction2)),
                                  static_cast<float>(options.eps()), static_cast<float>(-options.lr() / bias_correction1),
                                  static_cast<float>(options.weight_decay())},
                          at});
    }
  }
  return true;
}

void FusedAdam::update_part(int64_t part, int64_t parts) const {
  for (const Planned& p : planned_) {
    const int64_t begin = p.n * part / parts, end = p.n * (part + 1) / parts;
    adam_update(p.w + begin, p.g + begin, p.m + begin, p.v + begin, end - begin, p.k);
  }
}

void FusedAdam::update_part_of_sum(int64_t part, int64_t parts,
                                   const std::vector<std::vector<torch::Tensor>>& ranks_parameters) const {
  const size_t ranks = ranks_parameters.size();
  TORCH_CHECK(ranks >= 1, "FusedAdam::update_part_of_sum: no ranks");
  std::vector<const float*> g(ranks);
  // For 3 or more ranks, the sum of a chunk of their gradients, in rank order (the order of the
  // all-reduce it replaces), kept in L1 for the update that reads it. (With 1,024 floats a chunk the
  // update ran 1.4x slower than an all-reduce and update_part: bench/bench_adam.cpp.)
  constexpr int64_t kChunk = 256;
  alignas(64) float sum[kChunk];
  for (const Planned& p : planned_) {
    for (size_t r = 0; r < ranks; ++r) {
      TORCH_CHECK(p.index < ranks_parameters[r].size(), "FusedAdam::update_part_of_sum: rank ", r, " has ",
                  ranks_parameters[r].size(), " parameters");
      const auto& w = ranks_parameters[r][p.index];
      const auto& grad = w.grad();
      TORCH_CHECK(w.data_ptr() == p.w && grad.defined() && grad.scalar_type() == torch::kFloat32 &&
                      grad.is_contiguous() && grad.numel() == p.n,
                  "FusedAdam::update_part_of_sum: rank ", r, "'s parameter ", p.index,
                  " is not the planned one or has no float32 gradient of its size");
      g[r] = grad.data_ptr<float>();
    }
    const int64_t begin = p.n * part / parts, end = p.n * (part + 1) / parts;
    if (ranks == 1) {
      adam_update(p.w + begin, g[0] + begin, p.m + begin, p.v + begin, end - begin, p.k);
    } else if (ranks == 2) {  // the common case: one pass, no buffer
      adam_update_sum2(p.w + begin, g[0] + begin, g[1] + begin, p.m + begin, p.v + begin, end - begin, p.k);
    } else {
      for (int64_t at = begin; at < end; at += kChunk) {
        const int64_t n = std::min(kChunk, end - at);
        add_two(sum, g[0] + at, g[1] + at, n);
        for (size_t r = 2; r < ranks; ++r) add_two(sum, sum, g[r] + at, n);
        adam_update(p.w + at, sum, p.m + at, p.v + at, n, p.k);
      }
    }
  }
}

}  // namespace matvae
