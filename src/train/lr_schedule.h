// transformers.get_linear_schedule_with_warmup: the optimizer step with index k (from 0) uses
// lr * lambda(k); lambda rises linearly from 0 over the warm-up, then falls linearly to 0 at the
// run's last step.
#pragma once

#include <algorithm>
#include <cstdint>

namespace zerotune {

inline double linear_warmup_decay(int64_t step, int64_t warmup_steps, int64_t total_steps) {
  if (step < warmup_steps) {
    return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
  }
  return std::max(0.0, static_cast<double>(total_steps - step) /
                           static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps)));
}

}  // namespace zerotune
