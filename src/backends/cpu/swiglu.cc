#include "kernels/swiglu.h"

#include "kernels/element_math.h"

namespace zerotune::cpu {

void swiglu_forward(float* h, const float* gate_up, int64_t n, int64_t f) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float* g = gate_up + i * 2 * f;
    const float* u = g + f;
    float* hr = h + i * f;
#pragma omp simd
    for (int64_t j = 0; j < f; ++j) hr[j] = swiglu_element(g[j], u[j]);
  }
}

void swiglu_backward(float* dgate_up, const float* dh, const float* gate_up, int64_t n, int64_t f) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float* g = gate_up + i * 2 * f;
    const float* u = g + f;
    const float* dhr = dh + i * f;
    float* dg = dgate_up + i * 2 * f;
    float* du = dg + f;
#pragma omp simd
    for (int64_t j = 0; j < f; ++j) swiglu_element_backward(g[j], u[j], dhr[j], dg + j, du + j);
  }
}

}  // namespace zerotune::cpu
