#include "backends/cpu/scratch.h"

#include "core/memory.h"

namespace zerotune::cpu {

float* scratch_floats(Scratch slot, int64_t count) {
  struct Slot {
    float* data = nullptr;
    int64_t capacity = 0;
  };
  static Slot slots[static_cast<size_t>(Scratch::count)];
  Slot& s = slots[static_cast<size_t>(slot)];
  if (count > s.capacity) {
    host_free(s.data);
    s = Slot{};  // stays consistent if the allocation below throws
    s.data = static_cast<float*>(host_alloc(static_cast<size_t>(count) * sizeof(float)));
    s.capacity = count;
  }
  return s.data;
}

}  // namespace zerotune::cpu
