// Choosing the next token from logits as OpenAI-style servers do: greedy at temperature 0, else
// softmax(logits / temperature) restricted to the top_k most likely tokens and then to the
// smallest set whose probability reaches top_p, drawn with a generator seeded per request, so
// the same seed gives the same text.
#pragma once

#include <cstdint>

#include "core/rng.h"

namespace zerotune {

struct SamplingParams {
  double temperature = 0.0;  // 0: greedy (the largest logit, ties to the lowest id)
  double top_p = 1.0;        // (0, 1]
  int64_t top_k = 0;         // 0: no limit
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  // The next token from logits [vocab].
  int32_t next(const float* logits, int64_t vocab);

 private:
  SamplingParams params_;
  Rng rng_;
};

}  // namespace zerotune
