// Gradients dropped before backward instead of zeroed.
//
// Optimizer::zero_grad (LibTorch 1.13) keeps every gradient and zeroes it: a pass over the 1.1M
// parameters, then another in backward to add the new gradient into the zeros. Dropping them
// instead lets backward hand each parameter its fresh gradient as is. Adam sees what it saw with
// zero_grad: a parameter that had a gradient and gets none this step (the own decoder of a prefix
// that prefix sampling did not draw) gets zeros back after backward, so Adam keeps moving it on its
// moments exactly as before (tests/test_fresh_gradients.cpp holds the two ways to the same bits).
#pragma once

#include <torch/torch.h>

#include <vector>

namespace matvae {

/// Drops every parameter's gradient; returns which of them had one (for restore_zero_gradients).
std::vector<bool> drop_gradients(const std::vector<torch::Tensor>& params);

/// After backward: gives zeros to every parameter that had a gradient before drop_gradients and got
/// none from this backward.
void restore_zero_gradients(const std::vector<torch::Tensor>& params, const std::vector<bool>& had);

}  // namespace matvae
