// The LM head fused with cross-entropy on the GPU, a chunk of rows at a time: logits (f32) by
// cuBLASLt, one block per row for the softmax (the vocabulary sum in double, as on the CPU), the
// logit gradient written in the storage type, then dx and dw by cuBLASLt. Logits never exist for
// more than one chunk.
#include <vector>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/element_types.cuh"
#include "backends/cuda/matmul.h"
#include "backends/cuda/workspace.h"
#include "core/device_memory.h"
#include "kernels/cross_entropy.h"

namespace zerotune::cuda {
namespace {

constexpr unsigned kThreads = 256;
constexpr int64_t kChunkBytes = int64_t{512} << 20;  // f32 logits of one chunk

__device__ double block_sum_double(double v) {
  __shared__ double partial[32];
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < static_cast<int>(blockDim.x / 32) ? partial[lane] : 0.0;
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ float block_max(float v) {
  __shared__ float partial[32];
  for (int offset = 16; offset > 0; offset >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < static_cast<int>(blockDim.x / 32) ? partial[lane] : -INFINITY;
  for (int offset = 16; offset > 0; offset >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Row r of the chunk: loss[r] = logsumexp - logit[target]; dlogits = scale * (softmax - onehot)
// (zero for an ignored row) when `dlogits` is set.
template <typename T>
__global__ void softmax_loss_kernel(float* loss, T* dlogits, const float* logits,
                                    const int32_t* targets, int64_t v, float scale) {
  const int64_t r = blockIdx.x;
  const float* row = logits + r * v;
  const int32_t target = targets[r];
  if (target == kIgnoreIndex) {
    if (threadIdx.x == 0) loss[r] = 0.0f;
    if (dlogits) {
      for (int64_t i = threadIdx.x; i < v; i += blockDim.x) dlogits[r * v + i] = from_f32<T>(0.0f);
    }
    return;
  }
  // Read before any thread writes: with f32 storage dlogits overwrites this very row.
  const float target_logit = row[target];
  float m = -INFINITY;
  for (int64_t i = threadIdx.x; i < v; i += blockDim.x) m = fmaxf(m, row[i]);
  m = block_max(m);
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < v; i += blockDim.x)
    sum += static_cast<double>(__expf(row[i] - m));
  sum = block_sum_double(sum);
  const float lse = m + static_cast<float>(log(sum));
  if (threadIdx.x == 0) loss[r] = lse - target_logit;
  if (!dlogits) return;
  __syncthreads();  // every thread is done reading the row before it is overwritten
  for (int64_t i = threadIdx.x; i < v; i += blockDim.x) {
    const float p = __expf(row[i] - lse);
    dlogits[r * v + i] = from_f32<T>(scale * (p - (i == target ? 1.0f : 0.0f)));
  }
}

}  // namespace

CrossEntropyResult lm_head_cross_entropy(const Tensor& x, const Tensor& w, const Tensor& targets,
                                         float scale, const Tensor& dx, const Tensor& dw,
                                         int64_t chunk_rows) {
  const int64_t n = x.dim(0), d = x.dim(1), v = w.dim(0);
  const bool backward = present(dx);
  if (chunk_rows <= 0) chunk_rows = std::max<int64_t>(1, kChunkBytes / (v * 4));
  chunk_rows = std::min(chunk_rows, std::max<int64_t>(n, 1));
  const std::vector<int32_t> host_targets = host_i32(targets);
  CrossEntropyResult result;
  for (int32_t t : host_targets) result.count += t != kIgnoreIndex;
  if (n == 0) return result;
  float* logits =
      static_cast<float*>(workspace(Workspace::lm_head_logits, chunk_rows * v * 4, x.device));
  // With f32 storage the gradient overwrites the logits in place.
  void* dlogits_storage =
      backward && x.dtype != DType::f32
          ? workspace(Workspace::lm_head_dlogits, chunk_rows * v * dtype_size(x.dtype), x.device)
          : nullptr;
  float* row_loss = static_cast<float*>(workspace(Workspace::lm_head_row_loss, n * 4, x.device));
  const int64_t elem = dtype_size(x.dtype);
  for (int64_t r0 = 0; r0 < n; r0 += chunk_rows) {
    const int64_t rows = std::min(chunk_rows, n - r0);
    const char* x_chunk = static_cast<const char*>(x.data) + r0 * d * elem;
    // logits[rows, V] = x_chunk W^T: column-major logits^T [V x rows] = W^T' x_chunk^T'
    gemm("lm_head_cross_entropy", true, false, v, rows, d, 1.0f, w.data, w.dtype, d, x_chunk,
         x.dtype, d, 0.0f, logits, DType::f32, v);
    void* dl = backward ? (dlogits_storage ? dlogits_storage : logits) : nullptr;
    dispatch_storage(x.dtype, "lm_head_cross_entropy", [&](auto zero) {
      using T = decltype(zero);
      softmax_loss_kernel<T><<<static_cast<unsigned>(rows), kThreads, 0, compute_stream()>>>(
          row_loss + r0, static_cast<T*>(dl), logits, targets.ptr<int32_t>() + r0, v, scale);
    });
    check_launch("lm_head_cross_entropy");
    if (!backward) continue;
    // dx_chunk[rows, D] = dlogits W: column-major dx^T [D x rows] = W^T' [D x V] dlogits^T'
    gemm("lm_head_cross_entropy", false, false, d, rows, v, 1.0f, w.data, w.dtype, d, dl, x.dtype,
         v, 0.0f, static_cast<char*>(dx.data) + r0 * d * dtype_size(dx.dtype), dx.dtype, d);
    if (!dw.data) continue;  // a frozen head
    // dw[V, D] += dlogits^T x_chunk: column-major dw^T [D x V] = x_chunk^T' [D x rows] dlogits
    gemm("lm_head_cross_entropy", false, true, d, v, rows, 1.0f, x_chunk, x.dtype, d, dl, x.dtype,
         v, 1.0f, dw.data, dw.dtype, d);
  }
  std::vector<float> losses(static_cast<size_t>(n));
  copy_bytes(losses.data(), Device::cpu(), row_loss, x.device, n * 4);
  for (float l : losses) result.loss_sum += l;
  return result;
}

}  // namespace zerotune::cuda
