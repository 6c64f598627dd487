// Launches of the tensor-core flash attention (attention_flash.cuh): forward, then for the
// backward a dQ kernel over query tiles and a dK/dV kernel over key tiles, each summing in a
// fixed order in registers, so reruns are bit-identical.
#include <cmath>
#include <cstdint>

#include "backends/cuda/attention_flash.cuh"
#include "backends/cuda/attention_flash.h"
#include "backends/cuda/cuda_check.h"

namespace zerotune::cuda {
namespace {

using flash::kThreads;
using flash::kTile;

// Dynamic shared memory is 16-byte aligned through its element type.
template <int Dh>
__global__ void __launch_bounds__(kThreads) flash_forward_kernel(flash::ForwardArgs args) {
  extern __shared__ uint4 flash_smem[];
  flash::forward_tile<Dh>(args, reinterpret_cast<bf16*>(flash_smem));
}

template <int Dh>
__global__ void __launch_bounds__(kThreads) flash_dq_kernel(flash::BackwardArgs args) {
  extern __shared__ uint4 flash_smem[];
  flash::dq_tile<Dh>(args, reinterpret_cast<bf16*>(flash_smem));
}

template <int Dh>
__global__ void __launch_bounds__(kThreads) flash_dkv_kernel(flash::BackwardArgs args) {
  extern __shared__ uint4 flash_smem[];
  flash::dkv_tile<Dh>(args, reinterpret_cast<bf16*>(flash_smem));
}

constexpr size_t kDefaultSmem = 48 * 1024;  // more needs the kernel's opt-in
constexpr size_t kMaxSmem = 99 * 1024;      // the per-block limit of sm_86

static_assert(flash::dkv_smem_bytes<128>() <= kMaxSmem, "dK/dV tiles exceed sm_86 shared memory");
static_assert(flash::dq_smem_bytes<128>() <= kMaxSmem, "dQ tiles exceed sm_86 shared memory");
static_assert(flash::forward_smem_bytes<128>() <= kMaxSmem, "forward tiles exceed sm_86");

template <typename Kernel>
void allow_smem(Kernel kernel, size_t bytes) {
  if (bytes > kDefaultSmem) {
    ZT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(bytes)));
  }
}

dim3 tiles_grid(const AttentionShape& s, int64_t heads) {
  return dim3(static_cast<unsigned>((s.seq_len + kTile - 1) / kTile), static_cast<unsigned>(heads),
              static_cast<unsigned>(s.batch));
}

template <int Dh>
void launch_forward(const flash::ForwardArgs& args, const AttentionShape& s) {
  constexpr size_t smem = flash::forward_smem_bytes<Dh>();
  allow_smem(flash_forward_kernel<Dh>, smem);
  flash_forward_kernel<Dh><<<tiles_grid(s, s.n_heads), kThreads, smem, compute_stream()>>>(args);
  check_launch("attention_forward (flash)");
}

template <int Dh>
void launch_backward(const flash::BackwardArgs& args, const AttentionShape& s) {
  constexpr size_t dq_smem = flash::dq_smem_bytes<Dh>(), dkv_smem = flash::dkv_smem_bytes<Dh>();
  allow_smem(flash_dq_kernel<Dh>, dq_smem);
  allow_smem(flash_dkv_kernel<Dh>, dkv_smem);
  flash_dq_kernel<Dh><<<tiles_grid(s, s.n_heads), kThreads, dq_smem, compute_stream()>>>(args);
  check_launch("attention_backward (flash dq)");
  flash_dkv_kernel<Dh><<<tiles_grid(s, s.n_kv_heads), kThreads, dkv_smem, compute_stream()>>>(args);
  check_launch("attention_backward (flash dk, dv)");
}

bool aligned_bf16(const Tensor& t) {
  return t.dtype == DType::bf16 && reinterpret_cast<uintptr_t>(t.data) % 16 == 0;
}

float inverse_sqrt(int64_t head_dim) {
  return 1.0f / std::sqrt(static_cast<float>(head_dim));
}

}  // namespace

bool flash_attention_supported(const AttentionShape& s, const Tensor& qkv, const Tensor& out,
                               const Tensor& dout, const Tensor& dqkv) {
  constexpr int64_t kMaxGridYZ = 65535;
  const bool head_dim_fits = s.head_dim == 64 || s.head_dim == 128;
  const bool grid_fits = s.batch <= kMaxGridYZ && s.n_heads <= kMaxGridYZ &&
                         (s.seq_len + kTile - 1) / kTile <= INT32_MAX;
  // Rows are whole multiples of 16 bytes (Dh is), so aligned bases keep every row aligned.
  const bool operands_fit = aligned_bf16(qkv) && aligned_bf16(out) &&
                            (!present(dout) || aligned_bf16(dout)) &&
                            (!present(dqkv) || aligned_bf16(dqkv));
  return head_dim_fits && grid_fits && operands_fit && s.n_heads % s.n_kv_heads == 0;
}

void flash_attention_forward(const Tensor& out, const Tensor& lse, const Tensor& qkv,
                             const int32_t* segments, const AttentionShape& s) {
  const flash::ForwardArgs args{
      out.ptr<bf16>(), lse.ptr<float>(), qkv.ptr<bf16>(), segments,
      s.seq_len,       s.n_heads,        s.n_kv_heads,    flash::kLog2e * inverse_sqrt(s.head_dim)};
  if (s.head_dim == 64) {
    launch_forward<64>(args, s);
  } else {
    ZT_CHECK(s.head_dim == 128, "flash attention: head_dim ", s.head_dim, " is not 64 or 128");
    launch_forward<128>(args, s);
  }
}

void flash_attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                              const Tensor& lse, const float* delta, const int32_t* segments,
                              const AttentionShape& s) {
  const float scale = inverse_sqrt(s.head_dim);
  const flash::BackwardArgs args{dqkv.ptr<bf16>(),
                                 dout.ptr<bf16>(),
                                 qkv.ptr<bf16>(),
                                 lse.ptr<float>(),
                                 delta,
                                 segments,
                                 s.seq_len,
                                 s.n_heads,
                                 s.n_kv_heads,
                                 scale,
                                 flash::kLog2e * scale};
  if (s.head_dim == 64) {
    launch_backward<64>(args, s);
  } else {
    ZT_CHECK(s.head_dim == 128, "flash attention: head_dim ", s.head_dim, " is not 64 or 128");
    launch_backward<128>(args, s);
  }
}

}  // namespace zerotune::cuda
