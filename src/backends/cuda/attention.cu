// Causal grouped-query attention over packed qkv rows. bf16 storage with head_dim 64 or 128 runs
// the tensor-core flash kernels (attention_flash.cu); everything else, f32 storage (the exact
// reference of the f32 gradient tests) included, runs the simple kernels here: on CUDA cores in
// f32 arithmetic, one warp per query row with an online softmax (forward); the backward
// recomputes the probabilities from the saved log-sum-exp and is split into a query-side kernel
// (dq) and a key-side kernel (dk, dv) so that every sum runs in a fixed order without atomics
// (bit-identical reruns). ZEROTUNE_ATTENTION=simple keeps bf16 on the simple kernels too.
#include <cstdlib>
#include <string_view>

#include "backends/cuda/attention_flash.h"
#include "backends/cuda/cuda_check.h"
#include "backends/cuda/element_types.cuh"
#include "backends/cuda/workspace.h"
#include "core/device_memory.h"
#include "kernels/attention.h"

namespace zerotune::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 8;
constexpr int kMaxHeadDim = 256;
constexpr int kPerLane = kMaxHeadDim / kWarp;  // head-dim elements each lane holds

struct Dims {
  int64_t batch, seq, heads, kv_heads, head_dim, width;  // width: qkv row length
  float scale;
};

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ bool visible(const int32_t* segments, int64_t row_i, int64_t row_j) {
  return segments == nullptr || segments[row_i] == segments[row_j];
}

// Loads head-dim vector `src` (lane holds elements lane, lane+32, ...) into registers.
template <typename T>
__device__ __forceinline__ void load(float (&dst)[kPerLane], const T* src, int64_t head_dim) {
#pragma unroll
  for (int k = 0; k < kPerLane; ++k) {
    const int64_t e = threadIdx.x % kWarp + k * kWarp;
    dst[k] = e < head_dim ? to_f32(src[e]) : 0.0f;
  }
}

template <typename T>
__device__ __forceinline__ float dot(const float (&a)[kPerLane], const T* b, int64_t head_dim) {
  float s = 0.0f;
#pragma unroll
  for (int k = 0; k < kPerLane; ++k) {
    const int64_t e = threadIdx.x % kWarp + k * kWarp;
    if (e < head_dim) s += a[k] * to_f32(b[e]);
  }
  return warp_sum(s);
}

// Warp w of the grid: query row (b, t) and head h. lse: [B, H, T].
template <typename T>
__global__ void attention_forward_kernel(T* out, float* lse, const T* qkv, const int32_t* segments,
                                         Dims d) {
  const int64_t warp = blockIdx.x * static_cast<int64_t>(kWarpsPerBlock) + threadIdx.x / kWarp;
  if (warp >= d.batch * d.seq * d.heads) return;
  const int64_t h = warp % d.heads, t = warp / d.heads % d.seq, b = warp / d.heads / d.seq;
  const int64_t kv = h / (d.heads / d.kv_heads);
  const int64_t row_i = b * d.seq + t;
  float q[kPerLane], acc[kPerLane];
  load(q, qkv + row_i * d.width + h * d.head_dim, d.head_dim);
#pragma unroll
  for (int k = 0; k < kPerLane; ++k) acc[k] = 0.0f;
  float m = -INFINITY, l = 0.0f;
  const int64_t k_off = d.heads * d.head_dim + kv * d.head_dim;
  const int64_t v_off = (d.heads + d.kv_heads) * d.head_dim + kv * d.head_dim;
  for (int64_t j = 0; j <= t; ++j) {
    const int64_t row_j = b * d.seq + j;
    if (!visible(segments, row_i, row_j)) continue;
    const float s = dot(q, qkv + row_j * d.width + k_off, d.head_dim) * d.scale;
    const float m_new = fmaxf(m, s);
    const float correction = __expf(m - m_new), p = __expf(s - m_new);
    l = l * correction + p;
    const T* v = qkv + row_j * d.width + v_off;
#pragma unroll
    for (int k = 0; k < kPerLane; ++k) {
      const int64_t e = threadIdx.x % kWarp + k * kWarp;
      acc[k] = acc[k] * correction + (e < d.head_dim ? p * to_f32(v[e]) : 0.0f);
    }
    m = m_new;
  }
  T* o = out + row_i * d.heads * d.head_dim + h * d.head_dim;
#pragma unroll
  for (int k = 0; k < kPerLane; ++k) {
    const int64_t e = threadIdx.x % kWarp + k * kWarp;
    if (e < d.head_dim) o[e] = from_f32<T>(acc[k] / l);
  }
  if (threadIdx.x % kWarp == 0) lse[(b * d.heads + h) * d.seq + t] = m + logf(l);
}

