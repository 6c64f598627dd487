// Host memory for large buffers. Page faults are expensive (in VMs especially: ~1.2 s per
// 260 MB measured here), so big allocations are 2 MiB aligned and advised as transparent huge
// pages; the backends keep grow-only workspaces on top
// of it instead of allocating per call.
#pragma once

#include <cstddef>
#include <cstdint>

namespace zerotune {

// Aligned allocation (64 bytes; 2 MiB with MADV_HUGEPAGE from 4 MiB up). Never returns null:
// throws zerotune::Error naming the size on failure.
void* host_alloc(size_t bytes);
void host_free(void* p);

}  // namespace zerotune
