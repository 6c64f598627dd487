// Attention over the slotted key/value cache on the GPU (kernels/decode_attention.h). One block
// per (row, head) walks the row's visible positions in tiles of kTile: scores into shared memory,
// then an online softmax (running max and sum, the partial output rescaled when the max grows),
// so any cache length fits in a fixed amount of shared memory. Each thread owns output elements
// threadIdx.x and threadIdx.x + kThreads of the head. Simple rather than fast: a decode step's
// attention reads only the cache, far less than the weights' GEMMs.
#include <cmath>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/element_types.cuh"
#include "kernels/decode_attention.h"
#include "kernels/element_math.h"

namespace zerotune::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kMaxHeadDim = 2 * kThreads;
constexpr int kTile = 256;

// Maximum over the block; every thread gets it.
__device__ __forceinline__ float block_max(float v) {
  __shared__ float partial[32];
  for (int offset = 16; offset > 0; offset >>= 1) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();  // partial may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < static_cast<int>(blockDim.x / 32) ? partial[lane] : -INFINITY;
  for (int offset = 16; offset > 0; offset >>= 1) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  }
  return v;
}

// One thread per element of the rows' keys and values.
template <typename T>
__global__ void kv_store_kernel(T* k_cache, T* v_cache, const T* qkv, const int32_t* slots,
                                const int32_t* positions, DecodeAttentionShape s) {
  const int64_t kv_w = s.kv_width();
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= s.rows * kv_w) return;
  const int64_t row = i / kv_w, e = i % kv_w;
  const int64_t at = (static_cast<int64_t>(slots[row]) * s.max_seq_len + positions[row]) * kv_w;
  const T* src = qkv + row * s.qkv_width() + s.heads * s.head_dim;
  k_cache[at + e] = src[e];
  v_cache[at + e] = src[kv_w + e];
}

template <typename T>
__global__ void attention_kernel(T* out, const T* qkv, const T* k_cache, const T* v_cache,
                                 const int32_t* slots, const int32_t* positions,
                                 DecodeAttentionShape s) {
  __shared__ float q[kMaxHeadDim];
  __shared__ float p[kTile];
  const int64_t row = blockIdx.x / s.heads, h = blockIdx.x % s.heads;
  const int64_t Dh = s.head_dim, kv_w = s.kv_width();
  const int64_t kv_offset =
      static_cast<int64_t>(slots[row]) * s.max_seq_len * kv_w + h / (s.heads / s.kv_heads) * Dh;
  const T* keys = k_cache + kv_offset;
  const T* values = v_cache + kv_offset;
  const int64_t visible = static_cast<int64_t>(positions[row]) + 1;
  const float scale = 1.0f / sqrtf(static_cast<float>(Dh));
  for (int64_t e = threadIdx.x; e < Dh; e += blockDim.x) {
    q[e] = to_f32(qkv[row * s.qkv_width() + h * Dh + e]);
  }
  __syncthreads();
  float acc[2] = {0.0f, 0.0f};  // output elements threadIdx.x and threadIdx.x + kThreads
  float running_max = -INFINITY, running_sum = 0.0f;
  for (int64_t start = 0; start < visible; start += kTile) {
    const int64_t count = visible - start < kTile ? visible - start : kTile;
    float local_max = -INFINITY;
    for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
      const T* k = keys + (start + j) * kv_w;
      float dot = 0.0f;
      for (int64_t e = 0; e < Dh; ++e) dot += q[e] * to_f32(k[e]);
      p[j] = dot * scale;
      local_max = fmaxf(local_max, p[j]);
    }
    const float new_max = fmaxf(running_max, block_max(local_max));
    float local_sum = 0.0f;
    for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
      p[j] = fast_exp(p[j] - new_max);
      local_sum += p[j];
    }
    const float tile_sum = block_sum(local_sum);  // its barrier also publishes p
    // fast_exp clamps very negative arguments: the first tile's correction is ~1e-38, times 0.
    const float correction = fast_exp(running_max - new_max);
    running_sum = running_sum * correction + tile_sum;
    for (int m = 0; m < 2; ++m) {
      const int64_t e = threadIdx.x + m * kThreads;
      if (e >= Dh) continue;
      float sum = acc[m] * correction;
      for (int64_t j = 0; j < count; ++j) sum += p[j] * to_f32(values[(start + j) * kv_w + e]);
      acc[m] = sum;
    }
    running_max = new_max;
    __syncthreads();  // the next tile overwrites p
  }
  for (int m = 0; m < 2; ++m) {
    const int64_t e = threadIdx.x + m * kThreads;
    if (e < Dh) out[row * s.heads * Dh + h * Dh + e] = from_f32<T>(acc[m] / running_sum);
  }
}

}  // namespace

void decode_kv_store(const Tensor& k_cache, const Tensor& v_cache, const Tensor& qkv,
                     const Tensor& slots, const Tensor& positions,
                     const DecodeAttentionShape& shape) {
  const int64_t count = shape.rows * shape.kv_width();
  if (count == 0) return;
  dispatch_storage(qkv.dtype, "decode_kv_store", [&](auto zero) {
    using T = decltype(zero);
    kv_store_kernel<T><<<blocks_for(count, 256), 256, 0, compute_stream()>>>(
        k_cache.ptr<T>(), v_cache.ptr<T>(), qkv.ptr<T>(), slots.ptr<int32_t>(),
        positions.ptr<int32_t>(), shape);
  });
  check_launch("decode_kv_store");
}

void decode_attention(const Tensor& out, const Tensor& qkv, const Tensor& k_cache,
                      const Tensor& v_cache, const Tensor& slots, const Tensor& positions,
                      const DecodeAttentionShape& shape) {
  const int64_t blocks = shape.rows * shape.heads;
  if (blocks == 0) return;
  ZT_CHECK(shape.head_dim <= kMaxHeadDim, "decode_attention: head_dim ", shape.head_dim,
           " exceeds the CUDA kernel's ", kMaxHeadDim);
  dispatch_storage(qkv.dtype, "decode_attention", [&](auto zero) {
    using T = decltype(zero);
    attention_kernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, compute_stream()>>>(
        out.ptr<T>(), qkv.ptr<T>(), k_cache.ptr<T>(), v_cache.ptr<T>(), slots.ptr<int32_t>(),
        positions.ptr<int32_t>(), shape);
  });
  check_launch("decode_attention");
}

}  // namespace zerotune::cuda
