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
  struct Candidate {
    float logit;
    float weight;  // exp((logit - max) / temperature)
    int32_t id;
  };
  // weight_ and its sum for all tokens, in id order.
  void weigh(const float* logits, int64_t vocab);
  // Fills candidates_ with a prefix of the tokens ranked by logit (those above a cutoff) that
  // holds every token the cuts can keep (top_k = k of them), in id order.
  void gather_candidates(const float* logits, int64_t vocab, int64_t k);
  // Moves the tokens that survive top-k and then top-p to the front of candidates_; their count.
  int64_t truncate(int64_t vocab, int64_t k);
  int32_t draw_candidate(int64_t count);  // in proportion to the weights of candidates_[0, count)
  int32_t draw_any(const float* logits, int64_t vocab);  // in proportion to weight_, no cuts

  SamplingParams params_;
  Rng rng_;
  std::vector<float> weight_;  // [V] by token id
  double total_weight_ = 0.0;
  float max_logit_ = 0.0f;
  std::vector<Candidate> candidates_;
};

// Index of the largest of logits [vocab]; ties go to the lowest id (as torch.argmax on CPU).
int32_t argmax_token(const float* logits, int64_t vocab);

}  // namespace zerotune
