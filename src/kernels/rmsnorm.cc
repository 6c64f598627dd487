#include "kernels/rmsnorm.h"

namespace zerotune {

void rmsnorm_forward(const Tensor& out, const Tensor& rstd, const Tensor& x, const Tensor& weight,
                     float eps) {
  ZT_CHECK(x.ndim() == 2, "rmsnorm_forward: x must be [N, D], got ", x.shape);
  const int64_t n = x.dim(0), d = x.dim(1);
  ZT_CHECK(weight.shape == Shape{d}, "rmsnorm_forward: x is ", x.shape, " but weight is ",
           weight.shape);
  check_shape("rmsnorm_forward", "out", out, x.shape);
  check_shape("rmsnorm_forward", "rstd", rstd, Shape{n});
  if (on_cuda(x)) {
    for (const Tensor* t : {&out, &rstd, &weight}) check_same_device("rmsnorm_forward", x, *t);
    check_dtype("rmsnorm_forward", "rstd", rstd, DType::f32);
    cuda::rmsnorm_forward(out, rstd, x, weight, eps);
    return;
  }
  require_backend("rmsnorm_forward", x);
  cpu::rmsnorm_forward(out.f32(), rstd.f32(), x.f32(), weight.f32(), n, d, eps);
}

void rmsnorm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dout, const Tensor& x,
                      const Tensor& weight, const Tensor& rstd, Accumulate dx_acc) {
  ZT_CHECK(x.ndim() == 2, "rmsnorm_backward: x must be [N, D], got ", x.shape);
  const int64_t n = x.dim(0), d = x.dim(1);
  ZT_CHECK(weight.shape == Shape{d}, "rmsnorm_backward: x is ", x.shape, " but weight is ",
           weight.shape);
  check_shape("rmsnorm_backward", "dweight", dweight, Shape{d});
  check_shape("rmsnorm_backward", "dx", dx, x.shape);
  check_shape("rmsnorm_backward", "dout", dout, x.shape);
  check_shape("rmsnorm_backward", "rstd", rstd, Shape{n});
  if (on_cuda(x)) {
    for (const Tensor* t : {&dx, &dweight, &dout, &weight, &rstd}) {
      check_same_device("rmsnorm_backward", x, *t);
    }
    check_dtype("rmsnorm_backward", "dweight", dweight, DType::f32);
    cuda::rmsnorm_backward(dx, dweight, dout, x, weight, rstd, dx_acc);
    return;
  }
  require_backend("rmsnorm_backward", x);
  cpu::rmsnorm_backward(dx.f32(), dweight.f32(), dout.f32(), x.f32(), weight.f32(), rstd.f32(), n,
                        d, dx_acc == Accumulate::yes);
}

}  // namespace zerotune
