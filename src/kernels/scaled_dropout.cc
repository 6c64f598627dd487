#include "kernels/scaled_dropout.h"

namespace zerotune {

void scaled_dropout(const Tensor& y, const Tensor& x, float scale, float p, uint64_t seed,
                    Accumulate acc) {
  check_shape("scaled_dropout", "y", y, x.shape);
  check_dtype("scaled_dropout", "y", y, x.dtype);
  ZT_CHECK(p >= 0.0f && p < 1.0f, "scaled_dropout: p must be in [0, 1), got ", p);
  if (on_cuda(x)) {
    check_same_device("scaled_dropout", x, y);
    cuda::scaled_dropout(y, x, scale, p, seed, acc);
    return;
  }
  require_backend("scaled_dropout", x);
  const float kept_scale = scale / (1.0f - p);
  const float* in = x.f32();
  float* out = y.f32();
  const bool add = acc == Accumulate::yes;
  const int64_t n = x.numel();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float v = p > 0.0f && !dropout_keeps(seed, i, p) ? 0.0f : in[i] * kept_scale;
    out[i] = add ? out[i] + v : v;
  }
}

}  // namespace zerotune
