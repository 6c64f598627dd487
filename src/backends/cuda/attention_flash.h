// The tensor-core flash attention of the CUDA backend (bf16 storage, head dims 64 and 128);
// attention.cu runs it where it applies and its simple kernels everywhere else.
#pragma once

#include "kernels/attention.h"

namespace zerotune::cuda {

// Whether the flash kernels take these operands: bf16 qkv and out (and dout, dqkv when given),
// head_dim 64 or 128, 16-byte aligned rows, and a grid that fits CUDA's limits.
bool flash_attention_supported(const AttentionShape& shape, const Tensor& qkv, const Tensor& out,
                               const Tensor& dout = Tensor(), const Tensor& dqkv = Tensor());

// Shapes and dtypes as in attention_forward; segments: [B*T] i32 or null.
void flash_attention_forward(const Tensor& out, const Tensor& lse, const Tensor& qkv,
                             const int32_t* segments, const AttentionShape& shape);

// delta: [B, H, T] f32 holding dout_i . out_i; the rest as in attention_backward.
void flash_attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                              const Tensor& lse, const float* delta, const int32_t* segments,
                              const AttentionShape& shape);

}  // namespace zerotune::cuda
