// cuBLASLt matrix products: the CUDA side of the matmul op (matmul.cc's linear layers), also used
// by the LM head (cross_entropy.cu).
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace zerotune::cuda {

// Column-major C[m x n] = alpha op(A) op(B) + beta C with f32 accumulation; A holds [m x k]
// (or [k x m] when trans_a) with leading dimension lda, likewise B [k x n] (or [n x k]).
// Operands f32 or bf16 (A and B alike); C f32 or bf16.
void gemm(const char* op, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
          const void* a, DType a_type, int64_t lda, const void* b, DType b_type, int64_t ldb,
          float beta, void* c, DType c_type, int64_t ldc);

}  // namespace zerotune::cuda
