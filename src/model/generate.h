// Greedy decoding with a key/value cache on the CPU backend. The prompt is processed in one
// prefill call, then one token per step; each step attends to the cached keys and values of all
// earlier positions instead of recomputing them, so a step costs O(P) attention and one row of
// every GEMM. The math is the training forward's (model/llama.cc) with the same kernels, so the
// logits agree with a full recompute to float rounding.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "model/params.h"

namespace zerotune {

class LlamaGenerator {
 public:
  // `params` must outlive the generator. `capacity` bounds the positions the cache holds
  // (the longest prompt + continuation); 0 means max_position_embeddings. The cache takes
  // 2 * L * capacity * Hkv*Dh floats, so callers size it to the job rather than the model's limit.
  explicit LlamaGenerator(const LlamaParams& params, int64_t capacity = 0);

  const LlamaConfig& config() const { return params_.config(); }
  int64_t capacity() const { return capacity_; }
  int64_t cached_length() const { return cached_; }  // positions whose K/V are in the cache
  void reset() { cached_ = 0; }

  // Runs `ids` at positions start_pos, start_pos+1, ... (start_pos <= cached_length(): positions
  // from start_pos on are overwritten, which rewinds the cache) and returns the logits [V] of the
  // last one. Ids must lie in [0, V) and start_pos + ids.size() within capacity().
  std::vector<float> forward_positions(const std::vector<int32_t>& ids, int64_t start_pos);

 private:
  void ensure_rows(int64_t n);
  void layer_forward(int64_t l, int64_t n, int64_t start_pos);
  void attend(int64_t l, int64_t n, int64_t start_pos);

  const LlamaParams& params_;
  int64_t capacity_ = 0;
  int64_t cached_ = 0;
  Buffer rope_cos_, rope_sin_;   // [capacity, Dh/2]
  std::vector<Buffer> k_cache_;  // L of [capacity, Hkv*Dh], keys after RoPE
  std::vector<Buffer> v_cache_;  // L of [capacity, Hkv*Dh]

  // Activations for the rows of the current call, sized for the last n seen.
  int64_t rows_ = 0;
  Buffer x_;          // [n, D] residual stream
  Buffer xn_, rstd_;  // [n, D], [n]
  Buffer qkv_;        // [n, H*Dh + 2*Hkv*Dh]
  Buffer attn_;       // [n, H*Dh]
  Buffer gate_up_;    // [n, 2F]
  Buffer h_;          // [n, F]
  Buffer positions_;  // [n] i32
};

// Index of the largest logit; ties go to the lowest id (as torch.argmax on CPU).
int32_t argmax_token(const std::vector<float>& logits);

enum class StopReason : uint8_t { eos, stop, length };
const char* stop_reason_name(StopReason reason);  // "eos", "stop", "length"

struct GenerateOptions {
  int64_t max_new_tokens = 128;
  int32_t eos_id = -1;   // stop after generating this id; -1: none
  int32_t stop_id = -1;  // likewise (e.g. <END_A>); -1: none
};

struct GenerateResult {
  std::vector<int32_t> new_tokens;  // the continuation, including the eos/stop id that ended it
  StopReason stopped = StopReason::length;
  double seconds = 0.0;  // wall time from the start of the prefill to the last token
};

// Greedy continuation of `prompt` (ids as given: the caller adds <s>). Resets the cache first.
// Fails before any work when prompt + max_new_tokens exceeds the generator's capacity.
GenerateResult generate_greedy(LlamaGenerator& generator, const std::vector<int32_t>& prompt,
                               const GenerateOptions& options);

}  // namespace zerotune
