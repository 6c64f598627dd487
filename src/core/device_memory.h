// Memory on a device other than the host, and copies between any two places. Implemented by the
// CUDA backend (src/backends/cuda/device.cc); a build without it links src/backends/no_cuda/,
// whose entry points fail naming the call (and report no devices).
#pragma once

#include <cstdint>

#include "core/device.h"

namespace zerotune {

// Number of usable CUDA devices: 0 without the backend, a driver or a GPU.
int cuda_device_count();

void* device_alloc(int64_t bytes, const Device& device);
void device_free(void* p, const Device& device);
void device_memset_zero(void* p, int64_t bytes, const Device& device);
// Copies `bytes` from src (on src_device) to dst (on dst_device); returns when the copy is done.
void copy_bytes(void* dst, const Device& dst_device, const void* src, const Device& src_device,
                int64_t bytes);
// Waits for every kernel queued on the device.
void device_synchronize(const Device& device);

}  // namespace zerotune
