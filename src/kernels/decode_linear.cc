#include "kernels/decode_linear.h"

#include "kernels/matmul.h"

namespace zerotune {

void decode_linear(const Tensor& y, const Tensor& x, const Tensor& w, Accumulate acc) {
  ZT_CHECK(x.ndim() == 2 && w.ndim() == 2 && y.ndim() == 2,
           "decode_linear: expected 2-d x, w, y, got x ", x.shape, " w ", w.shape, " y ", y.shape);
  const int64_t n = x.dim(0), in = x.dim(1), out = w.dim(0);
  ZT_CHECK(w.dim(1) == in, "decode_linear: x is ", x.shape, " but w is ", w.shape);
  check_shape("decode_linear", "y", y, Shape{n, out});
  if (on_cuda(x)) {
    check_same_device("decode_linear", x, w);
    check_same_device("decode_linear", x, y);
    cuda::linear_forward(y, x, w, acc);  // a GEMM: no batch invariance on the GPU
    return;
  }
  require_backend("decode_linear", x);
  cpu::decode_linear(y.f32(), x.f32(), w.f32(), n, in, out, acc == Accumulate::yes);
}

}  // namespace zerotune
