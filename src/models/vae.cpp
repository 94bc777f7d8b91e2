// The shared VAE family; see vae.h.
#include "matvae/models/vae.h"

#include <numeric>

#include "matvae/models/linear_relu.h"
#include "matvae/models/reparameterize.h"

namespace matvae {
namespace {

bool is_relu(const std::shared_ptr<torch::nn::Module>& m) {
  return std::dynamic_pointer_cast<torch::nn::ReLUImpl>(m) != nullptr;
}

/// Runs a stack of Linear and ReLU modules on h with each Linear and the ReLU after it as one
/// linear_relu. `input_activated`: the stack starts with a ReLU that the caller applied already
/// (fused into the layer before). `activate_output`: the caller's next module is a ReLU, applied
/// here (fused into the stack's last Linear).
torch::Tensor run_stack(const torch::nn::Sequential& stack, torch::Tensor h, bool input_activated,
                        bool activate_output) {
  const auto modules = stack->children();
  size_t i = 0;
  if (input_activated) {
    TORCH_CHECK(!modules.empty() && is_relu(modules[0]), "the stack does not start with a ReLU");
    i = 1;
  }
  for (; i < modules.size(); ++i) {
    if (is_relu(modules[i])) {
      h = torch::relu(h);
      continue;
    }
    const auto linear = std::dynamic_pointer_cast<torch::nn::LinearImpl>(modules[i]);
    TORCH_CHECK(linear, "a stack holds only Linear and ReLU modules");
    const bool relu_next = i + 1 < modules.size() && is_relu(modules[i + 1]);
    if (relu_next || (i + 1 == modules.size() && activate_output)) {
      h = linear_relu(h, linear->weight, linear->bias);
      if (relu_next) ++i;
    } else {
      h = torch::nn::functional::linear(h, linear->weight, linear->bias);
    }
  }
  return h;
}

}  // namespace

VaeImpl::VaeImpl(const VaeOptions& options) : options_(options) {
  check_nesting(options_.nesting(), options_.latent());
  TORCH_CHECK(options_.input() > 0, "input size must be positive, got ", options_.input());
  TORCH_CHECK(!options_.hidden().empty(), "at least one hidden layer is needed");
  const auto& hidden = options_.hidden();
  const int64_t D = options_.latent();

  encoder_ = torch::nn::Sequential();
  int64_t width = options_.input();
  for (int64_t h : hidden) {
    TORCH_CHECK(h > 0, "hidden sizes must be positive, got ", h);
    encoder_->push_back(torch::nn::Linear(width, h));
    encoder_->push_back(torch::nn::ReLU());
    width = h;
  }
  encoder_ = register_module("encoder", encoder_);
  mu_head_ = register_module("mu", torch::nn::Linear(width, D));
  logvar_head_ = register_module("logvar", torch::nn::Linear(width, D));

  // The decoder mirrors the encoder: layer j maps widths[j] to widths[j + 1], with widths =
  // (code, hidden reversed..., P); a ReLU between layers, none after the last.
  std::vector<int64_t> widths = {D};
  widths.insert(widths.end(), hidden.rbegin(), hidden.rend());
  widths.push_back(options_.input());
  const int64_t layers = static_cast<int64_t>(widths.size()) - 1;
  const int64_t owned = private_layers(options_.decoder(), layers);
  const auto stack = [&](int64_t from, int64_t to) {  // layers [from, to), each after a ReLU
    torch::nn::Sequential s;
    for (int64_t j = from; j < to; ++j) {
      s->push_back(torch::nn::ReLU());
      s->push_back(torch::nn::Linear(widths[j], widths[j + 1]));
    }
    return s;
  };
  if (options_.decoder() == DecoderForm::kTied) {
    first_tied_ = register_module("decoder_first", torch::nn::Linear(D, widths[1]));
  } else {
    for (int64_t m : options_.nesting())
      first_separate_.push_back(
          register_module("decoder_first_" + std::to_string(m), torch::nn::Linear(m, widths[1])));
    if (owned > 1)
      for (int64_t m : options_.nesting())
        private_rest_.push_back(register_module("decoder_private_" + std::to_string(m), stack(1, owned)));
  }
  if (owned < layers) decoder_rest_ = register_module("decoder_rest", stack(std::max<int64_t>(owned, 1), layers));
}

std::pair<torch::Tensor, torch::Tensor> VaeImpl::encode(const torch::Tensor& x) {
  const auto h = run_stack(encoder_, x, /*input_activated=*/false, /*activate_output=*/false);
  return {mu_head_->forward(h), logvar_head_->forward(h)};
}

torch::Tensor VaeImpl::decoder_rest(const torch::Tensor& h) {
  return decoder_rest_ ? run_stack(decoder_rest_, h, /*input_activated=*/true, /*activate_output=*/false) : h;
}

torch::Tensor VaeImpl::first_layer(const torch::Tensor& pre_activation, const torch::Tensor& bias) {
  return decoder_rest_ ? bias_relu(pre_activation, bias) : pre_activation + bias;
}

torch::Tensor VaeImpl::decode_owned(int64_t k, const torch::Tensor& z_prefix) {
  auto& first = first_separate_[static_cast<size_t>(k)];
  const bool shared_after = static_cast<bool>(decoder_rest_);
  if (private_rest_.empty())
    return shared_after ? linear_relu(z_prefix, first->weight, first->bias) : first->forward(z_prefix);
  const auto h = linear_relu(z_prefix, first->weight, first->bias);  // private_rest_ starts with a ReLU
  return run_stack(private_rest_[static_cast<size_t>(k)], h, /*input_activated=*/true, shared_after);
}

torch::Tensor VaeImpl::decode(const torch::Tensor& z_prefix) {
  const int64_t m = z_prefix.size(1);
  const auto& nesting = options_.nesting();
  const auto pos = std::find(nesting.begin(), nesting.end(), m);
  TORCH_CHECK(pos != nesting.end(), "prefix size ", m, " is not in the nesting list");
  torch::Tensor h;
  if (options_.decoder() == DecoderForm::kTied) {
    h = first_layer(torch::mm(z_prefix, first_tied_->weight.narrow(1, 0, m).t()), first_tied_->bias);
  } else {
    h = decode_owned(pos - nesting.begin(), z_prefix);
  }
  return decoder_rest(h);
}

std::vector<int64_t> VaeImpl::check_prefixes(const std::vector<int64_t>& which) const {
  const int64_t K = static_cast<int64_t>(options_.nesting().size());
  if (which.empty()) {
    std::vector<int64_t> all(static_cast<size_t>(K));
    std::iota(all.begin(), all.end(), int64_t{0});
    return all;
  }
  for (size_t s = 0; s < which.size(); ++s) {
    TORCH_CHECK(which[s] >= 0 && which[s] < K && (s == 0 || which[s] > which[s - 1]),
                "expected ascending prefix indices in [0, ", K, "), got ", c10::IntArrayRef(which));
  }
  return which;
}

torch::Tensor VaeImpl::decode_prefixes(const torch::Tensor& z, const std::vector<int64_t>& which) {
  const auto& nesting = options_.nesting();
  const std::vector<int64_t> chosen = check_prefixes(which);
  const int64_t S = static_cast<int64_t>(chosen.size());
  const int64_t N = z.size(0);
  std::vector<torch::Tensor> first;
  first.reserve(nesting.size());
  if (options_.decoder() == DecoderForm::kTied) {
    // h_k = b + sum_{j<=k} z[:, block_j] W[:, block_j]^T: one product per block, then a cumsum,
    // over the blocks up to the largest prefix asked for.
    int64_t start = 0;
    for (int64_t k = 0; k <= chosen.back(); ++k) {
      const int64_t m = nesting[k];
      first.push_back(torch::mm(z.narrow(1, start, m - start), first_tied_->weight.narrow(1, start, m - start).t()));
      start = m;
    }
    auto h = torch::stack(first).cumsum(0);  // [chosen.back() + 1, N, H]
    if (S < static_cast<int64_t>(first.size())) h = h.index_select(0, torch::tensor(chosen, torch::kInt64));
    h = first_layer(h, first_tied_->bias);  // [S, N, H]
    return decoder_rest(h.view({S * N, -1})).view({S, N, -1});
  }
  for (const int64_t k : chosen) first.push_back(decode_owned(k, z.narrow(1, 0, nesting[k])));
  return decoder_rest(torch::cat(first, 0)).view({S, N, -1});
}

VaeOutput VaeImpl::forward(const torch::Tensor& x, at::Generator gen, const std::vector<int64_t>& which,
                           const torch::Tensor& code_mask, BatchRows rows) {
  VaeOutput out;
  std::tie(out.mu, out.logvar) = encode(x);
  const auto eps = rows.total < 0 ? at::randn(out.mu.sizes(), gen, out.mu.options())
                                  : at::randn({rows.total, out.mu.size(1)}, gen, out.mu.options())
                                        .narrow(0, rows.offset, out.mu.size(0));
  out.z = reparameterize(out.mu, out.logvar, eps);
  out.prefixes = check_prefixes(which);
  out.logits = decode_prefixes(code_mask.defined() ? out.z * code_mask : out.z, out.prefixes);
  return out;
}

int64_t forward_macs_per_image(const VaeOptions& o) {
  int64_t macs = 0, width = o.input();
  for (const int64_t h : o.hidden()) {
    macs += width * h;
    width = h;
  }
  macs += 2 * width * o.latent();  // the two heads
  for (const int64_t m : o.nesting()) {
    int64_t in = m;  // the decoder of prefix m, mirroring the encoder
    for (auto it = o.hidden().rbegin(); it != o.hidden().rend(); ++it) {
      macs += in * *it;
      in = *it;
    }
    macs += in * o.input();
  }
  return macs;
}

}  // namespace matvae
