#include "kernels/cross_entropy.h"

namespace zerotune {

CrossEntropyResult lm_head_cross_entropy(const Tensor& x, const Tensor& w, const Tensor& targets,
                                         float scale, const Tensor& dx, const Tensor& dw,
                                         int64_t chunk_rows) {
  const char* op = "lm_head_cross_entropy";
  ZT_CHECK(x.ndim() == 2 && w.ndim() == 2, op, ": x ", x.shape, " and w ", w.shape, " must be 2-d");
  const int64_t n = x.dim(0), d = x.dim(1), v = w.dim(0);
  ZT_CHECK(w.dim(1) == d, op, ": x is ", x.shape, " but w is ", w.shape);
  check_shape(op, "targets", targets, Shape{n});
  const std::vector<int32_t> host_targets = host_i32(targets);
  const int32_t* t = host_targets.data();
  for (int64_t i = 0; i < n; ++i) {
    ZT_CHECK(t[i] == kIgnoreIndex || (t[i] >= 0 && t[i] < v), op, ": target ", t[i], " at row ", i,
             " is outside the vocabulary [0, ", v, ") and not the ignore index ", kIgnoreIndex);
  }
  if (present(dx)) {
    check_shape(op, "dx", dx, x.shape);
    if (present(dw)) check_shape(op, "dw", dw, w.shape);
  }
  if (on_cuda(x)) {
    check_same_device(op, x, w);
    check_same_device(op, x, targets);
    if (present(dx)) {
      check_same_device(op, x, dx);
      if (present(dw)) check_same_device(op, x, dw);
      if (present(dw)) check_dtype(op, "dw", dw, DType::f32);
    }
    return cuda::lm_head_cross_entropy(x, w, targets, scale, dx, dw, chunk_rows);
  }
  require_backend(op, x);
  return cpu::lm_head_cross_entropy(x.f32(), w.f32(), t, n, d, v, scale,
                                    present(dx) ? dx.f32() : nullptr,
                                    present(dx) && present(dw) ? dw.f32() : nullptr, chunk_rows);
}

}  // namespace zerotune
