// LlamaConfig: the architecture read from a Hugging Face config.json.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/rope.h"

namespace zerotune {

namespace json {
class Value;
}

struct LlamaConfig {
  // LlamaForCausalLM, MistralForCausalLM or Qwen2ForCausalLM (q/k/v projections with bias).
  std::string architecture = "LlamaForCausalLM";
  int64_t vocab_size = 32000;         // V
  int64_t hidden_size = 4096;         // D
  int64_t intermediate_size = 11008;  // F
  int64_t num_hidden_layers = 32;     // L
  int64_t num_attention_heads = 32;   // H
  int64_t num_key_value_heads = 32;   // Hkv
  int64_t head_dim = 128;             // Dh
  int64_t max_position_embeddings = 4096;
  // Mistral, or Qwen2 with use_sliding_window; 0 = none. Sequences longer than it are refused.
  int64_t sliding_window = 0;
  float rms_norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling;  // config.json's "rope_scaling" (none, linear, dynamic, llama3)
  bool qkv_bias = false;     // Qwen2: q_proj, k_proj and v_proj carry a bias
  bool tie_word_embeddings = false;
  int64_t bos_token_id = 1;
  int64_t eos_token_id = 2;
  // Every end-of-sequence id when config.json lists several (Llama-3.1-Instruct:
  // [128001, 128008, 128009]); eos_token_id is the first. Empty when it gives one.
  std::vector<int64_t> eos_token_ids;
  std::string torch_dtype = "float32";

  int64_t q_dim() const { return num_attention_heads * head_dim; }   // H*Dh
  int64_t kv_dim() const { return num_key_value_heads * head_dim; }  // Hkv*Dh
  int64_t qkv_dim() const { return q_dim() + 2 * kv_dim(); }
  // Checks internal consistency; `source` names the file in the message.
  void validate(const std::string& source) const;
  std::string summary() const;  // one line for logs
};

// Parses config.json's object; every unsupported setting is an error naming `source`.
LlamaConfig parse_llama_config(const json::Value& root, const std::string& source);
LlamaConfig load_llama_config(const std::string& path);
// config.json's "rope_scaling": "rope_type" (transformers >= 4.45) or "type" (older files); null,
// absent and "default" mean none; other types are refused by name.
RopeScaling parse_rope_scaling(const json::Value& root, const std::string& source);

}  // namespace zerotune
