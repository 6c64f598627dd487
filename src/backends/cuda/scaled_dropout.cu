// Inverted dropout with the hashed mask of kernels/scaled_dropout.h, element-wise.
#include "backends/cuda/cuda_check.h"
#include "backends/cuda/element_types.cuh"
#include "kernels/scaled_dropout.h"

namespace zerotune::cuda {
namespace {

constexpr unsigned kThreads = 256;

template <typename T>
__global__ void scaled_dropout_kernel(T* y, const T* x, int64_t n, float kept_scale, float p,
                                      uint64_t seed, bool add) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const float v = p > 0.0f && !dropout_keeps(seed, i, p) ? 0.0f : to_f32(x[i]) * kept_scale;
  y[i] = from_f32<T>(add ? to_f32(y[i]) + v : v);
}

}  // namespace

void scaled_dropout(const Tensor& y, const Tensor& x, float scale, float p, uint64_t seed,
                    Accumulate acc) {
  const int64_t n = x.numel();
  if (n == 0) return;
  dispatch_storage(x.dtype, "scaled_dropout", [&](auto zero) {
    using T = decltype(zero);
    scaled_dropout_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, compute_stream()>>>(
        y.ptr<T>(), x.ptr<T>(), n, scale / (1.0f - p), p, seed, acc == Accumulate::yes);
  });
  check_launch("scaled_dropout");
}

}  // namespace zerotune::cuda
