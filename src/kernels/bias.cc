#include "kernels/bias.h"

namespace zerotune {

void bias_forward(const Tensor& y, const Tensor& bias) {
  ZT_CHECK(y.ndim() == 2, "bias_forward: y must be [N, out], got ", y.shape);
  check_shape("bias_forward", "bias", bias, Shape{y.dim(1)});
  check_dtype("bias_forward", "bias", bias, y.dtype);
  if (on_cuda(y)) {
    check_same_device("bias_forward", y, bias);
    cuda::bias_forward(y, bias);
    return;
  }
  require_backend("bias_forward", y);
  cpu::bias_forward(y.f32(), bias.f32(), y.dim(0), y.dim(1));
}

void bias_backward(const Tensor& dbias, const Tensor& dy) {
  ZT_CHECK(dy.ndim() == 2, "bias_backward: dy must be [N, out], got ", dy.shape);
  check_shape("bias_backward", "dbias", dbias, Shape{dy.dim(1)});
  check_dtype("bias_backward", "dbias", dbias, DType::f32);
  if (on_cuda(dy)) {
    check_same_device("bias_backward", dy, dbias);
    cuda::bias_backward(dbias, dy);
    return;
  }
  require_backend("bias_backward", dy);
  cpu::bias_backward(dbias.f32(), dy.f32(), dy.dim(0), dy.dim(1));
}

}  // namespace zerotune
