// Linear layers y = x W^T with HF's [out_features, in_features] weight layout, through BLAS.
#pragma once

#include "kernels/common.h"

namespace zerotune {

// y: [N, out], x: [N, in], w: [out, in].
void linear_forward(const Tensor& y, const Tensor& x, const Tensor& w,
                    Accumulate acc = Accumulate::no);
// dx: [N, in] (= or += dy w), dw: [out, in] (+= dy^T x). Either may be empty (no data) to skip
// it: a frozen weight (LoRA's base) needs only dx.
void linear_backward(const Tensor& dx, const Tensor& dw, const Tensor& dy, const Tensor& x,
                     const Tensor& w, Accumulate dx_acc = Accumulate::no);

// The same on a block of columns of a wider matrix: y [N, cols] gets x w^T in its columns
// [col, col + out) (= or +=); the backward reads dy's block [N, cols][:, col, col + out). For
// LoRA's adapters of one module of a stacked q/k/v or gate/up output.
void linear_forward_block(const Tensor& y, int64_t col, const Tensor& x, const Tensor& w,
                          Accumulate acc = Accumulate::no);
void linear_backward_block(const Tensor& dx, const Tensor& dw, const Tensor& dy, int64_t col,
                           const Tensor& x, const Tensor& w, Accumulate dx_acc = Accumulate::no);

namespace cpu {
// Row-major C[M,N] = alpha * op(A) op(B) + beta * C, with leading dimensions.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
}  // namespace cpu

namespace cuda {  // cuBLASLt: f32 or bf16 operands, f32 accumulation, dw f32
void linear_forward(const Tensor& y, const Tensor& x, const Tensor& w, Accumulate acc);
void linear_backward(const Tensor& dx, const Tensor& dw, const Tensor& dy, const Tensor& x,
                     const Tensor& w, Accumulate dx_acc);
void linear_forward_block(const Tensor& y, int64_t col, const Tensor& x, const Tensor& w,
                          Accumulate acc);
void linear_backward_block(const Tensor& dx, const Tensor& dw, const Tensor& dy, int64_t col,
                           const Tensor& x, const Tensor& w, Accumulate dx_acc);
}  // namespace cuda

}  // namespace zerotune
