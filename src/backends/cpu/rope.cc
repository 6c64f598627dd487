#include "kernels/rope.h"

namespace zerotune::cpu {

// HF rotate-half: out[i] = x[i] cos - x[i+h] sin, out[i+h] = x[i+h] cos + x[i] sin, i < h = Dh/2.
// The backward pass applies the transpose, i.e. the same rotation with sin negated.
void rope_apply(float* x, int64_t n, int64_t row_width, int64_t n_heads, int64_t head_dim,
                const int32_t* positions, const float* cos, const float* sin, bool backward) {
  const int64_t half = head_dim / 2;
  const float sign = backward ? -1.0f : 1.0f;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < n; ++r) {
    const float* c = cos + static_cast<int64_t>(positions[r]) * half;
    const float* s = sin + static_cast<int64_t>(positions[r]) * half;
    for (int64_t h = 0; h < n_heads; ++h) {
      float* a = x + r * row_width + h * head_dim;
      float* b = a + half;
#pragma omp simd
      for (int64_t i = 0; i < half; ++i) {
        const float ai = a[i], bi = b[i], si = sign * s[i];
        a[i] = ai * c[i] - bi * si;
        b[i] = bi * c[i] + ai * si;
      }
    }
  }
}

}  // namespace zerotune::cpu
