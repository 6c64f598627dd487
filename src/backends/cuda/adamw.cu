// Fused AdamW over flat f32 shards (master weights, gradients, moments), with the CPU's update.
#include <map>
#include <mutex>
#include <vector>
#include "backends/cuda/cuda_check.h"
#include "backends/cuda/element_types.cuh"

#include "core/device_memory.h"
#include "kernels/adamw.h"

namespace zerotune::cuda {
namespace {

constexpr unsigned kThreads = 256;

__global__ void adamw_kernel(float* param, const float* grad, float* exp_avg, float* exp_avg_sq,
                             bf16* compute, int64_t n, AdamWParams h) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  adamw_update(h, grad[i], param + i, exp_avg + i, exp_avg_sq + i);
  if (compute) compute[i] = from_f32<bf16>(param[i]);
}

// Per-block partial sums of squares in double, summed on the host in a fixed order.
__global__ void sum_of_squares_kernel(double* partial, const float* x, int64_t n) {
  double sum = 0.0;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    sum += static_cast<double>(x[i]) * x[i];
  }
  __shared__ double shared[kThreads];
  shared[threadIdx.x] = sum;
  __syncthreads();
  for (unsigned stride = kThreads / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = shared[0];
}

__global__ void scale_kernel(float* x, int64_t n, float factor) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) x[i] *= factor;
}

__global__ void add_kernel(float* x, const float* y, int64_t n) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) x[i] += y[i];
}

constexpr unsigned kSquareBlocks = 1024;

// The partial sums' device buffer, made once per device: no allocation per call. Never freed
// (a static destructor would run after the CUDA runtime has shut down).
double* square_partials(const Device& device) {
  static std::mutex mutex;
  static auto* buffers = new std::map<int, Buffer>;
  std::lock_guard<std::mutex> lock(mutex);
  Buffer& b = (*buffers)[device.index];
  if (!b.view().data) b = Buffer(DType::f64, Shape{kSquareBlocks}, device);
  return b.view().ptr<double>();
}

}  // namespace

void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                const Tensor& exp_avg_sq, const AdamWParams& params, const Tensor& compute) {
  const int64_t n = param.numel();
  if (n == 0) return;
  ZT_CHECK(param.dtype == DType::f32 && grad.dtype == DType::f32 && exp_avg.dtype == DType::f32 &&
               exp_avg_sq.dtype == DType::f32,
           "adamw_step: the CUDA backend keeps f32 master weights, gradients and moments, got ",
           describe(param), ", ", describe(grad), ", ", describe(exp_avg), ", ",
           describe(exp_avg_sq));
  adamw_kernel<<<blocks_for(n, kThreads), kThreads, 0, compute_stream()>>>(
      param.ptr<float>(), grad.ptr<float>(), exp_avg.ptr<float>(), exp_avg_sq.ptr<float>(),
      compute.data ? compute.ptr<bf16>() : nullptr, n, params);
  check_launch("adamw_step");
}

double sum_of_squares(const Tensor& x) {
  const int64_t n = x.numel();
  if (n == 0) return 0.0;
  double* partial = square_partials(x.device);
  sum_of_squares_kernel<<<kSquareBlocks, kThreads, 0, compute_stream()>>>(partial,
                                                                          x.ptr<float>(), n);
  check_launch("sum_of_squares");
  std::vector<double> host(kSquareBlocks);
  copy_bytes(host.data(), Device::cpu(), partial, x.device, kSquareBlocks * 8);
  double sum = 0.0;
  for (double v : host) sum += v;
  return sum;
}

void scale_in_place(const Tensor& x, float factor) {
  const int64_t n = x.numel();
  if (n == 0) return;
  scale_kernel<<<blocks_for(n, kThreads), kThreads, 0, compute_stream()>>>(x.ptr<float>(), n,
                                                                           factor);
  check_launch("scale_in_place");
}

void add_in_place(const Tensor& x, const Tensor& y) {
  const int64_t n = x.numel();
  if (n == 0) return;
  add_kernel<<<blocks_for(n, kThreads), kThreads, 0, compute_stream()>>>(x.ptr<float>(),
                                                                         y.ptr<float>(), n);
  check_launch("add_in_place");
}

}  // namespace zerotune::cuda
