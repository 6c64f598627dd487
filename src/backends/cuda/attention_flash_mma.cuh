// Warp-level tensor-core and asynchronous-copy primitives (sm_80 and later) as inline PTX, for
// the flash attention kernels (attention_flash.cuh).
// Fragment layouts of mma.m16n8k16 (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating
// point type"), with g = lane / 4 and c = lane % 4:
//   A (16x16, row-major), four b32 registers of two bf16 each (lower column in the low half):
//     a0: row g, columns 2c, 2c+1      a1: row g+8, columns 2c, 2c+1
//     a2: row g, columns 2c+8, 2c+9    a3: row g+8, columns 2c+8, 2c+9
//   B (16x8, k x n): b0: rows 2c, 2c+1 of column g; b1: rows 2c+8, 2c+9 of column g.
//   C, D (16x8, f32): d0, d1: row g, columns 2c, 2c+1; d2, d3: row g+8, columns 2c, 2c+1.
// So the accumulators of two adjacent n-tiles (columns 0-7 and 8-15) are, packed to bf16 pairs, an
// A operand: a0 = tile0 (d0, d1), a1 = tile0 (d2, d3), a2 = tile1 (d0, d1), a3 = tile1 (d2, d3).
#pragma once

#include <cstdint>
#include <cstring>

#include "backends/cuda/element_types.cuh"

namespace zerotune::cuda {

__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Four 8x8 b16 matrices from shared memory (byte address `row`); lanes 8i..8i+7 give the
// addresses of the 8 rows (16 bytes each) of matrix i, and register i of lane l receives row
// l / 4, columns 2 (l % 4) and 2 (l % 4) + 1. volatile: the same address is read again after the
// tile behind it was refilled.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(row));
}

// As ldmatrix_x4 but transposed: register i of lane l receives rows 2 (l % 4) and 2 (l % 4) + 1 of
// column l / 4 of matrix i.
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(row));
}

// d += a * b over one 16x8x16 tile, bf16 inputs, f32 accumulation.
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                               uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// 16 bytes global -> shared without passing through registers; visible after cp_async_wait_all
// and a barrier.
__device__ __forceinline__ void cp_async_16(void* shared_dst, const void* global_src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(shared_address(shared_dst)),
               "l"(global_src)
               : "memory");
}

__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}

__device__ __forceinline__ void cp_async_wait_all() {
  asm volatile("cp.async.wait_group 0;\n" ::: "memory");
}

__device__ __forceinline__ void store_zero_16(void* shared_dst) {
  *static_cast<uint4*>(shared_dst) = make_uint4(0u, 0u, 0u, 0u);
}

// 2^x on the special-function unit (about 2 ulp); 2^-inf = 0.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Two floats rounded to bf16 (nearest even), `lo` in the low half.
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  const __nv_bfloat162 pair = __floats2bfloat162_rn(lo, hi);
  uint32_t bits;
  memcpy(&bits, &pair, sizeof(bits));
  return bits;
}

}  // namespace zerotune::cuda
