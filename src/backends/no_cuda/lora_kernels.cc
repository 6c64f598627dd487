// The CUDA entry points of LoRA's kernels (scaled_dropout, the column-block GEMMs) in a build
// without the CUDA backend: each fails naming the op (see kernels.cc).
#include "core/check.h"
#include "kernels/matmul.h"
#include "kernels/scaled_dropout.h"

namespace zerotune::cuda {

namespace {
[[noreturn]] void no_cuda(const char* op) {
  fail(str(op, ": this build has no CUDA backend (build it with scripts/build.sh --cuda)"));
}
}  // namespace

void scaled_dropout(const Tensor&, const Tensor&, float, float, uint64_t, Accumulate) {
  no_cuda("scaled_dropout");
}
void linear_forward_block(const Tensor&, int64_t, const Tensor&, const Tensor&, Accumulate) {
  no_cuda("linear_forward_block");
}
void linear_backward_block(const Tensor&, const Tensor&, const Tensor&, int64_t, const Tensor&,
                           const Tensor&, Accumulate) {
  no_cuda("linear_backward_block");
}

}  // namespace zerotune::cuda
