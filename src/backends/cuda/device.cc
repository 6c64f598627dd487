#include <cuda_runtime.h>

#include <cstring>

#include "backends/cuda/cuda_check.h"
#include "core/device_memory.h"

namespace zerotune {

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

}  // namespace zerotune
