// The transfer primitives the ZeRO engine's host optimizer uses on a GPU: pinned host memory,
// copies queued on the compute and transfer queues, events waited on by the host and by the
// compute queue, and the gradient accumulation kernel.
#include <gtest/gtest.h>

#include <vector>

#include "core/device_memory.h"
#include "core/rng.h"
#include "kernels/adamw.h"

namespace zerotune {
namespace {

std::vector<float> random_floats(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = static_cast<float>(rng.next_u64() % 2001) / 1000.0f - 1.0f;
  return v;
}

TEST(CudaTransfer, AddInPlaceMatchesTheCpu) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  const Device gpu = Device::cuda(0);
  const int64_t n = 100003;  // not a multiple of the block size
  std::vector<float> x = random_floats(n, 1), y = random_floats(n, 2);
  Buffer gx(DType::f32, Shape{n}, gpu), gy(DType::f32, Shape{n}, gpu);
  copy(gx, Tensor(x.data(), DType::f32, Shape{n}));
  copy(gy, Tensor(y.data(), DType::f32, Shape{n}));
  add_in_place(gx, gy);
  add_in_place(Tensor(x.data(), DType::f32, Shape{n}), Tensor(y.data(), DType::f32, Shape{n}));
  std::vector<float> back(static_cast<size_t>(n));
  copy(Tensor(back.data(), DType::f32, Shape{n}), gx);
  EXPECT_EQ(back, x);  // one f32 addition per element: exact on both
}

// A round trip through pinned memory with the upload on the transfer queue and a kernel on the
// compute queue that waits for it by event: the kernel must see the uploaded values.
TEST(CudaTransfer, TransferQueueUploadIsOrderedByEvents) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  const Device gpu = Device::cuda(0);
  const int64_t n = 1 << 22;  // 16 MiB: long enough for an unordered kernel to race the copy
  const std::vector<float> values = random_floats(n, 3);
  float* pinned = static_cast<float*>(pinned_alloc(n * 4));
  float* pinned_back = static_cast<float*>(pinned_alloc(n * 4));
  std::copy(values.begin(), values.end(), pinned);
  Buffer target(DType::f32, Shape{n}, gpu), ones(DType::f32, Shape{n}, gpu);
  std::vector<float> one(static_cast<size_t>(n), 1.0f);
  copy(ones, Tensor(one.data(), DType::f32, Shape{n}));
  DeviceEvent uploaded(gpu), downloaded(gpu);
  for (int round = 0; round < 3; ++round) {
    copy_bytes_async(target.view().data, gpu, pinned, Device::cpu(), n * 4, CopyQueue::to_device);
    uploaded.record(CopyQueue::to_device);
    uploaded.wait_on_compute();
    add_in_place(target, ones);  // compute queue, after the upload
    copy_bytes_async(pinned_back, Device::cpu(), target.view().data, gpu, n * 4,
                     CopyQueue::compute);
    downloaded.record(CopyQueue::compute);
    downloaded.wait_host();
    int64_t wrong = 0;
    for (int64_t i = 0; i < n; ++i) wrong += pinned_back[i] != values[static_cast<size_t>(i)] + 1.0f;
    EXPECT_EQ(wrong, 0) << "round " << round;
  }
  pinned_free(pinned);
  pinned_free(pinned_back);
}

// Host events of the CPU are complete at once and copies between host buffers are immediate.
TEST(CudaTransfer, HostEventsAndCopiesAreSynchronous) {
  DeviceEvent event(Device::cpu());
  event.record(CopyQueue::to_device);
  event.wait_host();
  event.wait_on_compute();
  std::vector<float> a = random_floats(257, 4), b(257);
  copy_bytes_async(b.data(), Device::cpu(), a.data(), Device::cpu(), 257 * 4, CopyQueue::to_device);
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace zerotune
