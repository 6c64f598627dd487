// Training state for --resume, separate from the HF export: fp32 parameters, AdamW moments and
// the loop's position (step, epoch, best checkpoints), so that a resumed run continues bit for
// bit as an uninterrupted one.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "model/params.h"
#include "train/adamw_optimizer.h"

namespace zerotune {

struct LoopState {
  int64_t global_step = 0;  // optimizer steps taken
  int64_t epochs_done = 0;  // complete epochs (the sampler resumes at the next one)
  int64_t total_steps = 0;  // of the schedule, checked on resume
  uint64_t seed = 0;
  std::vector<std::pair<double, int64_t>> checkpoints;  // (perplexity, epoch) kept on disk
  // Every setting that changes the numbers (flags, thread count), as one line; a resume with
  // another fingerprint would not continue the same run, so it is refused.
  std::string fingerprint;
};

// Writes `dir` (replacing it atomically): state.json and rank-00000.safetensors.
void save_train_state(const std::string& dir, const LlamaParams& params, AdamWOptimizer& optimizer,
                      const LoopState& loop);
// Restores into already-shaped params and optimizer; errors name the file and tensor.
LoopState load_train_state(const std::string& dir, LlamaParams& params, AdamWOptimizer& optimizer);

}  // namespace zerotune
