// Small Llama configurations for tests, described by their sizes in one line.
#pragma once

#include <cstdint>

#include "model/config.h"

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

}  // namespace zerotune
