// Bias of a linear layer: a row-broadcast add forward, column sums backward.
#include "backends/cuda/cuda_check.h"
#include "backends/cuda/element_types.cuh"
#include "kernels/bias.h"

namespace zerotune::cuda {
namespace {

constexpr unsigned kThreads = 256;

template <typename T>
__global__ void bias_forward_kernel(T* y, const T* bias, int64_t n, int64_t out) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n * out) return;
  y[i] = from_f32<T>(to_f32(y[i]) + to_f32(bias[i % out]));
}

// One thread per column, rows in order: adjacent threads read adjacent columns of a row
// (coalesced), and the sum has a fixed order (no atomics).
template <typename T>
__global__ void bias_backward_kernel(float* dbias, const T* dy, int64_t n, int64_t out) {
  const int64_t col = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (col >= out) return;
  float sum = 0.0f;
  for (int64_t r = 0; r < n; ++r) sum += to_f32(dy[r * out + col]);
  dbias[col] += sum;
}

}  // namespace

void bias_forward(const Tensor& y, const Tensor& bias) {
  const int64_t n = y.dim(0), out = y.dim(1);
  if (n * out == 0) return;
  dispatch_storage(y.dtype, "bias_forward", [&](auto zero) {
    using T = decltype(zero);
    bias_forward_kernel<T><<<blocks_for(n * out, kThreads), kThreads, 0, compute_stream()>>>(
        y.ptr<T>(), bias.ptr<T>(), n, out);
  });
  check_launch("bias_forward");
}

void bias_backward(const Tensor& dbias, const Tensor& dy) {
  const int64_t n = dy.dim(0), out = dy.dim(1);
  if (out == 0) return;
  dispatch_storage(dy.dtype, "bias_backward", [&](auto zero) {
    using T = decltype(zero);
    bias_backward_kernel<T><<<blocks_for(out, kThreads), kThreads, 0, compute_stream()>>>(
        dbias.ptr<float>(), dy.ptr<T>(), n, out);
  });
  check_launch("bias_backward");
}

}  // namespace zerotune::cuda
