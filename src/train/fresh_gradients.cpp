// Gradients dropped before backward; see fresh_gradients.h.
#include "matvae/train/fresh_gradients.h"

namespace matvae {

std::vector<bool> drop_gradients(const std::vector<torch::Tensor>& params) {
  std::vector<bool> had(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    torch::Tensor w = params[i];  // shares the parameter: its gradient is the parameter's
    had[i] = w.grad().defined();
    w.mutable_grad() = torch::Tensor();
  }
  return had;
}

void restore_zero_gradients(const std::vector<torch::Tensor>& params, const std::vector<bool>& had) {
  TORCH_CHECK(params.size() == had.size(), "restore_zero_gradients: ", params.size(), " parameters, ",
              had.size(), " flags");
  for (size_t i = 0; i < params.size(); ++i) {
    torch::Tensor w = params[i];
    if (had[i] && !w.grad().defined()) w.mutable_grad() = torch::zeros_like(w);
  }
}

}  // namespace matvae
