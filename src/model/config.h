// LlamaConfig: the architecture read from a Hugging Face config.json.
#pragma once

#include <cstdint>
#include <string>

namespace zerotune {

namespace json {
class Value;
}

struct LlamaConfig {
  std::string architecture = "LlamaForCausalLM";  // or MistralForCausalLM (no sliding window)
  int64_t vocab_size = 32000;                     // V
  int64_t hidden_size = 4096;                     // D
  int64_t intermediate_size = 11008;              // F
  int64_t num_hidden_layers = 32;                 // L
  int64_t num_attention_heads = 32;               // H
  int64_t num_key_value_heads = 32;               // Hkv
  int64_t head_dim = 128;                         // Dh
  int64_t max_position_embeddings = 4096;
  int64_t sliding_window = 0;  // Mistral; 0 = none. Sequences longer than it are refused.
  float rms_norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  float rope_linear_factor = 1.0f;  // rope_scaling {"type": "linear", "factor": f}
  bool tie_word_embeddings = false;
  int64_t bos_token_id = 1;
  int64_t eos_token_id = 2;
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

}  // namespace zerotune
