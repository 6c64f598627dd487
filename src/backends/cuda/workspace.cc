#include "backends/cuda/workspace.h"

#include <map>
#include <mutex>
#include <utility>

#include "core/device_memory.h"

namespace zerotune::cuda {

void* workspace(Workspace slot, int64_t bytes, const Device& device) {
  struct Block {
    void* data = nullptr;
    int64_t bytes = 0;
  };
  static std::mutex mutex;
  // Never destroyed: freeing at exit would run after the CUDA runtime has shut down.
  static auto* blocks = new std::map<std::pair<int, int>, Block>;
  std::lock_guard<std::mutex> lock(mutex);
  Block& b = (*blocks)[{static_cast<int>(slot), device.index}];
  if (b.bytes < bytes) {
    device_free(b.data, device);  // the queued kernels that used it finish first (cudaFree syncs)
    b.data = nullptr;
    b.bytes = 0;
    b.data = device_alloc(bytes, device);
    b.bytes = bytes;
  }
  return b.data;
}

}  // namespace zerotune::cuda
