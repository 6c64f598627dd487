#include "kernels/rope.h"

#include <cmath>
#include <numbers>

namespace zerotune {

const char* rope_scaling_name(RopeScalingType type) {
  switch (type) {
    case RopeScalingType::none:
      return "none";
    case RopeScalingType::linear:
      return "linear";
    case RopeScalingType::dynamic:
      return "dynamic";
    case RopeScalingType::llama3:
      return "llama3";
  }
  return "?";
}

namespace {

// transformers' _compute_llama3_parameters, step for step in fp32 (torch computes `a / t` for a
// Python number a as t.reciprocal() * a, in the tensor's dtype).
float llama3_inverse_frequency(float inv_freq, const RopeScaling& s) {
  const float old_context = static_cast<float>(s.original_max_position_embeddings);
  const double low_freq_wavelen = static_cast<double>(s.original_max_position_embeddings) /
                                  static_cast<double>(s.low_freq_factor);
  const double high_freq_wavelen = static_cast<double>(s.original_max_position_embeddings) /
                                   static_cast<double>(s.high_freq_factor);
  const float wavelen = (1.0f / inv_freq) * static_cast<float>(2.0 * std::numbers::pi);
  const float scaled = wavelen > low_freq_wavelen ? inv_freq / s.factor : inv_freq;
  const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
  if (!medium) return scaled;
  const float band = static_cast<float>(static_cast<double>(s.high_freq_factor) -
                                        static_cast<double>(s.low_freq_factor));
  const float smooth = ((1.0f / wavelen) * old_context - s.low_freq_factor) / band;
  return (1.0f - smooth) * scaled / s.factor + smooth * scaled;
}

}  // namespace

std::vector<float> rope_inverse_frequencies(int64_t head_dim, float theta,
                                            const RopeScaling& scaling) {
  ZT_CHECK(head_dim > 0 && head_dim % 2 == 0, "rope_inverse_frequencies: head_dim ", head_dim,
           " must be positive and even");
  ZT_CHECK(theta > 0.0f && scaling.factor > 0.0f, "rope_inverse_frequencies: theta ", theta,
           " and scaling factor ", scaling.factor, " must be positive");
  std::vector<float> inv_freq(static_cast<size_t>(head_dim / 2));  // [Dh/2]
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    float f = 1.0f / std::pow(theta, exponent);
    if (scaling.type == RopeScalingType::llama3) f = llama3_inverse_frequency(f, scaling);
    inv_freq[static_cast<size_t>(i)] = f;
  }
  return inv_freq;
}

void rope_tables(const Tensor& cos, const Tensor& sin, float theta, const RopeScaling& scaling) {
  require_backend("rope_tables", cos);
  ZT_CHECK(cos.ndim() == 2 && cos.shape == sin.shape, "rope_tables: cos ", cos.shape, " and sin ",
           sin.shape, " must be equal [P, Dh/2]");
  const int64_t positions = cos.dim(0), half = cos.dim(1);
  const std::vector<float> inv_freq = rope_inverse_frequencies(2 * half, theta, scaling);  // [Dh/2]
  const float position_divisor = scaling.type == RopeScalingType::linear ? scaling.factor : 1.0f;
  float* c = cos.f32();
  float* s = sin.f32();
  for (int64_t i = 0; i < half; ++i) {
    for (int64_t p = 0; p < positions; ++p) {
      const float angle =
          (static_cast<float>(p) / position_divisor) * inv_freq[static_cast<size_t>(i)];
      c[p * half + i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      s[p * half + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }
}

void rope_tables(const Tensor& cos, const Tensor& sin, float theta, float scaling_factor) {
  RopeScaling linear;
  linear.type = scaling_factor == 1.0f ? RopeScalingType::none : RopeScalingType::linear;
  linear.factor = scaling_factor;
  rope_tables(cos, sin, theta, linear);
}

void rope_apply(const Tensor& x, int64_t n_heads, const Tensor& positions, const Tensor& cos,
                const Tensor& sin, RopeDirection direction) {
  ZT_CHECK(x.ndim() == 2, "rope_apply: x must be [N, width], got ", x.shape);
  ZT_CHECK(cos.ndim() == 2 && cos.shape == sin.shape, "rope_apply: cos ", cos.shape, " and sin ",
           sin.shape, " must be equal [P, Dh/2]");
  const int64_t n = x.dim(0), head_dim = 2 * cos.dim(1);
  ZT_CHECK(n_heads * head_dim <= x.dim(1), "rope_apply: ", n_heads, " heads of ", head_dim,
           " do not fit rows of ", x.dim(1));
  check_shape("rope_apply", "positions", positions, Shape{n});
  const std::vector<int32_t> host_positions = host_i32(positions);
  const int32_t* pos = host_positions.data();
  for (int64_t r = 0; r < n; ++r) {
    ZT_CHECK(pos[r] >= 0 && pos[r] < cos.dim(0), "rope_apply: position ", pos[r], " of row ", r,
             " is outside the table [0, ", cos.dim(0), ")");
  }
  if (on_cuda(x)) {
    for (const Tensor* t : {&positions, &cos, &sin}) check_same_device("rope_apply", x, *t);
    cuda::rope_apply(x, n_heads, positions, cos, sin, direction);
    return;
  }
  require_backend("rope_apply", x);
  cpu::rope_apply(x.f32(), n, x.dim(1), n_heads, head_dim, pos, cos.f32(), sin.f32(),
                  direction == RopeDirection::backward);
}

}  // namespace zerotune
