#pragma once

#include "kernels/common.h"
#include "kernels/element_math.h"

namespace zerotune {

// Hyperparameters in double, as PyTorch keeps them in Python floats.
struct AdamWConfig {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

// One torch.optim.AdamW step (step counts from 1) on flat fp32 shards of equal length:
// param, grad, exp_avg, exp_avg_sq: [n].
void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                const Tensor& exp_avg_sq, const AdamWConfig& config, int64_t step);
// The same step on an f32 master `param` that also writes the updated values, rounded, into
// `compute` ([n] on the same device): mixed-precision training's compute copy, in one pass for
// bf16 on a GPU.
void adamw_step_mixed(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                      const Tensor& exp_avg_sq, const Tensor& compute, const AdamWConfig& config,
                      int64_t step);

// sum of x^2 over a flat f32 tensor, accumulated in double (gradient norms).
double sum_of_squares(const Tensor& x);
// x *= factor over a flat f32 tensor (gradient clipping).
void scale_in_place(const Tensor& x, float factor);
// x += y over flat f32 tensors of equal length on one device (gradients summed over micro-batches).
void add_in_place(const Tensor& x, const Tensor& y);

namespace cpu {
void adamw_step(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n,
                const AdamWParams& params);
}  // namespace cpu

namespace cuda {
// `compute` may be empty (no data): no compute copy.
void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                const Tensor& exp_avg_sq, const AdamWParams& params, const Tensor& compute);
double sum_of_squares(const Tensor& x);
void scale_in_place(const Tensor& x, float factor);
void add_in_place(const Tensor& x, const Tensor& y);
}  // namespace cuda

}  // namespace zerotune
