// Decoding many sequences at once with a key/value cache: every sequence has a slot of
// max_seq_len cached positions; a decode step runs the next token of every active slot as one
// batch, so the weights are read once per step for all of them. The math is the training
// forward's, and a slot's logits do not depend on which other slots step with it (batch
// invariance), so a request's greedy text is the same alone or among others.
//
// The parameters may live on the CPU (f32) or on a GPU (f32 or bf16; the cache and activations
// then take the parameters' dtype and the logits come back as f32). Batch invariance holds on the
// CPU, where the step's matrix products are our own kernel (kernels/decode_linear.h); on a GPU
// they are cuBLASLt GEMMs, whose results may vary in the last bits with the number of rows.
// A prompt's prefill goes through the GEMMs of linear_forward on either device (it is one
// sequence: its result does not depend on other requests).
//
// One caller at a time: the methods are not safe to call from several threads at once. A call
// refused for its input (an id outside the vocabulary, no free slot, a full slot, a prompt too
// long) throws before it changes anything.
#pragma once

#include <cstdint>
#include <vector>

#include "model/params.h"

namespace zerotune {

class BatchedGenerator {
 public:
  // `params` must outlive the generator. The cache takes 2 * L * max_batch * max_seq_len * Hkv*Dh
  // values; max_seq_len <= max_position_embeddings.
  BatchedGenerator(const LlamaParams& params, int64_t max_batch, int64_t max_seq_len);
  ~BatchedGenerator();
  BatchedGenerator(const BatchedGenerator&) = delete;
  BatchedGenerator& operator=(const BatchedGenerator&) = delete;

  const LlamaConfig& config() const;
  int64_t max_batch() const;
  int64_t max_seq_len() const;
  int64_t free_slots() const;

  // Takes a free slot and runs `prompt` ([P] ids in [0, V), 1 <= P <= max_seq_len) through it;
  // writes the logits [V] of its last position. Throws when no slot is free.
  int64_t start(const std::vector<int32_t>& prompt, float* logits);
  // One decode step: slots[i] (distinct, started, length < max_seq_len) is fed tokens[i] at its
  // next position; writes logits [n, V], row i for slots[i].
  void step(const std::vector<int64_t>& slots, const std::vector<int32_t>& tokens, float* logits);
  int64_t length(int64_t slot) const;  // positions cached in the slot (0 for a free one)
  // Runs `ids` through a started slot at positions start_pos, start_pos + 1, ... (start_pos <=
  // length(slot): the positions from start_pos on are overwritten, which rewinds the slot) as a
  // prefill, and writes the logits [V] of the last one. For prompts fed in pieces.
  void extend(int64_t slot, const std::vector<int32_t>& ids, int64_t start_pos, float* logits);
  // Frees the slot at once (a finished or abandoned sequence).
  void finish(int64_t slot);

 private:
  struct State;
  State* state_;
};

}  // namespace zerotune
