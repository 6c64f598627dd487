#include "kernels/adamw.h"

namespace zerotune::cpu {

void adamw_step(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n,
                const AdamWParams& params) {
  const AdamWParams h = params;
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) adamw_update(h, grad[i], param + i, exp_avg + i, exp_avg_sq + i);
}

}  // namespace zerotune::cpu
