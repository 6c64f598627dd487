// Storage types of the CUDA kernels: activations and weights in f32 or bf16, arithmetic in f32.
#pragma once

#include <cuda_bf16.h>

#include "core/check.h"
#include "core/dtype.h"

namespace zerotune::cuda {

using bf16 = __nv_bfloat16;

__device__ __forceinline__ float to_f32(float x) {
  return x;
}
__device__ __forceinline__ float to_f32(bf16 x) {
  return __bfloat162float(x);
}

template <typename T>
__device__ __forceinline__ T from_f32(float x);
template <>
__device__ __forceinline__ float from_f32<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ bf16 from_f32<bf16>(float x) {
  return __float2bfloat16_rn(x);  // round to nearest even, as the CPU's f32_to_bf16
}

// Calls fn(T{}) with T the storage type of `dtype` (f32 or bf16); other dtypes fail naming `op`.
template <typename Fn>
void dispatch_storage(DType dtype, const char* op, Fn&& fn) {
  switch (dtype) {
    case DType::f32:
      fn(float{});
      return;
    case DType::bf16:
      fn(bf16{});
      return;
    default:
      fail(str(op, ": the CUDA backend stores f32 or bf16, got ", dtype_name(dtype)));
  }
}

inline unsigned blocks_for(int64_t n, unsigned threads) {
  return static_cast<unsigned>((n + threads - 1) / threads);
}

// Sum over a block of blockDim.x (a multiple of 32, <= 1024) threads; every thread gets the sum.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float partial[32];
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();  // partial may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int warps = blockDim.x / 32;
  v = lane < warps ? partial[lane] : 0.0f;
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

}  // namespace zerotune::cuda
