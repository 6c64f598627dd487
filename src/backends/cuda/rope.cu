// Rotary embedding (HF rotate-half) in place, one thread per rotated pair.
#include "backends/cuda/cuda_check.h"
#include "backends/cuda/element_types.cuh"
#include "kernels/rope.h"

namespace zerotune::cuda {
namespace {

constexpr unsigned kThreads = 256;

template <typename T>
__global__ void rope_kernel(T* x, int64_t n, int64_t row_width, int64_t n_heads, int64_t half,
                            const int32_t* positions, const float* cos, const float* sin,
                            float sign) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n * n_heads * half) return;
  const int64_t r = i / (n_heads * half), h = i / half % n_heads, k = i % half;
  const int64_t table = static_cast<int64_t>(positions[r]) * half + k;
  T* a = x + r * row_width + h * 2 * half + k;
  T* b = a + half;
  const float ai = to_f32(*a), bi = to_f32(*b), c = cos[table], s = sign * sin[table];
  *a = from_f32<T>(ai * c - bi * s);
  *b = from_f32<T>(bi * c + ai * s);
}

}  // namespace

void rope_apply(const Tensor& x, int64_t n_heads, const Tensor& positions, const Tensor& cos,
                const Tensor& sin, RopeDirection direction) {
  const int64_t n = x.dim(0), half = cos.dim(1);
  const int64_t count = n * n_heads * half;
  if (count == 0) return;
  dispatch_storage(x.dtype, "rope_apply", [&](auto zero) {
    using T = decltype(zero);
    rope_kernel<T><<<blocks_for(count, kThreads), kThreads, 0, compute_stream()>>>(
        x.ptr<T>(), n, x.dim(1), n_heads, half, positions.ptr<int32_t>(), cos.ptr<float>(),
        sin.ptr<float>(), direction == RopeDirection::backward ? -1.0f : 1.0f);
  });
  check_launch("rope_apply");
}

}  // namespace zerotune::cuda
