#include "kernels/adamw.h"

#include <cmath>

namespace zerotune {

namespace {

AdamWParams adamw_params(const AdamWConfig& config, int64_t step) {
  ZT_CHECK(step >= 1, "adamw_step: step counts from 1, got ", step);
  const double bc1 = 1.0 - std::pow(config.beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(config.beta2, static_cast<double>(step));
  return AdamWParams{static_cast<float>(config.beta1),
                     static_cast<float>(1.0 - config.beta1),
                     static_cast<float>(config.beta2),
                     static_cast<float>(1.0 - config.beta2),
                     static_cast<float>(1.0 - config.lr * config.weight_decay),
                     static_cast<float>(config.lr / bc1),
                     static_cast<float>(std::sqrt(bc2)),
                     static_cast<float>(config.eps)};
}

}  // namespace

void adamw_step_mixed(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                      const Tensor& exp_avg_sq, const Tensor& compute, const AdamWConfig& config,
                      int64_t step) {
  ZT_CHECK(compute.numel() == param.numel(), "adamw_step_mixed: compute copy ", describe(compute),
           " for master ", describe(param));
  check_same_device("adamw_step_mixed", param, compute);
  if (on_cuda(param) && compute.dtype == DType::bf16) {  // one fused pass
    cuda::adamw_step(param, grad, exp_avg, exp_avg_sq, adamw_params(config, step), compute);
    return;
  }
  adamw_step(param, grad, exp_avg, exp_avg_sq, config, step);
  if (compute.device.is_cpu()) {
    convert(compute.data, compute.dtype, param.data, DType::f32, param.numel());
  } else {
    convert_copy(compute, param);
  }
}

double sum_of_squares(const Tensor& x) {
  check_dtype("sum_of_squares", "x", x, DType::f32);
  if (on_cuda(x)) return cuda::sum_of_squares(x);
  const float* p = x.f32();
  double sum = 0.0;
#pragma omp parallel for reduction(+ : sum) schedule(static)
  for (int64_t i = 0; i < x.numel(); ++i) sum += static_cast<double>(p[i]) * p[i];
  return sum;
}

void scale_in_place(const Tensor& x, float factor) {
  check_dtype("scale_in_place", "x", x, DType::f32);
  if (on_cuda(x)) {
    cuda::scale_in_place(x, factor);
    return;
  }
  float* p = x.f32();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < x.numel(); ++i) p[i] *= factor;
}

void add_in_place(const Tensor& x, const Tensor& y) {
  check_dtype("add_in_place", "x", x, DType::f32);
  check_dtype("add_in_place", "y", y, DType::f32);
  check_shape("add_in_place", "y", y.reshape(Shape{y.numel()}), Shape{x.numel()});
  check_same_device("add_in_place", x, y);
  if (on_cuda(x)) {
    cuda::add_in_place(x, y);
    return;
  }
  float* p = x.f32();
  const float* q = y.f32();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < x.numel(); ++i) p[i] += q[i];
}

void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                const Tensor& exp_avg_sq, const AdamWConfig& config, int64_t step) {
  const Shape flat{param.numel()};
  check_shape("adamw_step", "grad", grad.reshape(Shape{grad.numel()}), flat);
  check_shape("adamw_step", "exp_avg", exp_avg.reshape(Shape{exp_avg.numel()}), flat);
  check_shape("adamw_step", "exp_avg_sq", exp_avg_sq.reshape(Shape{exp_avg_sq.numel()}), flat);
  const AdamWParams p = adamw_params(config, step);
  check_same_device("adamw_step", param, grad);
  check_same_device("adamw_step", param, exp_avg);
  check_same_device("adamw_step", param, exp_avg_sq);
  if (!param.device.is_cpu()) {
    cuda::adamw_step(param, grad, exp_avg, exp_avg_sq, p, Tensor());
    return;
  }
  require_backend("adamw_step", param);
  cpu::adamw_step(param.f32(), grad.f32(), exp_avg.f32(), exp_avg_sq.f32(), param.numel(), p);
}

}  // namespace zerotune
