// Choosing the next token from logits as OpenAI-style servers do: greedy at temperature 0, else
// softmax(logits / temperature) restricted to the top_k most likely tokens and then to the
// smallest set whose probability reaches top_p, drawn with a generator seeded per request, so
// the same seed gives the same text.
#pragma once

#include <cstdint>
#include <vector>

#include "core/rng.h"

namespace zerotune {

struct SamplingParams {
  double temperature = 0.0;  // 0: greedy (the largest logit, ties to the lowest id)
  double top_p = 1.0;        // (0, 1]
  int64_t top_k = 0;         // 0: no limit
  uint64_t seed = 0;
};

// Throws naming the field when temperature < 0, top_p is outside (0, 1] or top_k < 0 (and for
// non-finite values).
void validate_sampling_params(const SamplingParams& params);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);  // validates
  const SamplingParams& params() const { return params_; }
  // The next token from logits [vocab].
  int32_t next(const float* logits, int64_t vocab);

 private:
  // How many of the most likely tokens (sorted to the front of order_) can be drawn: top_k of
  // them, then the fewest whose weights reach top_p of those k's. Fills weight_ for them.
  int64_t truncate(const float* logits, int64_t vocab, float max_logit);
  // A draw among order_[0, count) in proportion to weight_.
  int32_t draw(int64_t count);

  SamplingParams params_;
  Rng rng_;
  std::vector<int32_t> order_;  // [V] token ids, the most likely first (ties: lowest id first)
  std::vector<double> weight_;  // [V] exp((logit - max) / temperature), by position in order_
};

// Index of the largest of logits [vocab]; ties go to the lowest id (as torch.argmax on CPU).
int32_t argmax_token(const float* logits, int64_t vocab);

}  // namespace zerotune
