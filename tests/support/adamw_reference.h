// AdamW over a plain model's parameter groups (one fp32 exp_avg and exp_avg_sq per flat group
// buffer): the reference the ZeRO engine's optimizer is checked against bit for bit.
#pragma once

#include <vector>

#include "kernels/adamw.h"
#include "model/params.h"

namespace zerotune {

class AdamWOptimizer {
 public:
  AdamWOptimizer(const LlamaParams& params, const AdamWConfig& config);

  // One step with learning rate `lr` on every group: params -= update(grads).
  void step(LlamaParams& params, const LlamaParams& grads, double lr);
  int64_t steps_taken() const { return step_; }
  const AdamWConfig& config() const { return config_; }
  // Moments of group i, for saving and restoring training state.
  Buffer& exp_avg(size_t i) { return exp_avg_[i]; }
  Buffer& exp_avg_sq(size_t i) { return exp_avg_sq_[i]; }
  void set_steps_taken(int64_t steps) { step_ = steps; }

 private:
  AdamWConfig config_;
  int64_t step_ = 0;
  std::vector<Buffer> exp_avg_, exp_avg_sq_;  // one per group, [group numel]
};

// sqrt(sum of squares) over every gradient group, accumulated in double.
double global_grad_norm(const LlamaParams& grads);
// Multiplies every gradient by `factor`.
void scale_grads(LlamaParams& grads, float factor);

}  // namespace zerotune
