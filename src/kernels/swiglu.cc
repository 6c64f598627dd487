#include "kernels/swiglu.h"

namespace zerotune {

void swiglu_forward(const Tensor& h, const Tensor& gate_up) {
  require_backend("swiglu_forward", h);
  ZT_CHECK(h.ndim() == 2, "swiglu_forward: h must be [N, F], got ", h.shape);
  check_shape("swiglu_forward", "gate_up", gate_up, Shape{h.dim(0), 2 * h.dim(1)});
  cpu::swiglu_forward(h.f32(), gate_up.f32(), h.dim(0), h.dim(1));
}

void swiglu_backward(const Tensor& dgate_up, const Tensor& dh, const Tensor& gate_up) {
  require_backend("swiglu_backward", dh);
  ZT_CHECK(dh.ndim() == 2, "swiglu_backward: dh must be [N, F], got ", dh.shape);
  const Shape packed{dh.dim(0), 2 * dh.dim(1)};
  check_shape("swiglu_backward", "gate_up", gate_up, packed);
  check_shape("swiglu_backward", "dgate_up", dgate_up, packed);
  cpu::swiglu_backward(dgate_up.f32(), dh.f32(), gate_up.f32(), dh.dim(0), dh.dim(1));
}

}  // namespace zerotune
