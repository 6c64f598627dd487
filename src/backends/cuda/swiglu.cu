// SwiGLU over a packed [gate | up] row, element-wise with the CPU's shared math.
#include "backends/cuda/cuda_check.h"
#include "backends/cuda/element_types.cuh"
#include "kernels/element_math.h"
#include "kernels/swiglu.h"

namespace zerotune::cuda {
namespace {

constexpr unsigned kThreads = 256;

template <typename T>
__global__ void swiglu_forward_kernel(T* h, const T* gate_up, int64_t n, int64_t f) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n * f) return;
  const int64_t row = i / f, col = i % f;
  const T* gu = gate_up + row * 2 * f;
  h[i] = from_f32<T>(swiglu_element(to_f32(gu[col]), to_f32(gu[f + col])));
}

template <typename T>
__global__ void swiglu_backward_kernel(T* dgate_up, const T* dh, const T* gate_up, int64_t n,
                                       int64_t f) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n * f) return;
  const int64_t row = i / f, col = i % f;
  const T* gu = gate_up + row * 2 * f;
  float dgate, dup;
  swiglu_element_backward(to_f32(gu[col]), to_f32(gu[f + col]), to_f32(dh[i]), &dgate, &dup);
  dgate_up[row * 2 * f + col] = from_f32<T>(dgate);
  dgate_up[row * 2 * f + f + col] = from_f32<T>(dup);
}

}  // namespace

void swiglu_forward(const Tensor& h, const Tensor& gate_up) {
  const int64_t n = h.dim(0), f = h.dim(1);
  if (n * f == 0) return;
  dispatch_storage(h.dtype, "swiglu_forward", [&](auto zero) {
    using T = decltype(zero);
    swiglu_forward_kernel<T><<<blocks_for(n * f, kThreads), kThreads, 0, compute_stream()>>>(
        h.ptr<T>(), gate_up.ptr<T>(), n, f);
  });
  check_launch("swiglu_forward");
}

void swiglu_backward(const Tensor& dgate_up, const Tensor& dh, const Tensor& gate_up) {
  const int64_t n = dh.dim(0), f = dh.dim(1);
  if (n * f == 0) return;
  dispatch_storage(dh.dtype, "swiglu_backward", [&](auto zero) {
    using T = decltype(zero);
    swiglu_backward_kernel<T><<<blocks_for(n * f, kThreads), kThreads, 0, compute_stream()>>>(
        dgate_up.ptr<T>(), dh.ptr<T>(), gate_up.ptr<T>(), n, f);
  });
  check_launch("swiglu_backward");
}

}  // namespace zerotune::cuda
