// Causal self-attention with grouped-query heads over a packed qkv row layout:
// each row of qkv holds [q: H*Dh | k: Hkv*Dh | v: Hkv*Dh] (the output of one GEMM with stacked
// q/k/v projections). Query head h reads kv head h / (H / Hkv). Scores are scaled by 1/sqrt(Dh).
// Optional segment ids restrict attention to keys of the same segment (packed sequences).
#pragma once

#include "kernels/common.h"

namespace zerotune {

struct AttentionShape {
  int64_t batch;       // B
  int64_t seq_len;     // T
  int64_t n_heads;     // H
  int64_t n_kv_heads;  // Hkv
  int64_t head_dim;    // Dh
  int64_t qkv_width() const { return (n_heads + 2 * n_kv_heads) * head_dim; }
};

// out: [B*T, H*Dh], lse: [B, H, T] (log-sum-exp of each score row, saved for backward),
// qkv: [B*T, (H+2Hkv)*Dh], segments: [B*T] i32 or empty.
void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& qkv,
                       const Tensor& segments, const AttentionShape& shape);
// dqkv: [B*T, (H+2Hkv)*Dh] (overwritten), dout: [B*T, H*Dh]; the rest as in forward.
void attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                        const Tensor& out, const Tensor& lse, const Tensor& segments,
                        const AttentionShape& shape);

namespace cpu {
void attention_forward(float* out, float* lse, const float* qkv, const int32_t* segments,
                       const AttentionShape& shape);
void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* out,
                        const float* lse, const int32_t* segments, const AttentionShape& shape);
}  // namespace cpu

namespace cuda {  // f32 or bf16 qkv/out; lse f32
void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& qkv,
                       const Tensor& segments, const AttentionShape& shape);
void attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                        const Tensor& out, const Tensor& lse, const Tensor& segments,
                        const AttentionShape& shape);
}  // namespace cuda

}  // namespace zerotune
