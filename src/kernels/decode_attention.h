// Attention for decoding over a slotted key/value cache: the cache holds S slots (one per
// sequence) of T positions each; row i of a call belongs to slot slots[i] at position
// positions[i]. The rows of one call may mix slots (a decode step: one row per sequence) or be
// consecutive positions of one slot (a prefill). qkv rows are laid out as in kernels/attention.h,
// [q: H*Dh | k: Hkv*Dh | v: Hkv*Dh] after RoPE; query head h reads kv head h / (H / Hkv); scores
// are scaled by 1/sqrt(Dh) and the softmax is in f32 with fast_exp, as in training.
//
// On the CPU every (row, head) is computed on its own in a fixed order, so a row's output does not
// depend on the other rows of the call (batch invariance); on a GPU likewise (one block per row
// and head), though the step's matrix products there are GEMMs (kernels/decode_linear.h).
#pragma once

#include "kernels/common.h"

namespace zerotune {

// Writes row i's key and value (from qkv: [N, (H+2Hkv)*Dh]) into k_cache, v_cache: [S, T, Hkv, Dh]
// at (slots[i], positions[i]). slots, positions: [N] i32, in [0, S) and [0, T).
void decode_kv_store(const Tensor& k_cache, const Tensor& v_cache, const Tensor& qkv,
                     const Tensor& slots, const Tensor& positions);
// out: [N, H*Dh]: row i's queries attend to positions 0..positions[i] of slot slots[i] (those
// positions must have been stored, by this call's decode_kv_store or earlier ones).
void decode_attention(const Tensor& out, const Tensor& qkv, const Tensor& k_cache,
                      const Tensor& v_cache, const Tensor& slots, const Tensor& positions);

struct DecodeAttentionShape {
  int64_t rows;         // N
  int64_t heads;        // H
  int64_t kv_heads;     // Hkv
  int64_t head_dim;     // Dh
  int64_t max_seq_len;  // T, positions per slot
  constexpr int64_t qkv_width() const { return (heads + 2 * kv_heads) * head_dim; }
  constexpr int64_t kv_width() const { return kv_heads * head_dim; }
};

namespace cpu {
void decode_kv_store(float* k_cache, float* v_cache, const float* qkv, const int32_t* slots,
                     const int32_t* positions, const DecodeAttentionShape& shape);
void decode_attention(float* out, const float* qkv, const float* k_cache, const float* v_cache,
                      const int32_t* slots, const int32_t* positions,
                      const DecodeAttentionShape& shape);
}  // namespace cpu

namespace cuda {  // f32 or bf16 qkv, cache and out (all alike); Dh <= 256
void decode_kv_store(const Tensor& k_cache, const Tensor& v_cache, const Tensor& qkv,
                     const Tensor& slots, const Tensor& positions,
                     const DecodeAttentionShape& shape);
void decode_attention(const Tensor& out, const Tensor& qkv, const Tensor& k_cache,
                      const Tensor& v_cache, const Tensor& slots, const Tensor& positions,
                      const DecodeAttentionShape& shape);
}  // namespace cuda

}  // namespace zerotune
