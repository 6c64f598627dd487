#include "kernels/adamw.h"

#include <cmath>

namespace zerotune {

void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                const Tensor& exp_avg_sq, const AdamWConfig& config, int64_t step) {
  ZT_CHECK(step >= 1, "adamw_step: step counts from 1, got ", step);
  const Shape flat{param.numel()};
  check_shape("adamw_step", "grad", grad.reshape(Shape{grad.numel()}), flat);
  check_shape("adamw_step", "exp_avg", exp_avg.reshape(Shape{exp_avg.numel()}), flat);
  check_shape("adamw_step", "exp_avg_sq", exp_avg_sq.reshape(Shape{exp_avg_sq.numel()}), flat);
  const double bc1 = 1.0 - std::pow(config.beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(config.beta2, static_cast<double>(step));
  const AdamWParams p{static_cast<float>(config.beta1),
                      static_cast<float>(1.0 - config.beta1),
                      static_cast<float>(config.beta2),
                      static_cast<float>(1.0 - config.beta2),
                      static_cast<float>(1.0 - config.lr * config.weight_decay),
                      static_cast<float>(config.lr / bc1),
                      static_cast<float>(std::sqrt(bc2)),
                      static_cast<float>(config.eps)};
  check_same_device("adamw_step", param, grad);
  check_same_device("adamw_step", param, exp_avg);
  check_same_device("adamw_step", param, exp_avg_sq);
  if (!param.device.is_cpu()) {
    cuda::adamw_step(param, grad, exp_avg, exp_avg_sq, p);
    return;
  }
  require_backend("adamw_step", param);
  cpu::adamw_step(param.f32(), grad.f32(), exp_avg.f32(), exp_avg_sq.f32(), param.numel(), p);
}

}  // namespace zerotune
