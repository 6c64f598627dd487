#pragma once

#include "kernels/common.h"

namespace zerotune {

// h = silu(gate) * up with gate_up: [N, 2F] holding gate in columns [0, F) and up in [F, 2F)
// (the output of one GEMM with the stacked gate_proj/up_proj weights). h: [N, F].
void swiglu_forward(const Tensor& h, const Tensor& gate_up);
// dgate_up: [N, 2F] (overwritten), dh: [N, F].
void swiglu_backward(const Tensor& dgate_up, const Tensor& dh, const Tensor& gate_up);

namespace cpu {
void swiglu_forward(float* h, const float* gate_up, int64_t n, int64_t f);
void swiglu_backward(float* dgate_up, const float* dh, const float* gate_up, int64_t n, int64_t f);
}  // namespace cpu

namespace cuda {  // f32 or bf16 storage
void swiglu_forward(const Tensor& h, const Tensor& gate_up);
void swiglu_backward(const Tensor& dgate_up, const Tensor& dh, const Tensor& gate_up);
}  // namespace cuda

}  // namespace zerotune
