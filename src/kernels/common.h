// Conventions shared by the op headers.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace zerotune {

// Whether a kernel adds its result into the output or overwrites it. Parameter gradients always
// accumulate; input gradients overwrite unless the caller folds a residual branch into them.
enum class Accumulate : uint8_t { no, yes };

}  // namespace zerotune

namespace zerotune {

// Kernels on a device whose backend this build lacks fail here, naming the op.
void require_backend(const char* op, const Tensor& t);
// A tensor with no data stands for "not requested" (e.g. an input gradient nobody needs).
inline bool present(const Tensor& t) {
  return t.data != nullptr;
}
inline bool on_cuda(const Tensor& t) {
  return !t.device.is_cpu();
}
// The i32 values of `t` wherever it lives (for host-side checks of ids and positions).
std::vector<int32_t> host_i32(const Tensor& t);

}  // namespace zerotune