// delta[b, h, t] = dout_i . out_i (the softmax backward's row term).
template <typename T>
__global__ void attention_delta_kernel(float* delta, const T* dout, const T* out, Dims d) {
  const int64_t warp = blockIdx.x * static_cast<int64_t>(kWarpsPerBlock) + threadIdx.x / kWarp;
  if (warp >= d.batch * d.seq * d.heads) return;
  const int64_t h = warp % d.heads, t = warp / d.heads % d.seq, b = warp / d.heads / d.seq;
  const int64_t offset = (b * d.seq + t) * d.heads * d.head_dim + h * d.head_dim;
  float o[kPerLane];
  load(o, out + offset, d.head_dim);
  const float s = dot(o, dout + offset, d.head_dim);
  if (threadIdx.x % kWarp == 0) delta[(b * d.heads + h) * d.seq + t] = s;
}

// dq_i = scale * sum_j ds_ij k_j, ds_ij = p_ij (dout_i . v_j - delta_i), one warp per (row, head).
template <typename T>
__global__ void attention_dq_kernel(T* dqkv, const T* dout, const T* qkv, const float* lse,
                                    const float* delta, const int32_t* segments, Dims d) {
  const int64_t warp = blockIdx.x * static_cast<int64_t>(kWarpsPerBlock) + threadIdx.x / kWarp;
  if (warp >= d.batch * d.seq * d.heads) return;
  const int64_t h = warp % d.heads, t = warp / d.heads % d.seq, b = warp / d.heads / d.seq;
  const int64_t kv = h / (d.heads / d.kv_heads);
  const int64_t row_i = b * d.seq + t;
  float q[kPerLane], g[kPerLane], dq[kPerLane];
  load(q, qkv + row_i * d.width + h * d.head_dim, d.head_dim);
  load(g, dout + row_i * d.heads * d.head_dim + h * d.head_dim, d.head_dim);
#pragma unroll
  for (int k = 0; k < kPerLane; ++k) dq[k] = 0.0f;
  const float row_lse = lse[(b * d.heads + h) * d.seq + t];
  const float row_delta = delta[(b * d.heads + h) * d.seq + t];
  const int64_t k_off = d.heads * d.head_dim + kv * d.head_dim;
  const int64_t v_off = (d.heads + d.kv_heads) * d.head_dim + kv * d.head_dim;
  for (int64_t j = 0; j <= t; ++j) {
    const int64_t row_j = b * d.seq + j;
    if (!visible(segments, row_i, row_j)) continue;
    const T* kr = qkv + row_j * d.width + k_off;
    const float p = __expf(dot(q, kr, d.head_dim) * d.scale - row_lse);
    const float ds = p * (dot(g, qkv + row_j * d.width + v_off, d.head_dim) - row_delta);
#pragma unroll
    for (int k = 0; k < kPerLane; ++k) {
      const int64_t e = threadIdx.x % kWarp + k * kWarp;
      if (e < d.head_dim) dq[k] += ds * to_f32(kr[e]);
    }
  }
  T* dst = dqkv + row_i * d.width + h * d.head_dim;
#pragma unroll
  for (int k = 0; k < kPerLane; ++k) {
    const int64_t e = threadIdx.x % kWarp + k * kWarp;
    if (e < d.head_dim) dst[e] = from_f32<T>(dq[k] * d.scale);
  }
}

// dk_j = scale * sum over the group's query heads and rows i >= j of ds_ij q_i;
// dv_j = sum of p_ij dout_i. One warp per (key row, kv head).
template <typename T>
__global__ void attention_dkv_kernel(T* dqkv, const T* dout, const T* qkv, const float* lse,
                                     const float* delta, const int32_t* segments, Dims d) {
  const int64_t warp = blockIdx.x * static_cast<int64_t>(kWarpsPerBlock) + threadIdx.x / kWarp;
  if (warp >= d.batch * d.seq * d.kv_heads) return;
  const int64_t kv = warp % d.kv_heads, j = warp / d.kv_heads % d.seq,
                b = warp / d.kv_heads / d.seq;
  const int64_t group = d.heads / d.kv_heads;
  const int64_t row_j = b * d.seq + j;
  const int64_t k_off = d.heads * d.head_dim + kv * d.head_dim;
  const int64_t v_off = (d.heads + d.kv_heads) * d.head_dim + kv * d.head_dim;
  float kr[kPerLane], vr[kPerLane], dk[kPerLane], dv[kPerLane];
  load(kr, qkv + row_j * d.width + k_off, d.head_dim);
  load(vr, qkv + row_j * d.width + v_off, d.head_dim);
#pragma unroll
  for (int k = 0; k < kPerLane; ++k) dk[k] = dv[k] = 0.0f;
  for (int64_t h = kv * group; h < (kv + 1) * group; ++h) {
    for (int64_t t = j; t < d.seq; ++t) {
      const int64_t row_i = b * d.seq + t;
      if (!visible(segments, row_i, row_j)) continue;
      const T* q = qkv + row_i * d.width + h * d.head_dim;
      const T* g = dout + row_i * d.heads * d.head_dim + h * d.head_dim;
      const float p = __expf(dot(kr, q, d.head_dim) * d.scale - lse[(b * d.heads + h) * d.seq + t]);
      const float ds = p * (dot(vr, g, d.head_dim) - delta[(b * d.heads + h) * d.seq + t]);
#pragma unroll
      for (int k = 0; k < kPerLane; ++k) {
        const int64_t e = threadIdx.x % kWarp + k * kWarp;
        if (e < d.head_dim) {
          dk[k] += ds * to_f32(q[e]);
          dv[k] += p * to_f32(g[e]);
        }
      }
    }
  }
#pragma unroll
  for (int k = 0; k < kPerLane; ++k) {
    const int64_t e = threadIdx.x % kWarp + k * kWarp;
    if (e < d.head_dim) {
      dqkv[row_j * d.width + k_off + e] = from_f32<T>(dk[k] * d.scale);
      dqkv[row_j * d.width + v_off + e] = from_f32<T>(dv[k]);
    }
  }
}

