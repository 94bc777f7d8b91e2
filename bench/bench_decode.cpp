// decode_prefixes (the first layer of all prefixes as block products and a cumulative sum, the rest
// of the decoder once on the stacked activations) against one decode per prefix, tied and separate,
// forward and backward at the default architecture.
#include "bench_check.h"
#include "matvae/models/vae.h"

namespace {
const std::vector<int64_t> kNesting = {2, 4, 8, 16, 32, 64};

matvae::Vae model(matvae::DecoderForm form) {
  return matvae::Vae(matvae::VaeOptions(784, 64).nesting(kNesting).decoder(form));
}

torch::Tensor per_prefix(matvae::Vae& vae, const torch::Tensor& z) {
  std::vector<torch::Tensor> v;
  for (int64_t m : kNesting) v.push_back(vae->decode(z.narrow(1, 0, m)));
  return torch::stack(v);
}

void BM_DecodePrefixes(benchmark::State& state) {
  matvae_bench::setup(2, state.range(2));
  auto vae = model(state.range(1) ? matvae::DecoderForm::kSeparate : matvae::DecoderForm::kTied);
  const auto z = torch::randn({state.range(0), 64});
  {
    torch::NoGradGuard no_grad;
    if (!matvae_bench::checked(state, vae->decode_prefixes(z), per_prefix(vae, z), 1e-4, "decode_prefixes")) return;
  }
  for (auto _ : state) {
    vae->zero_grad();
    vae->decode_prefixes(z).sum().backward();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void BM_DecodeOnePerPrefix(benchmark::State& state) {
  matvae_bench::setup(2, state.range(2));
  auto vae = model(state.range(1) ? matvae::DecoderForm::kSeparate : matvae::DecoderForm::kTied);
  const auto z = torch::randn({state.range(0), 64});
  for (auto _ : state) {
    vae->zero_grad();
    per_prefix(vae, z).sum().backward();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

// separate: 0 = tied, 1 = separate.
void args(benchmark::internal::Benchmark* b) {
  b->ArgsProduct({{128, 256}, {0, 1}, matvae_bench::kThreads})->ArgNames({"batch", "separate", "threads"});
}

}  // namespace

BENCHMARK(BM_DecodePrefixes)->Apply(args)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DecodeOnePerPrefix)->Apply(args)->Unit(benchmark::kMillisecond);
