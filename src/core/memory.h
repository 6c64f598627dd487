// Host memory for large buffers. Page faults are expensive (in VMs especially: ~1.2 s per
// 260 MB measured here), so big allocations are 2 MiB aligned and advised as transparent huge
// pages, and kernels reuse grown-only workspaces instead of allocating per call.
#pragma once

#include <cstddef>
#include <cstdint>

namespace zerotune {

// Aligned allocation (64 bytes; 2 MiB with MADV_HUGEPAGE from 4 MiB up). Never returns null:
// throws zerotune::Error naming the size on failure.
void* host_alloc(size_t bytes);
void host_free(void* p);

// Named scratch memory that grows and is never given back while the process runs: the steady
// state of a training step allocates nothing. One slot per call site; kernels call it from the
// host thread before their parallel regions (not re-entrant).
enum class Scratch : uint8_t {
  lm_head_rows,
  lm_head_logits,
  lm_head_grad_rows,
  lm_head_row_loss,
  attention_kv_grads,
  rmsnorm_partials,
  count
};
float* scratch_floats(Scratch slot, int64_t count);

}  // namespace zerotune
