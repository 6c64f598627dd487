#pragma once

#include "kernels/common.h"

namespace zerotune {

// out = x * rstd * weight, rstd = 1 / sqrt(mean(x^2) + eps), accumulated in fp32.
// out: [N, D], rstd: [N] (saved for backward), x: [N, D], weight: [D].
void rmsnorm_forward(const Tensor& out, const Tensor& rstd, const Tensor& x, const Tensor& weight,
                     float eps);
// dx: [N, D] (= or +=), dweight: [D] (+=), dout: [N, D]; x, weight, rstd as in forward.
void rmsnorm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dout, const Tensor& x,
                      const Tensor& weight, const Tensor& rstd, Accumulate dx_acc);

namespace cpu {
void rmsnorm_forward(float* out, float* rstd, const float* x, const float* weight, int64_t n,
                     int64_t d, float eps);
void rmsnorm_backward(float* dx, float* dweight, const float* dout, const float* x,
                      const float* weight, const float* rstd, int64_t n, int64_t d, bool dx_acc);
}  // namespace cpu

namespace cuda {  // f32 or bf16 storage; rstd and dweight f32
void rmsnorm_forward(const Tensor& out, const Tensor& rstd, const Tensor& x, const Tensor& weight,
                     float eps);
void rmsnorm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dout, const Tensor& x,
                      const Tensor& weight, const Tensor& rstd, Accumulate dx_acc);
}  // namespace cuda

}  // namespace zerotune
