// scaled_dropout's CUDA entry point in a build without the CUDA backend (see kernels.cc).
#include "kernels/scaled_dropout.h"
#include "core/check.h"

namespace zerotune::cuda {

void scaled_dropout(const Tensor&, const Tensor&, float, float, uint64_t, Accumulate) {
  fail("scaled_dropout: this build has no CUDA backend (build it with scripts/build.sh --cuda)");
}

}  // namespace zerotune::cuda
