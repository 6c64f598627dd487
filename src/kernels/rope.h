// Rotary position embedding in Hugging Face's rotate-half layout: within each head of size Dh,
// element i pairs with element i + Dh/2 (not the interleaved layout of the original paper).
#pragma once

#include "kernels/common.h"

namespace zerotune {

enum class RopeDirection : uint8_t { forward, backward };

// Tables cos/sin: [P, Dh/2] for positions 0..P-1, computed as HF does (fp32 inverse
// frequencies 1/theta^(2i/Dh), fp32 angle position*inv_freq) so that values match bit for bit
// as closely as libm allows. `scaling_factor` divides positions ("linear" rope_scaling).
void rope_tables(const Tensor& cos, const Tensor& sin, float theta, float scaling_factor = 1.0f);

// Rotates, in place, the first n_heads heads of each row of x: [N, row_width] (row_width >=
// n_heads * Dh), row r at position positions[r]: [N] (i32, < P). Backward rotates by the
// negative angle, which is the transpose of the forward rotation.
void rope_apply(const Tensor& x, int64_t n_heads, const Tensor& positions, const Tensor& cos,
                const Tensor& sin, RopeDirection direction);

namespace cpu {
void rope_apply(float* x, int64_t n, int64_t row_width, int64_t n_heads, int64_t head_dim,
                const int32_t* positions, const float* cos, const float* sin, bool backward);
}  // namespace cpu

namespace cuda {  // f32 or bf16 x; f32 tables
void rope_apply(const Tensor& x, int64_t n_heads, const Tensor& positions, const Tensor& cos,
                const Tensor& sin, RopeDirection direction);
}  // namespace cuda

}  // namespace zerotune
