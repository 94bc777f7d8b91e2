// The fused reparameterisation; see reparameterize.h. Compiled with -ffast-math (CMakeLists.txt) so
// that GCC vectorises exp through glibc's libmvec: the loops hold plain arithmetic and test for
// nothing, so a NaN in mu or logvar still comes out as a NaN in z.
#include "matvae/models/reparameterize.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

// The loops, once for AVX2 and once for any x86-64, chosen when the program loads.
#define MATVAE_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))

namespace matvae {
namespace {

constexpr int64_t kGrain = 1 << 14;  // elements per parallel task, at least

/// z = mu + eps * exp(logvar / 2) and noise = eps * exp(logvar / 2), over n elements.
MATVAE_VECTOR_CLONES void forward_span(const float* __restrict mu, const float* __restrict logvar,
                                       const float* __restrict eps, float* __restrict z, float* __restrict noise,
                                       int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float e = eps[i] * std::exp(0.5f * logvar[i]);
    noise[i] = e;
    z[i] = mu[i] + e;
  }
}

/// d z / d logvar = noise / 2, so the gradient to logvar is g * noise / 2.
MATVAE_VECTOR_CLONES void backward_span(const float* __restrict g, const float* __restrict noise,
                                        float* __restrict grad_logvar, int64_t n) {
  for (int64_t i = 0; i < n; ++i) grad_logvar[i] = 0.5f * g[i] * noise[i];
}

/// z, and the noise it added (kept for backward).
std::pair<torch::Tensor, torch::Tensor> fused_forward(const torch::Tensor& mu, const torch::Tensor& logvar,
                                                      const torch::Tensor& eps) {
  const auto m = mu.contiguous(), lv = logvar.contiguous(), e = eps.contiguous();
  auto z = torch::empty_like(m), noise = torch::empty_like(m);
  const float *pm = m.data_ptr<float>(), *plv = lv.data_ptr<float>(), *pe = e.data_ptr<float>();
  float *pz = z.data_ptr<float>(), *pn = noise.data_ptr<float>();
  at::parallel_for(0, m.numel(), kGrain, [&](int64_t begin, int64_t end) {
    forward_span(pm + begin, plv + begin, pe + begin, pz + begin, pn + begin, end - begin);
  });
  return {z, noise};
}

struct Reparameterize : torch::autograd::Function<Reparameterize> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& mu,
                               const torch::Tensor& logvar, const torch::Tensor& eps) {
    auto [z, noise] = fused_forward(mu, logvar, eps);
    ctx->save_for_backward({noise});
    return z;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto noise = ctx->get_saved_variables()[0];
    const auto g = grad_outputs[0].contiguous();
    torch::Tensor grad_logvar;
    if (ctx->needs_input_grad(1)) {
      grad_logvar = torch::empty_like(noise);
      const float *pg = g.data_ptr<float>(), *pn = noise.data_ptr<float>();
      float* out = grad_logvar.data_ptr<float>();
      at::parallel_for(0, noise.numel(), kGrain, [&](int64_t begin, int64_t end) {
        backward_span(pg + begin, pn + begin, out + begin, end - begin);
      });
    }
    return {ctx->needs_input_grad(0) ? g : torch::Tensor(), grad_logvar, torch::Tensor()};
  }
};

bool cpu_float(const torch::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.layout() == torch::kStrided;
}

}  // namespace

torch::Tensor reparameterize_plain(const torch::Tensor& mu, const torch::Tensor& logvar, const torch::Tensor& eps) {
  return mu + eps * torch::exp(0.5 * logvar);
}

torch::Tensor reparameterize(const torch::Tensor& mu, const torch::Tensor& logvar, const torch::Tensor& eps) {
  const bool fusable = cpu_float(mu) && cpu_float(logvar) && cpu_float(eps) && mu.sizes() == logvar.sizes() &&
                       mu.sizes() == eps.sizes() && !eps.requires_grad();
  if (!fusable) return reparameterize_plain(mu, logvar, eps);
  if (!(torch::GradMode::is_enabled() && (mu.requires_grad() || logvar.requires_grad()))) {
    torch::NoGradGuard no_grad;
    return fused_forward(mu, logvar, eps).first;
  }
  return Reparameterize::apply(mu, logvar, eps);
}

}  // namespace matvae
