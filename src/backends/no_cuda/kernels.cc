// The CUDA kernels' entry points in a build without the CUDA backend: each fails naming the op.
// (The dispatchers in kernels/ reach them only for tensors on a CUDA device, which this build
// cannot allocate, so these are a second line of defence.)
#include "core/check.h"
#include "kernels/adamw.h"
#include "kernels/attention.h"
#include "kernels/bias.h"
#include "kernels/cross_entropy.h"
#include "kernels/decode_attention.h"
#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"

namespace zerotune::cuda {

namespace {
[[noreturn]] void no_cuda(const char* op) {
  fail(str(op, ": this build has no CUDA backend (build it with scripts/build.sh --cuda)"));
}
}  // namespace

void rmsnorm_forward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, float) {
  no_cuda("rmsnorm_forward");
}
void rmsnorm_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                      const Tensor&, Accumulate) {
  no_cuda("rmsnorm_backward");
}
void bias_forward(const Tensor&, const Tensor&) {
  no_cuda("bias_forward");
}
void bias_backward(const Tensor&, const Tensor&) {
  no_cuda("bias_backward");
}
void swiglu_forward(const Tensor&, const Tensor&) {
  no_cuda("swiglu_forward");
}
void swiglu_backward(const Tensor&, const Tensor&, const Tensor&) {
  no_cuda("swiglu_backward");
}
void rope_apply(const Tensor&, int64_t, const Tensor&, const Tensor&, const Tensor&,
                RopeDirection) {
  no_cuda("rope_apply");
}
void embedding_forward(const Tensor&, const Tensor&, const Tensor&) {
  no_cuda("embedding_forward");
}
void embedding_backward(const Tensor&, const Tensor&, const Tensor&) {
  no_cuda("embedding_backward");
}
void linear_forward(const Tensor&, const Tensor&, const Tensor&, Accumulate) {
  no_cuda("linear_forward");
}
void linear_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                     Accumulate) {
  no_cuda("linear_backward");
}
void adamw_step(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const AdamWParams&,
                const Tensor&) {
  no_cuda("adamw_step");
}
double sum_of_squares(const Tensor&) {
  no_cuda("sum_of_squares");
}
void scale_in_place(const Tensor&, float) {
  no_cuda("scale_in_place");
}
void add_in_place(const Tensor&, const Tensor&) {
  no_cuda("add_in_place");
}
CrossEntropyResult lm_head_cross_entropy(const Tensor&, const Tensor&, const Tensor&, float,
                                         const Tensor&, const Tensor&, int64_t) {
  no_cuda("lm_head_cross_entropy");
}
void attention_forward(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                       const AttentionShape&) {
  no_cuda("attention_forward");
}
void attention_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                        const Tensor&, const AttentionShape&) {
  no_cuda("attention_backward");
}

void decode_kv_store(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                     const DecodeAttentionShape&) {
  no_cuda("decode_kv_store");
}
void decode_attention(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                      const Tensor&, const DecodeAttentionShape&) {
  no_cuda("decode_attention");
}

}  // namespace zerotune::cuda
