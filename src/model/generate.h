// Decoding one sequence with a key/value cache: a batch of one on BatchedGenerator, so that
// `zerotune generate` and a server decode with the same code (and, on the CPU, the same bits).
// The prompt is processed in one prefill call, then one token per step; each step attends to the
// cached keys and values of all earlier positions instead of recomputing them. The math is the
// training forward's (model/llama.cc), so the logits agree with a full recompute to float rounding.
#pragma once

#include <cstdint>
#include <vector>

#include "model/batched_generator.h"
#include "model/params.h"
#include "model/sampling.h"

namespace zerotune {

class LlamaGenerator {
 public:
  // `params` must outlive the generator. `capacity` bounds the positions the cache holds
  // (the longest prompt + continuation); 0 means max_position_embeddings. The cache takes
  // 2 * L * capacity * Hkv*Dh values, so callers size it to the job rather than the model's limit.
  explicit LlamaGenerator(const LlamaParams& params, int64_t capacity = 0);

  const LlamaConfig& config() const { return batch_.config(); }
  int64_t capacity() const { return batch_.max_seq_len(); }
  int64_t cached_length() const { return slot_ < 0 ? 0 : batch_.length(slot_); }
  void reset();

  // Runs `ids` at positions start_pos, start_pos+1, ... (start_pos <= cached_length(): positions
  // from start_pos on are overwritten, which rewinds the cache) and returns the logits [V] of the
  // last one. Ids must lie in [0, V) and start_pos + ids.size() within capacity(). One id right
  // after the cached positions is a decode step (BatchedGenerator::step); anything else a prefill.
  std::vector<float> forward_positions(const std::vector<int32_t>& ids, int64_t start_pos);

 private:
  BatchedGenerator batch_;  // one slot
  int64_t slot_ = -1;       // -1 until the first call after a reset
};

// Index of the largest logit; ties go to the lowest id (as torch.argmax on CPU).
inline int32_t argmax_token(const std::vector<float>& logits) {
  return argmax_token(logits.data(), static_cast<int64_t>(logits.size()));
}

enum class StopReason : uint8_t { eos, stop, length };
const char* stop_reason_name(StopReason reason);  // "eos", "stop", "length"

struct GenerateOptions {
  int64_t max_new_tokens = 128;
  int32_t eos_id = -1;      // stop after generating this id; -1: none
  int32_t stop_id = -1;     // likewise (e.g. <END_A>); -1: none
  SamplingParams sampling;  // greedy by default
};

struct GenerateResult {
  std::vector<int32_t> new_tokens;  // the continuation, including the eos/stop id that ended it
  StopReason stopped = StopReason::length;
  double seconds = 0.0;  // wall time from the start of the prefill to the last token
};

// Continuation of `prompt` (ids as given: the caller adds <s>), each token chosen by a Sampler
// with options.sampling (seeded: the same seed gives the same tokens). Resets the cache first.
// Fails before any work when prompt + max_new_tokens exceeds the generator's capacity or the
// sampling parameters are invalid.
GenerateResult generate(LlamaGenerator& generator, const std::vector<int32_t>& prompt,
                        const GenerateOptions& options);
// generate() with options.sampling ignored: always the largest logit.
GenerateResult generate_greedy(LlamaGenerator& generator, const std::vector<int32_t>& prompt,
                               const GenerateOptions& options);

}  // namespace zerotune
