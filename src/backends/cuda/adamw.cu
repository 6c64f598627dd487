// Fused AdamW over flat f32 shards (master weights, gradients, moments), with the CPU's update.
#include "backends/cuda/cuda_check.h"
#include "backends/cuda/element_types.cuh"
#include "kernels/adamw.h"

namespace zerotune::cuda {
namespace {

constexpr unsigned kThreads = 256;

__global__ void adamw_kernel(float* param, const float* grad, float* exp_avg, float* exp_avg_sq,
                             int64_t n, AdamWParams h) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  adamw_update(h, grad[i], param + i, exp_avg + i, exp_avg_sq + i);
}

}  // namespace

void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                const Tensor& exp_avg_sq, const AdamWParams& params) {
  const int64_t n = param.numel();
  if (n == 0) return;
  ZT_CHECK(param.dtype == DType::f32 && grad.dtype == DType::f32 && exp_avg.dtype == DType::f32 &&
               exp_avg_sq.dtype == DType::f32,
           "adamw_step: the CUDA backend keeps f32 master weights, gradients and moments, got ",
           describe(param), ", ", describe(grad), ", ", describe(exp_avg), ", ",
           describe(exp_avg_sq));
  adamw_kernel<<<blocks_for(n, kThreads), kThreads, 0, compute_stream()>>>(
      param.ptr<float>(), grad.ptr<float>(), exp_avg.ptr<float>(), exp_avg_sq.ptr<float>(), n,
      params);
  check_launch("adamw_step");
}

}  // namespace zerotune::cuda
