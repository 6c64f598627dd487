#include "core/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/check.h"
#include "core/rng.h"
#include "core/tensor.h"

namespace zerotune {
namespace {

TEST(DType, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1.0078125: ties to even (1.0).
  EXPECT_EQ(f32_to_bf16(1.00390625f), 0x3f80);
  // 1 + 3*2^-8 is halfway between 1.0078125 (odd) and 1.015625 (even).
  EXPECT_EQ(f32_to_bf16(1.01171875f), 0x3f82);
  EXPECT_EQ(bf16_to_f32(0xc040), -3.0f);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(DType, F16MatchesIeeeHalf) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);       // largest half
  EXPECT_EQ(f32_to_f16(1e6f), 0x7c00);           // overflow to infinity
  EXPECT_EQ(f32_to_f16(5.9604645e-8f), 0x0001);  // smallest subnormal
  EXPECT_EQ(f16_to_f32(0x0001), 5.9604645e-8f);
  EXPECT_EQ(f16_to_f32(0x3555), 0.333251953125f);
  // Every finite half survives f16 -> f32 -> f16.
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    if ((bits & 0x7c00) == 0x7c00) continue;
    ASSERT_EQ(f32_to_f16(f16_to_f32(static_cast<uint16_t>(bits))), bits) << bits;
  }
}

TEST(DType, ConvertBetweenFloatingTypes) {
  Rng rng(3);
  std::vector<float> src(257), back(257);
  for (float& x : src) x = rng.normal() * 10.0f;
  std::vector<uint16_t> half(src.size());
  convert(half.data(), DType::bf16, src.data(), DType::f32, 257);
  convert(back.data(), DType::f32, half.data(), DType::bf16, 257);
  for (size_t i = 0; i < src.size(); ++i) {
    EXPECT_NEAR(back[i], src[i], std::fabs(src[i]) * (1.0f / 256.0f)) << i;
    EXPECT_EQ(back[i], bf16_to_f32(f32_to_bf16(src[i])));
  }
  EXPECT_THROW(convert(back.data(), DType::f32, half.data(), DType::i32, 1), Error);
}

TEST(DType, ParseNames) {
  DType d;
  ASSERT_TRUE(parse_dtype("bfloat16", &d));
  EXPECT_EQ(d, DType::bf16);
  ASSERT_TRUE(parse_dtype("F16", &d));
  EXPECT_EQ(d, DType::f16);
  ASSERT_TRUE(parse_dtype("F64", &d));
  EXPECT_EQ(d, DType::f64);
  EXPECT_EQ(dtype_size(DType::f64), 8);
  EXPECT_FALSE(parse_dtype("F8", &d));
}

TEST(Tensor, ChecksNameWhatWasExpected) {
  Buffer x(DType::f32, Shape{4, 288});
  try {
    check_shape("rmsnorm_forward", "weight", x, Shape{256});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "rmsnorm_forward: weight is [4, 288] but expected [256]");
  }
  EXPECT_THROW(x.view().rows(3, 2), Error);
  EXPECT_THROW(x.view().reshape(Shape{5, 288}), Error);
  EXPECT_EQ(x.view().rows(1, 2).f32(), x.f32() + 288);
  EXPECT_EQ(x.view().flat(300, 10).shape, Shape{10});
  // int64 sizes: a shape past 2^31 elements is representable.
  EXPECT_EQ((Shape{int64_t{1} << 20, int64_t{1} << 12}).numel(), int64_t{1} << 32);
}

TEST(Rng, DeterministicAndInRange) {
  Rng a(7), b(7), c(8);
  EXPECT_EQ(a.next_u64(), b.next_u64());
  EXPECT_NE(a.next_u64(), c.next_u64());
  double sum = 0.0, sum_sq = 0.0;
  for (int i = 0; i < 20000; ++i) {
    const float x = a.normal();
    sum += x;
    sum_sq += x * x;
    ASSERT_LT(a.below(10), 10u);
  }
  EXPECT_NEAR(sum / 20000, 0.0, 0.05);
  EXPECT_NEAR(sum_sq / 20000, 1.0, 0.05);
}

}  // namespace
}  // namespace zerotune
