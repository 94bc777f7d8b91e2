// Adam with the update fused into one pass over each parameter's memory.
//
// LibTorch's Adam::step runs six tensor operations per parameter (two moment updates, sqrt, a
// division, an addition, addcdiv), each a full pass over memory plus temporaries; for matvae's
// 1.1M-parameter models that was about 30% of a training step. FusedAdam computes the same update
// element by element in one loop. It is a torch::optim::Adam: the same options, the same
// per-parameter state (step, exp_avg, exp_avg_sq) under the same keys, so save/load and resume
// files are interchangeable with Adam's. Results match Adam's to float rounding
// (tests/test_fused_adam.cpp); anything the loop does not cover (amsgrad, non-float32 or
// non-CPU parameters, sparse gradients) falls back to Adam::step.
#pragma once

#include <torch/torch.h>

namespace matvae {

class FusedAdam : public torch::optim::Adam {
 public:
  using torch::optim::Adam::Adam;
  torch::Tensor step(LossClosure closure = nullptr) override;

  /// Sets every parameter group's learning rate (a schedule's rate for the next step).
  void set_lr(double lr);

  /// One step in two halves, for ranks that share this optimizer's parameters (threads of one
  /// process, dist/thread_team.h): plan_step() on one thread (the state's bookkeeping: step counts,
  /// moments created on the first step), then update_part(r, n) on each of n threads for r in
  /// 0..n-1, each over its 1/n of every parameter's elements; together they are step() to the bit.
  /// plan_step() returns false, and plans and changes nothing, where the fused loop does not apply.
  bool plan_step();
  void update_part(int64_t part, int64_t parts) const;

  /// update_part with each parameter's gradient the sum, in rank order, of the ranks' own gradients
  /// of it, summed as the update reads them and stored nowhere: one pass where an all-reduce and the
  /// update took two. `ranks_parameters[r]` lists rank r's parameters in this optimizer's order;
  /// they share this optimizer's parameters' memory (checked), each with a gradient of its own.
  void update_part_of_sum(int64_t part, int64_t parts,
                          const std::vector<std::vector<torch::Tensor>>& ranks_parameters) const;

  /// One step's scalars of one parameter, as floats.
  struct Scalars {
    float b1, one_minus_b1, b2, one_minus_b2, sqrt_bc2, eps, neg_step, decay;
  };

 private:
  /// One parameter's update of a step: its memory and its scalars.
  struct Planned {
    float *w, *m, *v;
    const float* g;
    int64_t n;
    Scalars k;
    size_t index;  // the parameter's place in the optimizer's parameters, over all groups
  };
  std::vector<Planned> planned_;
};

}  // namespace matvae
