#include "kernels/matmul.h"

namespace zerotune {

void linear_forward(const Tensor& y, const Tensor& x, const Tensor& w, Accumulate acc) {
  ZT_CHECK(x.ndim() == 2 && w.ndim() == 2 && y.ndim() == 2,
           "linear_forward: expected 2-d x, w, y, got x ", x.shape, " w ", w.shape, " y ", y.shape);
  const int64_t n = x.dim(0), in = x.dim(1), out = w.dim(0);
  ZT_CHECK(w.dim(1) == in, "linear_forward: x is ", x.shape, " but w is ", w.shape);
  check_shape("linear_forward", "y", y, Shape{n, out});
  if (on_cuda(x)) {
    check_same_device("linear_forward", x, w);
    check_same_device("linear_forward", x, y);
    cuda::linear_forward(y, x, w, acc);
    return;
  }
  require_backend("linear_forward", x);
  cpu::gemm(false, true, n, out, in, 1.0f, x.f32(), in, w.f32(), in,
            acc == Accumulate::yes ? 1.0f : 0.0f, y.f32(), out);
}

void linear_backward(const Tensor& dx, const Tensor& dw, const Tensor& dy, const Tensor& x,
                     const Tensor& w, Accumulate dx_acc) {
  const int64_t n = x.dim(0), in = x.dim(1), out = w.dim(0);
  check_shape("linear_backward", "w", w, Shape{out, in});
  check_shape("linear_backward", "dy", dy, Shape{n, out});
  if (present(dw)) check_shape("linear_backward", "dw", dw, Shape{out, in});
  if (present(dx)) check_shape("linear_backward", "dx", dx, Shape{n, in});
  if (on_cuda(x)) {
    for (const Tensor* t : {&w, &dy}) check_same_device("linear_backward", x, *t);
    if (present(dx)) check_same_device("linear_backward", x, dx);
    if (present(dw)) check_same_device("linear_backward", x, dw);
    if (present(dw)) check_dtype("linear_backward", "dw", dw, DType::f32);
    cuda::linear_backward(dx, dw, dy, x, w, dx_acc);
    return;
  }
  require_backend("linear_backward", x);
  if (present(dx)) {
    cpu::gemm(false, false, n, in, out, 1.0f, dy.f32(), out, w.f32(), in,
              dx_acc == Accumulate::yes ? 1.0f : 0.0f, dx.f32(), in);
  }
  if (present(dw)) {
    cpu::gemm(true, false, out, in, n, 1.0f, dy.f32(), out, x.f32(), in, 1.0f, dw.f32(), in);
  }
}

namespace {

// y (or dy) [N, cols] with the block [col, col + out) inside it; x [N, in], w [out, in].
void check_block(const char* op, const Tensor& y, int64_t col, const Tensor& x, const Tensor& w) {
  ZT_CHECK(x.ndim() == 2 && w.ndim() == 2 && y.ndim() == 2 && w.dim(1) == x.dim(1) &&
               y.dim(0) == x.dim(0) && col >= 0 && col + w.dim(0) <= y.dim(1),
           op, ": x ", x.shape, " w ", w.shape, " and columns [", col, ", ", col + w.dim(0),
           ") of ", y.shape, " do not fit");
}

}  // namespace

void linear_forward_block(const Tensor& y, int64_t col, const Tensor& x, const Tensor& w,
                          Accumulate acc) {
  check_block("linear_forward_block", y, col, x, w);
  const int64_t n = x.dim(0), in = x.dim(1), out = w.dim(0), cols = y.dim(1);
  if (on_cuda(x)) {
    check_same_device("linear_forward_block", x, w);
    check_same_device("linear_forward_block", x, y);
    cuda::linear_forward_block(y, col, x, w, acc);
    return;
  }
  require_backend("linear_forward_block", x);
  cpu::gemm(false, true, n, out, in, 1.0f, x.f32(), in, w.f32(), in,
            acc == Accumulate::yes ? 1.0f : 0.0f, y.f32() + col, cols);
}

void linear_backward_block(const Tensor& dx, const Tensor& dw, const Tensor& dy, int64_t col,
                           const Tensor& x, const Tensor& w, Accumulate dx_acc) {
  check_block("linear_backward_block", dy, col, x, w);
  const int64_t n = x.dim(0), in = x.dim(1), out = w.dim(0), cols = dy.dim(1);
  if (present(dw)) check_shape("linear_backward_block", "dw", dw, Shape{out, in});
  if (present(dx)) check_shape("linear_backward_block", "dx", dx, Shape{n, in});
  if (on_cuda(x)) {
    for (const Tensor* t : {&w, &dy}) check_same_device("linear_backward_block", x, *t);
    if (present(dx)) check_same_device("linear_backward_block", x, dx);
    if (present(dw)) check_dtype("linear_backward_block", "dw", dw, DType::f32);
    cuda::linear_backward_block(dx, dw, dy, col, x, w, dx_acc);
    return;
  }
  require_backend("linear_backward_block", x);
  const float* block = dy.f32() + col;  // [N, out] with row stride cols
  if (present(dx)) {
    cpu::gemm(false, false, n, in, out, 1.0f, block, cols, w.f32(), in,
              dx_acc == Accumulate::yes ? 1.0f : 0.0f, dx.f32(), in);
  }
  if (present(dw)) {
    cpu::gemm(true, false, out, in, n, 1.0f, block, cols, x.f32(), in, 1.0f, dw.f32(), in);
  }
}

}  // namespace zerotune
