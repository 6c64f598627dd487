// Small Llama configurations for tests, described by their sizes in one line.
#pragma once

#include <cstdint>
#include <vector>

#include "core/rng.h"
#include "model/config.h"
#include "model/params.h"

namespace zerotune {

struct TinyShape {
  int64_t vocab, hidden, intermediate, layers, heads, kv_heads, head_dim, max_positions;
  bool tied = false;
};

inline LlamaConfig tiny_llama_config(const TinyShape& s) {
  LlamaConfig c;
  c.vocab_size = s.vocab;
  c.hidden_size = s.hidden;
  c.intermediate_size = s.intermediate;
  c.num_hidden_layers = s.layers;
  c.num_attention_heads = s.heads;
  c.num_key_value_heads = s.kv_heads;
  c.head_dim = s.head_dim;
  c.max_position_embeddings = s.max_positions;
  c.tie_word_embeddings = s.tied;
  c.validate("test");
  return c;
}

// Random parameters with a larger std than init's 0.02: attention far from uniform, so that
// key/value cache mistakes show in the logits.
inline LlamaParams random_params(const LlamaConfig& c, uint64_t seed) {
  LlamaParams p(c);
  p.init_random(seed, 0.2f);
  return p;
}

// n token ids drawn uniformly from [0, vocab).
inline std::vector<int32_t> random_ids(Rng& rng, int64_t n, int64_t vocab) {
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < n; ++i) ids.push_back(static_cast<int32_t>(rng.below(uint64_t(vocab))));
  return ids;
}

}  // namespace zerotune
