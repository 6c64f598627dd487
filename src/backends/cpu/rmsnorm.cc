#include "kernels/rmsnorm.h"

#include "backends/cpu/scratch.h"

#include <omp.h>

#include <cmath>
#include <vector>

namespace zerotune::cpu {

void rmsnorm_forward(float* out, float* rstd, const float* x, const float* weight, int64_t n,
                     int64_t d, float eps) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float* xr = x + i * d;
    float* yr = out + i * d;
    float sum_sq = 0.0f;
#pragma omp simd reduction(+ : sum_sq)
    for (int64_t j = 0; j < d; ++j) sum_sq += xr[j] * xr[j];
    const float r = 1.0f / std::sqrt(sum_sq / static_cast<float>(d) + eps);
    rstd[i] = r;
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) yr[j] = (xr[j] * r) * weight[j];
  }
}

// y = w * x * r, r = (mean(x^2) + eps)^-1/2. With g = dy * w:
// dx = r * (g - x * r^2 * mean(g * x)), dw = sum_rows dy * x * r.
void rmsnorm_backward(float* dx, float* dweight, const float* dout, const float* x,
                      const float* weight, const float* rstd, int64_t n, int64_t d, bool dx_acc) {
  const int threads = omp_get_max_threads();
  float* partial = scratch_floats(Scratch::rmsnorm_partials, threads * d);  // [threads, D]
  for (int64_t i = 0; i < threads * d; ++i) partial[i] = 0.0f;
#pragma omp parallel num_threads(threads)
  {
    float* dw_local = partial + static_cast<int64_t>(omp_get_thread_num()) * d;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const float* xr = x + i * d;
      const float* gr = dout + i * d;
      float* dxr = dx + i * d;
      const float r = rstd[i];
      float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
      for (int64_t j = 0; j < d; ++j) dot += gr[j] * weight[j] * xr[j];
      const float c = dot * r * r / static_cast<float>(d);
      if (dx_acc) {
#pragma omp simd
        for (int64_t j = 0; j < d; ++j) dxr[j] += r * (gr[j] * weight[j] - xr[j] * c);
      } else {
#pragma omp simd
        for (int64_t j = 0; j < d; ++j) dxr[j] = r * (gr[j] * weight[j] - xr[j] * c);
      }
#pragma omp simd
      for (int64_t j = 0; j < d; ++j) dw_local[j] += gr[j] * xr[j] * r;
    }
  }
  // Fixed reduction order over threads: reproducible for a given thread count.
  for (int t = 0; t < threads; ++t) {
    const float* p = partial + static_cast<int64_t>(t) * d;
    for (int64_t j = 0; j < d; ++j) dweight[j] += p[j];
  }
}

}  // namespace zerotune::cpu
