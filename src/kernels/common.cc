#include "kernels/common.h"

namespace zerotune {

void require_backend(const char* op, const Tensor& t) {
  ZT_CHECK(t.device.is_cpu(), op, ": no ", t.device.name(),
           " implementation in this build (the CUDA backend is built by scripts/build.sh --cuda)");
  ZT_CHECK(t.dtype == DType::f32 || t.dtype == DType::i32, op,
           ": the CPU backend computes in f32, got ", describe(t));
}

}  // namespace zerotune
