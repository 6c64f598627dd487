#include <gtest/gtest.h>

#include "core/device_memory.h"
#include "core/tensor.h"

namespace zerotune {
namespace {

TEST(Device, CudaBufferNeedsTheBackendOrAGpu) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a GPU is present";
  try {
    Buffer b(DType::f32, Shape{4}, Device::cuda(0));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(cuda_backend_built() ? "device_alloc" : "scripts/build.sh --cuda"),
              std::string::npos)
        << what;
  }
}

TEST(Device, HostCopiesWork) {
  Buffer a(DType::f32, Shape{3}), b(DType::f32, Shape{3});
  a.f32()[0] = 1.0f;
  a.f32()[2] = 3.0f;
  copy(b, a);
  EXPECT_EQ(b.f32()[0], 1.0f);
  EXPECT_EQ(b.f32()[2], 3.0f);
  EXPECT_THROW(copy(Buffer(DType::f32, Shape{2}), a), Error);
}

TEST(Device, ConvertCopyRoundsToTheTargetDtype) {
  Buffer a(DType::f32, Shape{2}), half(DType::bf16, Shape{2}), back(DType::f32, Shape{2});
  a.f32()[0] = 1.0f + 1.0f / 512.0f;  // not representable in bf16: rounds to even (1.0)
  a.f32()[1] = -3.5f;
  convert_copy(half, a);
  convert_copy(back, half);
  EXPECT_EQ(back.f32()[0], 1.0f);
  EXPECT_EQ(back.f32()[1], -3.5f);
  EXPECT_THROW(convert_copy(Buffer(DType::bf16, Shape{3}), a), Error);
}

}  // namespace
}  // namespace zerotune
