// Element-wise math shared by every backend: plain inline functions that compilers vectorise on
// the CPU and that the CUDA backend compiles as __host__ __device__.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define ZT_HD __host__ __device__ __forceinline__
#else
#define ZT_HD inline
#endif

namespace zerotune {

// exp(x) for float within ~2 ulp over the whole float range, branch-free so that loops over it
// vectorise (Cody-Waite range reduction + Cephes' degree-5 polynomial for e^r on [-ln2/2, ln2/2]).
ZT_HD float fast_exp(float x) {
  x = x < -87.33654f ? -87.33654f : x;
  x = x > 88.0f ? 88.0f : x;  // keeps 2^n finite
  const float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  const float r2 = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r2 + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  __builtin_memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

ZT_HD float sigmoid(float x) {
  return 1.0f / (1.0f + fast_exp(-x));
}

// SwiGLU: h = silu(g) * u, silu(g) = g * sigmoid(g).
ZT_HD float swiglu_element(float gate, float up) {
  return gate * sigmoid(gate) * up;
}

// d h / d gate = u * s * (1 + g * (1 - s)), d h / d up = silu(g), s = sigmoid(g).
ZT_HD void swiglu_element_backward(float gate, float up, float dh, float* dgate, float* dup) {
  const float s = sigmoid(gate);
  *dgate = dh * up * s * (1.0f + gate * (1.0f - s));
  *dup = dh * gate * s;
}

// One AdamW update exactly as torch.optim.AdamW: decoupled decay first (p *= 1 - lr*wd), then the
// moments and p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps). The scalars are precomputed in double
// and rounded once, as PyTorch does with its Python-float hyperparameters; computing 1 - beta2 in
// float instead would be off by 5e-5 relative.
struct AdamWParams {
  float beta1, one_minus_beta1;
  float beta2, one_minus_beta2;
  float decay_factor;           // 1 - lr * weight_decay
  float step_size;              // lr / (1 - beta1^t)
  float bias_correction2_sqrt;  // sqrt(1 - beta2^t)
  float eps;
};

ZT_HD void adamw_update(const AdamWParams& h, float grad, float* param, float* exp_avg,
                        float* exp_avg_sq) {
  const float p = *param * h.decay_factor;
  const float m = *exp_avg * h.beta1 + grad * h.one_minus_beta1;
  const float v = *exp_avg_sq * h.beta2 + grad * grad * h.one_minus_beta2;
  const float denom = __builtin_sqrtf(v) / h.bias_correction2_sqrt + h.eps;
  *param = p - h.step_size * (m / denom);
  *exp_avg = m;
  *exp_avg_sq = v;
}

}  // namespace zerotune
