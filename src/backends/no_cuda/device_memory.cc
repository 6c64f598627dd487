// core/device_memory.h in a build without the CUDA backend: no devices (every call that names
// one fails, naming the call); copies between host buffers work and "pinned" memory is plain
// host memory.
#include <cstring>

#include "core/check.h"
#include "core/device.h"
#include "core/device_memory.h"
#include "core/memory.h"

namespace zerotune {

namespace {
[[noreturn]] void no_cuda(const char* call) {
  fail(str(call, ": this build has no CUDA backend (build it with scripts/build.sh --cuda)"));
}
}  // namespace

bool cuda_backend_built() {
  return false;
}

int cuda_device_count() {
  return 0;
}

void* device_alloc(int64_t, const Device&) {
  no_cuda("device_alloc");
}

void device_free(void*, const Device&) {
  no_cuda("device_free");
}

void device_memset_zero(void*, int64_t, const Device&) {
  no_cuda("device_memset_zero");
}

void copy_bytes(void* dst, const Device& dst_device, const void* src, const Device& src_device,
                int64_t bytes) {
  if (!dst_device.is_cpu() || !src_device.is_cpu()) no_cuda("copy_bytes");
  if (bytes > 0) std::memmove(dst, src, static_cast<size_t>(bytes));
}

void device_synchronize(const Device& device) {
  if (!device.is_cpu()) no_cuda("device_synchronize");
}

void device_select(const Device& device) {
  if (!device.is_cpu()) no_cuda("device_select");
}

void* pinned_alloc(int64_t bytes) {
  return host_alloc(static_cast<size_t>(bytes > 0 ? bytes : 1));
}

void pinned_free(void* p) {
  host_free(p);
}

void copy_bytes_async(void* dst, const Device& dst_device, const void* src,
                      const Device& src_device, int64_t bytes, CopyQueue) {
  copy_bytes(dst, dst_device, src, src_device, bytes);
}

DeviceEvent::DeviceEvent(const Device& device) : device_(device) {
  if (!device.is_cpu()) no_cuda("DeviceEvent");
}
DeviceEvent::~DeviceEvent() = default;
DeviceEvent::DeviceEvent(DeviceEvent&& other) noexcept = default;
DeviceEvent& DeviceEvent::operator=(DeviceEvent&& other) noexcept = default;
void DeviceEvent::record(CopyQueue) {}
void DeviceEvent::wait_host() const {}
void DeviceEvent::wait_on(CopyQueue) const {}

}  // namespace zerotune
