// Linear layers through cuBLASLt: f32 or bf16 operands, f32 accumulation (CUBLAS_COMPUTE_32F: no
// TF32 for f32 operands, so f32 mode matches the CPU backend), f32 weight gradients.
//
// Row-major Y[N, out] = X[N, in] W[out, in]^T is column-major Y^T = W^T' X^T', i.e. cuBLAS's
// C[out x N] = op(A) op(B) with A = W's memory read as [in x out] and transposed, B = X's memory
// as [in x N]. The two gradients follow the same mapping.
#include <cstdint>
#include <mutex>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/matmul.h"
#include "kernels/matmul.h"

namespace zerotune::cuda {
namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;

struct Lt {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
};

Lt& lt() {
  static Lt state;
  static std::once_flag once;
  std::call_once(once, [] {
    ZT_CUBLAS_CHECK(cublasLtCreate(&state.handle));
    ZT_CUDA_CHECK(cudaMalloc(&state.workspace, kWorkspaceBytes));
  });
  return state;
}

cudaDataType_t cuda_type(DType dtype, const char* op) {
  if (dtype == DType::f32) return CUDA_R_32F;
  if (dtype == DType::bf16) return CUDA_R_16BF;
  fail(str(op, ": the CUDA backend multiplies f32 or bf16, got ", dtype_name(dtype)));
}

}  // namespace

void gemm(const char* op, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
          const void* a, DType a_type, int64_t lda, const void* b, DType b_type, int64_t ldb,
          float beta, void* c, DType c_type, int64_t ldc) {
  if (m == 0 || n == 0) return;
  Lt& state = lt();
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  struct Cleanup {
    cublasLtMatmulDesc_t& desc;
    cublasLtMatrixLayout_t &la, &lb, &lc;
    cublasLtMatmulPreference_t& pref;
    ~Cleanup() {
      if (pref) cublasLtMatmulPreferenceDestroy(pref);
      if (lc) cublasLtMatrixLayoutDestroy(lc);
      if (lb) cublasLtMatrixLayoutDestroy(lb);
      if (la) cublasLtMatrixLayoutDestroy(la);
      if (desc) cublasLtMatmulDescDestroy(desc);
    }
  } cleanup{desc, la, lb, lc, pref};
  ZT_CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t opa = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t opb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  ZT_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof(opa)));
  ZT_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof(opb)));
  const auto u = [](int64_t v) { return static_cast<uint64_t>(v); };
  ZT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la, cuda_type(a_type, op), trans_a ? u(k) : u(m),
                                             trans_a ? u(m) : u(k), lda));
  ZT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb, cuda_type(b_type, op), trans_b ? u(n) : u(k),
                                             trans_b ? u(k) : u(n), ldb));
  ZT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lc, cuda_type(c_type, op), u(m), u(n), ldc));
  ZT_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const size_t workspace = kWorkspaceBytes;
  ZT_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(workspace)));
  // Offset pointers (row chunks) may be less aligned than the 256 bytes the heuristic assumes.
  const auto alignment = [](const void* p) {
    const auto address = reinterpret_cast<uintptr_t>(p);
    uint32_t bytes = 256;
    while (bytes > 1 && address % bytes != 0) bytes /= 2;
    return bytes;
  };
  const uint32_t align_a = alignment(a), align_b = alignment(b), align_c = alignment(c);
  ZT_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_a, sizeof(align_a)));
  ZT_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_b, sizeof(align_b)));
  ZT_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_c, sizeof(align_c)));
  ZT_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_c, sizeof(align_c)));
  cublasLtMatmulHeuristicResult_t heuristic{};
  int found = 0;
  ZT_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(state.handle, desc, la, lb, lc, lc, pref, 1,
                                                 &heuristic, &found));
  ZT_CHECK(found > 0, op, ": cuBLASLt has no algorithm for [", m, " x ", k, "] x [", k, " x ", n,
           "] (", dtype_name(a_type), ", ", dtype_name(b_type), " -> ", dtype_name(c_type), ")");
  ZT_CUBLAS_CHECK(cublasLtMatmul(state.handle, desc, &alpha, a, la, b, lb, &beta, c, lc, c, lc,
                                 &heuristic.algo, state.workspace, workspace, compute_stream()));
}

void linear_forward(const Tensor& y, const Tensor& x, const Tensor& w, Accumulate acc) {
  const int64_t n = x.dim(0), in = x.dim(1), out = w.dim(0);
  gemm("linear_forward", true, false, out, n, in, 1.0f, w.data, w.dtype, in, x.data, x.dtype, in,
       acc == Accumulate::yes ? 1.0f : 0.0f, y.data, y.dtype, out);
}

void linear_backward(const Tensor& dx, const Tensor& dw, const Tensor& dy, const Tensor& x,
                     const Tensor& w, Accumulate dx_acc) {
  const int64_t n = x.dim(0), in = x.dim(1), out = w.dim(0);
  if (dx.data) {  // dx[N, in] = dy[N, out] W[out, in]: column-major dx^T = W^T' dy^T'
    gemm("linear_backward", false, false, in, n, out, 1.0f, w.data, w.dtype, in, dy.data, dy.dtype,
         out, dx_acc == Accumulate::yes ? 1.0f : 0.0f, dx.data, dx.dtype, in);
  }
  if (!dw.data) return;  // a frozen weight
  // dw[out, in] += dy^T x: column-major dw^T [in x out] = X^T' [in x N] (dy^T' [out x N])^T
  gemm("linear_backward", false, true, in, out, n, 1.0f, x.data, x.dtype, in, dy.data, dy.dtype,
       out, 1.0f, dw.data, dw.dtype, in);
}

void linear_forward_block(const Tensor& y, int64_t col, const Tensor& x, const Tensor& w,
                          Accumulate acc) {
  const int64_t n = x.dim(0), in = x.dim(1), out = w.dim(0), cols = y.dim(1);
  char* block = static_cast<char*>(y.data) + col * dtype_size(y.dtype);
  gemm("linear_forward_block", true, false, out, n, in, 1.0f, w.data, w.dtype, in, x.data, x.dtype,
       in, acc == Accumulate::yes ? 1.0f : 0.0f, block, y.dtype, cols);
}

void linear_backward_block(const Tensor& dx, const Tensor& dw, const Tensor& dy, int64_t col,
                           const Tensor& x, const Tensor& w, Accumulate dx_acc) {
  const int64_t n = x.dim(0), in = x.dim(1), out = w.dim(0), cols = dy.dim(1);
  const char* block = static_cast<const char*>(dy.data) + col * dtype_size(dy.dtype);
  if (dx.data) {  // dx[N, in] = dy_block[N, out] W[out, in], dy_block's leading dimension cols
    gemm("linear_backward_block", false, false, in, n, out, 1.0f, w.data, w.dtype, in, block,
         dy.dtype, cols, dx_acc == Accumulate::yes ? 1.0f : 0.0f, dx.data, dx.dtype, in);
  }
  if (!dw.data) return;
  gemm("linear_backward_block", false, true, in, out, n, 1.0f, x.data, x.dtype, in, block, dy.dtype,
       cols, 1.0f, dw.data, dw.dtype, in);
}

}  // namespace zerotune::cuda
