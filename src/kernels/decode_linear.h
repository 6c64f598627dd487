// The linear layers of a decode step, y = x W^T with HF's [out_features, in_features] weights,
// for a few rows of x (one per sequence in the step).
//
// On the CPU this is our own kernel, not BLAS: OpenBLAS picks different kernels (and summation
// orders) for different numbers of rows, so a sequence's logits would depend on how many others
// step with it. Here every y[i, o] is the dot of x[i] and W[o] in one fixed order (SIMD lanes
// over whole vectors of `in`, a fixed horizontal sum, then the tail in order), whatever the other
// rows, their number, their order or the thread count: a decode step is batch invariant. Threads
// split the output features, and each block of weight rows is read from memory once and dotted
// with every row of x, which is what makes a batch of sequences cost little more than one on a
// bandwidth-bound CPU.
//
// On a GPU it is the cuBLASLt GEMM of linear_forward: batch invariance is not promised there.
#pragma once

#include "kernels/common.h"

namespace zerotune {

// y: [N, out] (= or += x W^T), x: [N, in], w: [out, in]. On a GPU x and w may be bf16 with y f32
// (the LM head's logits).
void decode_linear(const Tensor& y, const Tensor& x, const Tensor& w,
                   Accumulate acc = Accumulate::no);

namespace cpu {
void decode_linear(float* y, const float* x, const float* w, int64_t n, int64_t in, int64_t out,
                   bool accumulate);
}  // namespace cpu

}  // namespace zerotune
