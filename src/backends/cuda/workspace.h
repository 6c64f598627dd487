// Device scratch memory for the CUDA kernels' temporaries (the LM head's logits chunk, its
// gradient and the per-row losses, the embedding backward's token plan, attention's row deltas):
// one buffer per call site and device that only grows, so a training step allocates nothing once
// the largest batch has been seen.
#pragma once

#include <cstdint>

#include "core/device.h"

namespace zerotune::cuda {

enum class Workspace : uint8_t {
  lm_head_logits,
  lm_head_dlogits,
  lm_head_row_loss,
  embedding_plan,
  attention_delta,
  count
};

// At least `bytes` of device memory for `slot` on `device`, valid until the next call for the
// same slot and device. Kernels call it from the host thread that queues them.
void* workspace(Workspace slot, int64_t bytes, const Device& device);

}  // namespace zerotune::cuda
