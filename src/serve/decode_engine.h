// What the scheduler needs from a model: slots holding a sequence's key/value cache, a prefill
// that fills a slot, and a decode step that advances many slots as one batch. The model's
// BatchedGenerator is the real one (model_backend.h); tests use a fake with deterministic logits.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/sampling.h"

namespace zerotune::serve {

class DecodeEngine {
 public:
  virtual ~DecodeEngine() = default;

  virtual int64_t vocab_size() const = 0;   // V: the width of a logits row
  virtual int64_t max_batch() const = 0;    // slots
  virtual int64_t max_seq_len() const = 0;  // positions a slot caches
  virtual int64_t free_slots() const = 0;

  // Takes a free slot and runs `prompt` ([P] ids, 1 <= P <= max_seq_len) through it; writes the
  // logits [V] of its last position and returns the slot.
  virtual int64_t start(const std::vector<int32_t>& prompt, float* logits) = 0;
  // One decode step for every listed slot at once: slots[i] gets tokens[i] at its next position;
  // writes logits [n, V], row i for slots[i].
  virtual void step(const std::vector<int64_t>& slots, const std::vector<int32_t>& tokens,
                    float* logits) = 0;
  // Frees the slot.
  virtual void finish(int64_t slot) = 0;
};

// Picks a sequence's next token from its logits [vocab]; holds the sequence's random state.
using ChooseToken = std::function<int32_t(const float* logits, int64_t vocab)>;
// A fresh chooser for one request's sampling parameters.
using MakeChooser = std::function<ChooseToken(const SamplingParams& params)>;

// Ids -> text (the tokenizer's decode, special tokens as text, <s> and </s> dropped).
using DecodeTokens = std::function<std::string(const std::vector<int32_t>& ids)>;

}  // namespace zerotune::serve
