// The LM head fused with cross-entropy: logits = x W^T are computed a chunk of rows at a time and
// never exist for all rows at once (V is 32k-128k). Forward and backward run in the same pass,
// because the loss scale (1 / tokens of the global batch) is known before the pass.
#pragma once

#include "core/token_batch.h"
#include "kernels/common.h"

namespace zerotune {

struct CrossEntropyResult {
  double loss_sum = 0.0;  // sum over counted rows of -log softmax(logits)[target]
  int64_t count = 0;      // rows whose target is not ignore_index
};

// x: [N, D] final hidden states, w: [V, D] head weight, targets: [N] i32 (kIgnoreIndex to skip).
// When dx has data, dx: [N, D] = d(scale * loss_sum)/dx (overwritten; zero on ignored rows) and
// dw: [V, D] += d(scale * loss_sum)/dw (dw may be empty: a frozen head). With dx empty only the
// loss is computed.
CrossEntropyResult lm_head_cross_entropy(const Tensor& x, const Tensor& w, const Tensor& targets,
                                         float scale, const Tensor& dx, const Tensor& dw,
                                         int64_t chunk_rows = 0);

namespace cpu {
CrossEntropyResult lm_head_cross_entropy(const float* x, const float* w, const int32_t* targets,
                                         int64_t n, int64_t d, int64_t v, float scale, float* dx,
                                         float* dw, int64_t chunk_rows);
}  // namespace cpu

namespace cuda {  // f32 or bf16 x, w, dx; dw f32
CrossEntropyResult lm_head_cross_entropy(const Tensor& x, const Tensor& w, const Tensor& targets,
                                         float scale, const Tensor& dx, const Tensor& dw,
                                         int64_t chunk_rows);
}  // namespace cuda

}  // namespace zerotune
