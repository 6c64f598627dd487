#pragma once

#include "kernels/common.h"

namespace zerotune {

// out: [N, D] rows of table: [V, D] picked by ids: [N] (i32, checked in range).
void embedding_forward(const Tensor& out, const Tensor& ids, const Tensor& table);
// dtable: [V, D] += scatter of dout: [N, D]; deterministic (fixed summation order per row).
void embedding_backward(const Tensor& dtable, const Tensor& ids, const Tensor& dout);

namespace cpu {
void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t n, int64_t d);
void embedding_backward(float* dtable, const int32_t* ids, const float* dout, int64_t n, int64_t d);
}  // namespace cpu

namespace cuda {  // f32 or bf16 table and rows; dtable f32
void embedding_forward(const Tensor& out, const Tensor& ids, const Tensor& table);
void embedding_backward(const Tensor& dtable, const Tensor& ids, const Tensor& dout);
}  // namespace cuda

}  // namespace zerotune