Dims dims_of(const AttentionShape& s) {
  ZT_CHECK(s.head_dim <= kMaxHeadDim, "attention (CUDA): head_dim ", s.head_dim, " above ",
           kMaxHeadDim);
  return Dims{s.batch,
              s.seq_len,
              s.n_heads,
              s.n_kv_heads,
              s.head_dim,
              s.qkv_width(),
              1.0f / sqrtf(static_cast<float>(s.head_dim))};
}

unsigned warps_blocks(int64_t warps) {
  return static_cast<unsigned>((warps + kWarpsPerBlock - 1) / kWarpsPerBlock);
}

enum class AttentionKernels { flash, simple };

// ZEROTUNE_ATTENTION (read once): unset or "flash" lets bf16 take the tensor-core kernels where
// they apply, "simple" keeps every call on the kernels of this file.
AttentionKernels requested_kernels() {
  static const AttentionKernels kernels = [] {
    const char* value = std::getenv("ZEROTUNE_ATTENTION");
    const std::string_view name = value ? value : "";
    if (name.empty() || name == "flash") return AttentionKernels::flash;
    ZT_CHECK(name == "simple", "ZEROTUNE_ATTENTION: expected flash or simple, got '", name, "'");
    return AttentionKernels::simple;
  }();
  return kernels;
}

void check_storage(const char* op, const char* name, const Tensor& t, const Tensor& qkv) {
  ZT_CHECK(t.dtype == qkv.dtype, op, ": ", name, " is ", dtype_name(t.dtype), " but qkv is ",
           dtype_name(qkv.dtype));
}

}  // namespace

void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& qkv,
                       const Tensor& segments, const AttentionShape& shape) {
  check_storage("attention_forward", "out", out, qkv);
  const Dims d = dims_of(shape);
  const int32_t* seg = present(segments) ? segments.ptr<int32_t>() : nullptr;
  if (requested_kernels() == AttentionKernels::flash &&
      flash_attention_supported(shape, qkv, out)) {
    flash_attention_forward(out, lse, qkv, seg, shape);
    return;
  }
  dispatch_storage(qkv.dtype, "attention_forward", [&](auto zero) {
    using T = decltype(zero);
    attention_forward_kernel<T>
        <<<warps_blocks(d.batch * d.seq * d.heads), kWarpsPerBlock * kWarp, 0, compute_stream()>>>(
            out.ptr<T>(), lse.ptr<float>(), qkv.ptr<T>(), seg, d);
  });
  check_launch("attention_forward");
}

void attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                        const Tensor& out, const Tensor& lse, const Tensor& segments,
                        const AttentionShape& shape) {
  check_storage("attention_backward", "dqkv", dqkv, qkv);
  check_storage("attention_backward", "dout", dout, qkv);
  check_storage("attention_backward", "out", out, qkv);
  const Dims d = dims_of(shape);
  const int32_t* seg = present(segments) ? segments.ptr<int32_t>() : nullptr;
  // Row deltas rowsum(dout * out) [B, H, T]: a grow-only workspace, reused by the next call in
  // stream order.
  float* delta = static_cast<float*>(
      workspace(Workspace::attention_delta, d.batch * d.heads * d.seq * 4, qkv.device));
  const unsigned threads = kWarpsPerBlock * kWarp;
  const bool flash = requested_kernels() == AttentionKernels::flash &&
                     flash_attention_supported(shape, qkv, out, dout, dqkv);
  dispatch_storage(qkv.dtype, "attention_backward", [&](auto zero) {
    using T = decltype(zero);
    attention_delta_kernel<T>
        <<<warps_blocks(d.batch * d.seq * d.heads), threads, 0, compute_stream()>>>(
            delta, dout.ptr<T>(), out.ptr<T>(), d);
    check_launch("attention_backward (delta)");
    if (flash) return;
    attention_dq_kernel<T>
        <<<warps_blocks(d.batch * d.seq * d.heads), threads, 0, compute_stream()>>>(
            dqkv.ptr<T>(), dout.ptr<T>(), qkv.ptr<T>(), lse.ptr<float>(), delta,
            seg, d);
    attention_dkv_kernel<T>
        <<<warps_blocks(d.batch * d.seq * d.kv_heads), threads, 0, compute_stream()>>>(
            dqkv.ptr<T>(), dout.ptr<T>(), qkv.ptr<T>(), lse.ptr<float>(), delta,
            seg, d);
    check_launch("attention_backward");
  });
  if (flash) flash_attention_backward(dqkv, dout, qkv, lse, delta, seg, shape);
}

}  // namespace zerotune::cuda
