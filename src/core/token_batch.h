// The model's input: one micro-batch of token ids with their shifted targets, as the data layer
// builds it and the model consumes it.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace zerotune {

// Targets with this label are not counted in the loss (PyTorch's cross_entropy ignore_index).
inline constexpr int32_t kIgnoreIndex = -100;

// One micro-batch, already shifted for causal LM: row r = b*T + t predicts targets[r]
// (= labels[b, t+1], kIgnoreIndex at t = T-1). All CPU i32.
struct TokenBatch {
  int64_t batch = 0;    // B
  int64_t seq_len = 0;  // T
  Buffer ids;           // [B*T]
  Buffer targets;       // [B*T]
  Buffer positions;     // [B*T] rotary positions (restart at 0 for each packed example)
  Buffer segments;      // [B*T] or empty: packed example ids, attention stays within a run

  // From HF-style rows: input_ids [B][T] and labels [B][T] (labels shifted here).
  static TokenBatch from_rows(const std::vector<std::vector<int32_t>>& input_ids,
                              const std::vector<std::vector<int32_t>>& labels);
  int64_t count_targets() const;  // rows whose target is not ignored
};

}  // namespace zerotune
