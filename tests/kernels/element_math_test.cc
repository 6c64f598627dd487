#include "kernels/element_math.h"

#include <gtest/gtest.h>

#include <cmath>

namespace zerotune {
namespace {

// The vectorisable exp used by every softmax: within 3 ulp of libm over the range that matters.
TEST(ElementMath, FastExpMatchesLibm) {
  float worst = 0.0f;
  for (float x = -87.0f; x <= 88.0f; x += 0.00731f) {
    const float ref = std::exp(x);
    const float err = std::fabs(fast_exp(x) - ref) / ref;
    worst = std::max(worst, err);
  }
  EXPECT_LT(worst, 3.0f * 1.2e-7f);
  EXPECT_EQ(fast_exp(0.0f), 1.0f);
  EXPECT_GT(fast_exp(-1000.0f), 0.0f);  // clamped, never NaN
  EXPECT_TRUE(std::isfinite(fast_exp(1000.0f)));
}

TEST(ElementMath, SwigluBackwardIsTheDerivative) {
  for (float g : {-6.0f, -1.5f, -0.1f, 0.0f, 0.3f, 2.0f, 7.5f}) {
    for (float u : {-2.0f, 0.5f, 3.0f}) {
      float dg, du;
      swiglu_element_backward(g, u, 1.0f, &dg, &du);
      const double h = 1e-3;
      auto f = [](double gate, double up) { return gate / (1.0 + std::exp(-gate)) * up; };
      EXPECT_NEAR(dg, (f(g + h, u) - f(g - h, u)) / (2 * h), 1e-4) << g << " " << u;
      EXPECT_NEAR(du, (f(g, u + h) - f(g, u - h)) / (2 * h), 1e-4) << g << " " << u;
    }
  }
}

}  // namespace
}  // namespace zerotune
