#include "kernels/rope.h"

#include <cmath>

namespace zerotune {

void rope_tables(const Tensor& cos, const Tensor& sin, float theta, float scaling_factor) {
  require_backend("rope_tables", cos);
  ZT_CHECK(cos.ndim() == 2 && cos.shape == sin.shape, "rope_tables: cos ", cos.shape, " and sin ",
           sin.shape, " must be equal [P, Dh/2]");
  ZT_CHECK(theta > 0.0f && scaling_factor > 0.0f, "rope_tables: theta ", theta,
           " and scaling factor ", scaling_factor, " must be positive");
  const int64_t positions = cos.dim(0), half = cos.dim(1), head_dim = 2 * half;
  float* c = cos.f32();
  float* s = sin.f32();
  for (int64_t i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    const float inv_freq = 1.0f / std::pow(theta, exponent);
    for (int64_t p = 0; p < positions; ++p) {
      const float angle = (static_cast<float>(p) / scaling_factor) * inv_freq;
      c[p * half + i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      s[p * half + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }
}

void rope_apply(const Tensor& x, int64_t n_heads, const Tensor& positions, const Tensor& cos,
                const Tensor& sin, RopeDirection direction) {
  ZT_CHECK(x.ndim() == 2, "rope_apply: x must be [N, width], got ", x.shape);
  ZT_CHECK(cos.ndim() == 2 && cos.shape == sin.shape, "rope_apply: cos ", cos.shape, " and sin ",
           sin.shape, " must be equal [P, Dh/2]");
  const int64_t n = x.dim(0), head_dim = 2 * cos.dim(1);
  ZT_CHECK(n_heads * head_dim <= x.dim(1), "rope_apply: ", n_heads, " heads of ", head_dim,
           " do not fit rows of ", x.dim(1));
  check_shape("rope_apply", "positions", positions, Shape{n});
  const std::vector<int32_t> host_positions = host_i32(positions);
  const int32_t* pos = host_positions.data();
  for (int64_t r = 0; r < n; ++r) {
    ZT_CHECK(pos[r] >= 0 && pos[r] < cos.dim(0), "rope_apply: position ", pos[r], " of row ", r,
             " is outside the table [0, ", cos.dim(0), ")");
  }
  if (on_cuda(x)) {
    for (const Tensor* t : {&positions, &cos, &sin}) check_same_device("rope_apply", x, *t);
    cuda::rope_apply(x, n_heads, positions, cos, sin, direction);
    return;
  }
  require_backend("rope_apply", x);
  cpu::rope_apply(x.f32(), n, x.dim(1), n_heads, head_dim, pos, cos.f32(), sin.f32(),
                  direction == RopeDirection::backward);
}

}  // namespace zerotune
