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

}  // namespace
}  // namespace zerotune
