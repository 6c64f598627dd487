#include "support/adamw_reference.h"

#include <cmath>

namespace zerotune {

AdamWOptimizer::AdamWOptimizer(const LlamaParams& params, const AdamWConfig& config)
    : config_(config) {
  for (const ParamGroup& g : params.groups()) {
    exp_avg_.emplace_back(DType::f32, Shape{g.data.numel()});
    exp_avg_sq_.emplace_back(DType::f32, Shape{g.data.numel()});
  }
}

void AdamWOptimizer::step(LlamaParams& params, const LlamaParams& grads, double lr) {
  ++step_;
  AdamWConfig c = config_;
  c.lr = lr;
  for (size_t i = 0; i < params.groups().size(); ++i) {
    adamw_step(params.groups()[i].data, grads.groups()[i].data, exp_avg_[i], exp_avg_sq_[i], c,
               step_);
  }
}

double global_grad_norm(const LlamaParams& grads) {
  double total = 0.0;
  for (const ParamGroup& g : grads.groups()) total += sum_of_squares(g.data);
  return std::sqrt(total);
}

void scale_grads(LlamaParams& grads, float factor) {
  for (ParamGroup& g : grads.groups()) scale_in_place(g.data, factor);
}

}  // namespace zerotune
