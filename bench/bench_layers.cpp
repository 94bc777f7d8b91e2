// The model's elementwise layer work, forward and backward, at a training step's shapes: the fused
// linear + bias + ReLU (linear_relu) against ATen's relu(linear(...)), the bias + ReLU pass of the
// tied decoder's first layer (bias_relu) against relu(h + b), and the fused reparameterisation
// against ATen's four operations.
//
// Shapes (hidden 512, 256; 6 prefixes): the encoder's first layer [N, 784] -> 512, and the shared
// decoder layer 256 -> 512 on all prefixes' rows [6 N, 256]; reparameterisation at [N, 64].
#include "bench_check.h"
#include "matvae/models/linear_relu.h"
#include "matvae/models/reparameterize.h"

namespace {

/// Forward and backward of f(x, W, b) with sum(out * w) as the loss; returns the output and W's gradient.
template <class F>
std::pair<torch::Tensor, torch::Tensor> linear_step(F f, const torch::Tensor& x, const torch::Tensor& w,
                                                    const torch::Tensor& b, const torch::Tensor& upstream) {
  w.mutable_grad().reset();
  b.mutable_grad().reset();
  const auto out = f(x, w, b);
  out.backward(upstream);
  return {out.detach(), w.grad()};
}

template <class F>
void run_linear(benchmark::State& state, F f) {
  matvae_bench::setup(1, state.range(3));
  const int64_t rows = state.range(0), in = state.range(1), out = state.range(2);
  const auto x = torch::randn({rows, in}).requires_grad_(true);
  const auto w = (torch::randn({out, in}) / std::sqrt(static_cast<double>(in))).requires_grad_(true);
  const auto b = torch::randn({out}).requires_grad_(true);
  const auto upstream = torch::randn({rows, out});
  const auto [fused, fused_grad] = linear_step(matvae::linear_relu, x, w, b, upstream);
  const auto [plain, plain_grad] = linear_step(matvae::linear_relu_plain, x, w, b, upstream);
  if (!matvae_bench::checked(state, fused, plain, 1e-4, "linear_relu output") ||
      !matvae_bench::checked(state, fused_grad, plain_grad, 1e-2, "linear_relu weight gradient"))
    return;
  for (auto _ : state) {
    const auto r = linear_step(f, x, w, b, upstream);
    benchmark::DoNotOptimize(r.second.data_ptr());
    x.mutable_grad().reset();
  }
  state.SetItemsProcessed(state.iterations() * rows);
}

template <class F>
void run_bias_relu(benchmark::State& state, F f) {
  matvae_bench::setup(1, state.range(2));
  const int64_t rows = state.range(0), cols = state.range(1);
  const auto h = torch::randn({rows, cols}).requires_grad_(true);
  const auto b = torch::randn({cols}).requires_grad_(true);
  const auto upstream = torch::randn({rows, cols});
  const auto grads = [&](auto g) {
    h.mutable_grad().reset();
    b.mutable_grad().reset();
    g(h, b).backward(upstream);
    return std::make_pair(h.grad().clone(), b.grad().clone());
  };
  const auto fused = grads(matvae::bias_relu), plain = grads(matvae::bias_relu_plain);
  if (!matvae_bench::checked(state, fused.first, plain.first, 0, "bias_relu input gradient") ||
      !matvae_bench::checked(state, fused.second, plain.second, 1e-3, "bias_relu bias gradient"))
    return;
  for (auto _ : state) {
    h.mutable_grad().reset();
    b.mutable_grad().reset();
    f(h, b).backward(upstream);
    benchmark::DoNotOptimize(b.grad().data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * rows);
}

template <class F>
void run_reparameterize(benchmark::State& state, F f) {
  matvae_bench::setup(1, state.range(1));
  const int64_t rows = state.range(0), cols = 64;
  const auto mu = torch::randn({rows, cols}).requires_grad_(true);
  const auto logvar = torch::randn({rows, cols}).requires_grad_(true);
  const auto eps = torch::randn({rows, cols}), upstream = torch::randn({rows, cols});
  const auto grad_logvar = [&](auto g) {
    logvar.mutable_grad().reset();
    g(mu, logvar, eps).backward(upstream);
    return logvar.grad().clone();
  };
  if (!matvae_bench::checked(state, grad_logvar(matvae::reparameterize), grad_logvar(matvae::reparameterize_plain),
                             1e-5, "reparameterisation gradient"))
    return;
  for (auto _ : state) {
    mu.mutable_grad().reset();
    logvar.mutable_grad().reset();
    f(mu, logvar, eps).backward(upstream);
    benchmark::DoNotOptimize(logvar.grad().data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * rows);
}

void BM_LinearReluFused(benchmark::State& s) { run_linear(s, matvae::linear_relu); }
void BM_LinearReluPlain(benchmark::State& s) { run_linear(s, matvae::linear_relu_plain); }
void BM_BiasReluFused(benchmark::State& s) { run_bias_relu(s, matvae::bias_relu); }
void BM_BiasReluPlain(benchmark::State& s) { run_bias_relu(s, matvae::bias_relu_plain); }
void BM_ReparameterizeFused(benchmark::State& s) { run_reparameterize(s, matvae::reparameterize); }
void BM_ReparameterizePlain(benchmark::State& s) { run_reparameterize(s, matvae::reparameterize_plain); }

// {rows, in, out}: the encoder's first layer at batch 128 and 256; the shared decoder layer on 6 prefixes.
void linear_args(benchmark::internal::Benchmark* b) {
  for (const auto& shape : std::vector<std::vector<int64_t>>{{128, 784, 512}, {256, 784, 512}, {768, 256, 512},
                                                             {1536, 256, 512}})
    for (int64_t t : matvae_bench::kThreads) b->Args({shape[0], shape[1], shape[2], t});
  b->ArgNames({"rows", "in", "out", "threads"});
}

// {rows, cols}: the tied decoder's first layer, 6 prefixes of batch 128 and 256, width 256.
void bias_relu_args(benchmark::internal::Benchmark* b) {
  b->ArgsProduct({{768, 1536}, {256}, matvae_bench::kThreads})->ArgNames({"rows", "cols", "threads"});
}

// {rows}: the batch; the code is 64 wide.
void reparameterize_args(benchmark::internal::Benchmark* b) {
  b->ArgsProduct({{128, 256}, matvae_bench::kThreads})->ArgNames({"rows", "threads"});
}

}  // namespace

BENCHMARK(BM_LinearReluFused)->Apply(linear_args)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_LinearReluPlain)->Apply(linear_args)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_BiasReluFused)->Apply(bias_relu_args)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_BiasReluPlain)->Apply(bias_relu_args)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ReparameterizeFused)->Apply(reparameterize_args)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ReparameterizePlain)->Apply(reparameterize_args)->Unit(benchmark::kMicrosecond);
