// core/device_memory.h on CUDA: device and pinned host allocations, copies, a stream per copy
// direction beside the compute stream, and events (the twin of no_cuda/device_memory.cc).
#include <cuda_runtime.h>

#include <cstring>
#include <mutex>

#include "backends/cuda/cuda_check.h"
#include "core/device.h"
#include "core/device_memory.h"
#include "core/memory.h"

namespace zerotune {

bool cuda_backend_built() {
  return true;
}

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: clear the sticky error, report none
    return 0;
  }
  return count;
}

namespace {
void select(const Device& device) {
  ZT_CHECK(device.type == DeviceType::cuda, "device memory on ", device.name());
  ZT_CUDA_CHECK(cudaSetDevice(device.index));
}
}  // namespace

void* device_alloc(int64_t bytes, const Device& device) {
  select(device);
  void* p = nullptr;
  const cudaError_t status = cudaMalloc(&p, static_cast<size_t>(bytes > 0 ? bytes : 1));
  if (status != cudaSuccess) {
    cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    fail(str("device_alloc: cannot allocate ", bytes, " bytes on ", device.name(), " (",
             free_bytes >> 20, " MiB free of ", total_bytes >> 20,
             " MiB): ", cudaGetErrorString(status)));
  }
  return p;
}

void device_free(void* p, const Device& device) {
  if (!p) return;
  select(device);
  cudaFree(p);  // no throw from destructors; a failing free means a corrupted context anyway
}

void device_memset_zero(void* p, int64_t bytes, const Device& device) {
  select(device);
  ZT_CUDA_CHECK(cudaMemsetAsync(p, 0, static_cast<size_t>(bytes), cuda::compute_stream()));
}

void copy_bytes(void* dst, const Device& dst_device, const void* src, const Device& src_device,
                int64_t bytes) {
  if (bytes <= 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {  // no CUDA call: CPU runs need no driver
    std::memmove(dst, src, static_cast<size_t>(bytes));
    return;
  }
  if (!dst_device.is_cpu())
    select(dst_device);
  else if (!src_device.is_cpu())
    select(src_device);
  ZT_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(bytes), cudaMemcpyDefault,
                                cuda::compute_stream()));
  ZT_CUDA_CHECK(cudaStreamSynchronize(cuda::compute_stream()));
}

void device_synchronize(const Device& device) {
  if (device.is_cpu()) return;
  select(device);
  ZT_CUDA_CHECK(cudaDeviceSynchronize());
}

void device_select(const Device& device) {
  if (!device.is_cpu()) select(device);
}

namespace {

// Pinned memory needs a driver and a device; the choice is made once so that frees match.
bool host_memory_pinnable() {
  static const bool pinnable = cuda_device_count() > 0;
  return pinnable;
}

// The transfer streams of each device, one per direction: non-blocking, so they never wait for
// the legacy default (compute) stream unless told to by an event.
cudaStream_t transfer_stream(const Device& device, CopyQueue queue) {
  constexpr int kMaxDevices = 64;
  static std::mutex mutex;
  static cudaStream_t streams[kMaxDevices][2] = {};
  ZT_CHECK(device.index >= 0 && device.index < kMaxDevices, "transfer stream: ", device.name());
  std::lock_guard<std::mutex> lock(mutex);
  cudaStream_t& stream = streams[device.index][queue == CopyQueue::to_host ? 0 : 1];
  if (!stream) ZT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  return stream;
}

cudaStream_t queue_stream(const Device& device, CopyQueue queue) {
  return queue == CopyQueue::compute ? cuda::compute_stream() : transfer_stream(device, queue);
}

}  // namespace

void* pinned_alloc(int64_t bytes) {
  const size_t size = static_cast<size_t>(bytes > 0 ? bytes : 1);
  if (!host_memory_pinnable()) return host_alloc(size);
  void* p = nullptr;
  const cudaError_t status = cudaMallocHost(&p, size);
  if (status != cudaSuccess) {
    cudaGetLastError();
    fail(str("pinned_alloc: cannot page-lock ", bytes,
             " bytes of host memory: ", cudaGetErrorString(status)));
  }
  return p;
}

void pinned_free(void* p) {
  if (!p) return;
  if (host_memory_pinnable()) {
    cudaFreeHost(p);
  } else {
    host_free(p);
  }
}

void copy_bytes_async(void* dst, const Device& dst_device, const void* src,
                      const Device& src_device, int64_t bytes, CopyQueue queue) {
  if (bytes <= 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memmove(dst, src, static_cast<size_t>(bytes));
    return;
  }
  const Device& gpu = dst_device.is_cpu() ? src_device : dst_device;
  select(gpu);
  ZT_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(bytes), cudaMemcpyDefault,
                                queue_stream(gpu, queue)));
}

DeviceEvent::DeviceEvent(const Device& device) : device_(device) {
  if (device.is_cpu()) return;
  select(device);
  cudaEvent_t event = nullptr;
  // Blocking sync: a host thread waiting for it sleeps instead of spinning a core.
  ZT_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming | cudaEventBlockingSync));
  event_ = event;
}

DeviceEvent::~DeviceEvent() {
  if (event_) cudaEventDestroy(static_cast<cudaEvent_t>(event_));
}

DeviceEvent::DeviceEvent(DeviceEvent&& other) noexcept
    : device_(other.device_), event_(other.event_) {
  other.event_ = nullptr;
}

DeviceEvent& DeviceEvent::operator=(DeviceEvent&& other) noexcept {
  if (this != &other) {
    if (event_) cudaEventDestroy(static_cast<cudaEvent_t>(event_));
    device_ = other.device_;
    event_ = other.event_;
    other.event_ = nullptr;
  }
  return *this;
}

void DeviceEvent::record(CopyQueue queue) {
  if (!event_) return;
  select(device_);
  ZT_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event_), queue_stream(device_, queue)));
}

void DeviceEvent::wait_host() const {
  if (!event_) return;
  ZT_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event_)));
}

void DeviceEvent::wait_on(CopyQueue queue) const {
  if (!event_) return;
  select(device_);
  ZT_CUDA_CHECK(
      cudaStreamWaitEvent(queue_stream(device_, queue), static_cast<cudaEvent_t>(event_), 0));
}

}  // namespace zerotune
