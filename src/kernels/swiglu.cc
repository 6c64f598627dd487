#include "kernels/swiglu.h"

namespace zerotune {

void swiglu_forward(const Tensor& h, const Tensor& gate_up) {
  ZT_CHECK(h.ndim() == 2, "swiglu_forward: h must be [N, F], got ", h.shape);
  check_shape("swiglu_forward", "gate_up", gate_up, Shape{h.dim(0), 2 * h.dim(1)});
  if (on_cuda(h)) {
    check_same_device("swiglu_forward", h, gate_up);
    cuda::swiglu_forward(h, gate_up);
    return;
  }
  require_backend("swiglu_forward", h);
  cpu::swiglu_forward(h.f32(), gate_up.f32(), h.dim(0), h.dim(1));
}

void swiglu_backward(const Tensor& dgate_up, const Tensor& dh, const Tensor& gate_up) {
  ZT_CHECK(dh.ndim() == 2, "swiglu_backward: dh must be [N, F], got ", dh.shape);
  const Shape packed{dh.dim(0), 2 * dh.dim(1)};
  check_shape("swiglu_backward", "gate_up", gate_up, packed);
  check_shape("swiglu_backward", "dgate_up", dgate_up, packed);
  if (on_cuda(dh)) {
    check_same_device("swiglu_backward", dh, gate_up);
    check_same_device("swiglu_backward", dh, dgate_up);
    cuda::swiglu_backward(dgate_up, dh, gate_up);
    return;
  }
  require_backend("swiglu_backward", dh);
  cpu::swiglu_backward(dgate_up.f32(), dh.f32(), gate_up.f32(), dh.dim(0), dh.dim(1));
}

}  // namespace zerotune
