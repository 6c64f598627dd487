#include "kernels/common.h"

#include "core/device_memory.h"

namespace zerotune {

void require_backend(const char* op, const Tensor& t) {
  ZT_CHECK(t.device.is_cpu(), op, ": no ", t.device.name(),
           " implementation in this build (the CUDA backend is built by scripts/build.sh --cuda)");
  ZT_CHECK(t.dtype == DType::f32 || t.dtype == DType::i32, op,
           ": the CPU backend computes in f32, got ", describe(t));
}

std::vector<int32_t> host_i32(const Tensor& t) {
  check_dtype("host_i32", "t", t, DType::i32);
  std::vector<int32_t> out(static_cast<size_t>(t.numel()));
  copy_bytes(out.data(), Device::cpu(), t.data, t.device, t.nbytes());
  return out;
}

}  // namespace zerotune
