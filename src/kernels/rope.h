// Rotary position embedding in Hugging Face's rotate-half layout: within each head of size Dh,
// element i pairs with element i + Dh/2 (not the interleaved layout of the original paper).
#pragma once

#include "kernels/common.h"

namespace zerotune {

enum class RopeDirection : uint8_t { forward, backward };

// config.json's "rope_scaling". linear divides positions by `factor`; llama3 rescales the
// inverse frequencies by wavelength (transformers' _compute_llama3_parameters): wavelengths
// longer than original_max_position_embeddings / low_freq_factor are divided by `factor`, those
// shorter than original / high_freq_factor are kept, and the band between is interpolated.
// dynamic (NTK) changes nothing up to max_position_embeddings, the longest sequence a model
// accepts, so its tables are the unscaled ones.
enum class RopeScalingType : uint8_t { none, linear, dynamic, llama3 };
struct RopeScaling {
  RopeScalingType type = RopeScalingType::none;
  float factor = 1.0f;
  float low_freq_factor = 1.0f;                     // llama3
  float high_freq_factor = 4.0f;                    // llama3
  int64_t original_max_position_embeddings = 8192;  // llama3
  bool operator==(const RopeScaling&) const = default;
};
const char* rope_scaling_name(RopeScalingType type);  // "none", "linear", "dynamic", "llama3"

// The fp32 inverse frequencies [Dh/2] of each rotated pair, as HF computes them: 1/theta^(2i/Dh)
// in fp32, then the llama3 rescaling in fp32.
std::vector<float> rope_inverse_frequencies(int64_t head_dim, float theta,
                                            const RopeScaling& scaling);

// Tables cos/sin: [P, Dh/2] for positions 0..P-1, computed as HF does (fp32 inverse
// frequencies, fp32 angle position*inv_freq) so that values match bit for bit as closely as libm
// allows.
void rope_tables(const Tensor& cos, const Tensor& sin, float theta, const RopeScaling& scaling);
// The same with "linear" scaling by `scaling_factor` (1: none).
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
