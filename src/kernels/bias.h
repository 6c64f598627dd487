// The bias of a linear layer (Qwen2's q/k/v projections): y = x W^T + b, added after the GEMM.
#pragma once

#include "kernels/common.h"

namespace zerotune {

// y: [N, out] += bias: [out] on every row, in place (same dtype and device).
void bias_forward(const Tensor& y, const Tensor& bias);
// dbias: [out] f32 += the column sums of dy: [N, out] (a parameter gradient: accumulates).
// Each column is summed over the rows in order, in f32 on the GPU and double on the CPU: no
// atomics, the same bits on every run.
void bias_backward(const Tensor& dbias, const Tensor& dy);

namespace cpu {
void bias_forward(float* y, const float* bias, int64_t n, int64_t out);
void bias_backward(float* dbias, const float* dy, int64_t n, int64_t out);
}  // namespace cpu

namespace cuda {  // f32 or bf16 y/dy and bias; f32 dbias
void bias_forward(const Tensor& y, const Tensor& bias);
void bias_backward(const Tensor& dbias, const Tensor& dy);
}  // namespace cuda

}  // namespace zerotune
