// The CPU kernels' scratch memory: one grow-only host buffer per call site, so that the steady
// state of a training step allocates nothing (the CUDA backend's twin is
// backends/cuda/workspace.h).
#pragma once

#include <cstdint>

namespace zerotune::cpu {

// Never given back while the process runs. One slot per call site; kernels call it from the
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

}  // namespace zerotune::cpu
