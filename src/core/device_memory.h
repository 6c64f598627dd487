// Memory on a device other than the host, and copies between any two places. Implemented by the
// CUDA backend (src/backends/cuda/device_memory.cc); a build without it links
// src/backends/no_cuda/device_memory.cc, whose entry points fail naming the call (and report no
// devices).
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
// Makes `device` the calling thread's current GPU (nothing for the CPU); a new thread calls it
// before its first CUDA call.
void device_select(const Device& device);

// Page-locked host memory, which the GPU copies from and to asynchronously; plain host memory
// (host_alloc) when no GPU is usable. Freed with pinned_free.
void* pinned_alloc(int64_t bytes);
void pinned_free(void* p);

// Where an asynchronous copy is queued on a GPU: behind the kernels (compute), or on one of two
// streams that run beside them, one per direction (PCIe carries both at once).
enum class CopyQueue : uint8_t { compute, to_host, to_device };

// Queues a copy of `bytes` and returns at once where a GPU is involved (host memory must be
// pinned); between two host buffers it copies before returning.
void copy_bytes_async(void* dst, const Device& dst_device, const void* src,
                      const Device& src_device, int64_t bytes, CopyQueue queue);

// A point in a queue of `device`: recorded after the work queued so far, waited on by the host
// or by the compute queue. On the CPU every operation is synchronous and an event is always
// complete.
class DeviceEvent {
 public:
  DeviceEvent() = default;
  explicit DeviceEvent(const Device& device);
  ~DeviceEvent();
  DeviceEvent(DeviceEvent&& other) noexcept;
  DeviceEvent& operator=(DeviceEvent&& other) noexcept;
  DeviceEvent(const DeviceEvent&) = delete;
  DeviceEvent& operator=(const DeviceEvent&) = delete;

  void record(CopyQueue queue);
  void wait_host() const;  // the host blocks until the recorded work is done
  // Later work on `queue` waits for it; the host does not block.
  void wait_on(CopyQueue queue) const;
  void wait_on_compute() const { wait_on(CopyQueue::compute); }

 private:
  Device device_;
  void* event_ = nullptr;  // cudaEvent_t on a GPU
};

}  // namespace zerotune
