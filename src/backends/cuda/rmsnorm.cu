// RMSNorm on the GPU: one block per row, sums in f32; the weight gradient is a column reduction
// over rows in a fixed order (deterministic).
#include "backends/cuda/cuda_check.h"
#include "backends/cuda/element_types.cuh"
#include "kernels/rmsnorm.h"

namespace zerotune::cuda {
namespace {

constexpr unsigned kThreads = 256;

template <typename T>
__global__ void rmsnorm_forward_kernel(T* out, float* rstd, const T* x, const T* weight, int64_t d,
                                       float eps) {
  const int64_t row = blockIdx.x;
  const T* xr = x + row * d;
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    const float v = to_f32(xr[i]);
    sum += v * v;
  }
  sum = block_sum(sum);
  const float r = rsqrtf(sum / static_cast<float>(d) + eps);
  if (threadIdx.x == 0) rstd[row] = r;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    out[row * d + i] = from_f32<T>(to_f32(xr[i]) * r * to_f32(weight[i]));
  }
}

// dx = rstd * g - x * rstd^3 * mean(g * x), g = dout * weight.
template <typename T>
__global__ void rmsnorm_backward_dx_kernel(T* dx, const T* dout, const T* x, const T* weight,
                                           const float* rstd, int64_t d, bool accumulate) {
  const int64_t row = blockIdx.x;
  const T* xr = x + row * d;
  const T* gr = dout + row * d;
  float dot = 0.0f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    dot += to_f32(gr[i]) * to_f32(weight[i]) * to_f32(xr[i]);
  }
  dot = block_sum(dot);
  const float r = rstd[row];
  const float c = dot / static_cast<float>(d) * r * r * r;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    float v = r * to_f32(gr[i]) * to_f32(weight[i]) - to_f32(xr[i]) * c;
    if (accumulate) v += to_f32(dx[row * d + i]);
    dx[row * d + i] = from_f32<T>(v);
  }
}

// dweight[j] += sum over rows of dout * x * rstd, one thread per column, rows in order.
template <typename T>
__global__ void rmsnorm_backward_dweight_kernel(float* dweight, const T* dout, const T* x,
                                                const float* rstd, int64_t n, int64_t d) {
  const int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (j >= d) return;
  float sum = 0.0f;
  for (int64_t row = 0; row < n; ++row) {
    sum += to_f32(dout[row * d + j]) * to_f32(x[row * d + j]) * rstd[row];
  }
  dweight[j] += sum;
}

}  // namespace

void rmsnorm_forward(const Tensor& out, const Tensor& rstd, const Tensor& x, const Tensor& weight,
                     float eps) {
  const int64_t n = x.dim(0), d = x.dim(1);
  if (n == 0) return;
  dispatch_storage(x.dtype, "rmsnorm_forward", [&](auto zero) {
    using T = decltype(zero);
    rmsnorm_forward_kernel<T><<<static_cast<unsigned>(n), kThreads, 0, compute_stream()>>>(
        out.ptr<T>(), rstd.ptr<float>(), x.ptr<T>(), weight.ptr<T>(), d, eps);
  });
  check_launch("rmsnorm_forward");
}

void rmsnorm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dout, const Tensor& x,
                      const Tensor& weight, const Tensor& rstd, Accumulate dx_acc) {
  const int64_t n = x.dim(0), d = x.dim(1);
  if (n == 0) return;
  dispatch_storage(x.dtype, "rmsnorm_backward", [&](auto zero) {
    using T = decltype(zero);
    rmsnorm_backward_dweight_kernel<T><<<blocks_for(d, kThreads), kThreads, 0, compute_stream()>>>(
        dweight.ptr<float>(), dout.ptr<T>(), x.ptr<T>(), rstd.ptr<float>(), n, d);
    rmsnorm_backward_dx_kernel<T><<<static_cast<unsigned>(n), kThreads, 0, compute_stream()>>>(
        dx.ptr<T>(), dout.ptr<T>(), x.ptr<T>(), weight.ptr<T>(), rstd.ptr<float>(), d,
        dx_acc == Accumulate::yes);
  });
  check_launch("rmsnorm_backward");
}

}  // namespace zerotune::cuda
