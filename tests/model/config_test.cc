#include "model/config.h"

#include <gtest/gtest.h>

#include "core/check.h"
#include "core/json.h"

namespace zerotune {
namespace {

const char* kLlama2 = R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
  "intermediate_size": 11008, "num_attention_heads": 32, "num_hidden_layers": 32,
  "num_key_value_heads": 32, "rms_norm_eps": 1e-05, "vocab_size": 32000, "hidden_act": "silu",
  "max_position_embeddings": 4096, "rope_scaling": null, "tie_word_embeddings": false,
  "torch_dtype": "float16", "bos_token_id": 1, "eos_token_id": 2})";

LlamaConfig parse(const std::string& text) {
  return parse_llama_config(json::parse(text, "config.json"), "config.json");
}

// Adds or overrides fields: the parser keeps the last of duplicate keys.
std::string with(const std::string& key_value) {
  std::string s = kLlama2;
  s.insert(s.rfind('}'), ", " + key_value);
  return s;
}

std::string error_of(const std::string& text) {
  try {
    parse(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(LlamaConfig, ParsesLlama2) {
  const LlamaConfig c = parse(kLlama2);
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.num_key_value_heads, 32);
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-5f);
  EXPECT_FLOAT_EQ(c.rope_theta, 10000.0f);
  EXPECT_EQ(c.qkv_dim(), 3 * 4096);
}

TEST(LlamaConfig, GqaHeadDimThetaAndLinearScaling) {
  LlamaConfig c = parse(with(R"("rope_theta": 500000.0, "head_dim": 96)"));
  EXPECT_EQ(c.head_dim, 96);
  EXPECT_FLOAT_EQ(c.rope_theta, 500000.0f);
  c = parse(with(R"("rope_scaling": {"type": "linear", "factor": 2.0})"));
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::linear);
  EXPECT_FLOAT_EQ(c.rope_scaling.factor, 2.0f);
}

// Llama-3.1-8B-Instruct's settings: llama3 rope scaling, three end-of-sequence ids.
TEST(LlamaConfig, Llama31RopeScalingAndEosList) {
  const LlamaConfig c = parse(with(
      R"("rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 8192, "rope_type": "llama3"},
          "eos_token_id": [128001, 128008, 128009])"));
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::llama3);
  EXPECT_FLOAT_EQ(c.rope_scaling.factor, 8.0f);
  EXPECT_FLOAT_EQ(c.rope_scaling.low_freq_factor, 1.0f);
  EXPECT_FLOAT_EQ(c.rope_scaling.high_freq_factor, 4.0f);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.eos_token_id, 128001);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  EXPECT_NE(error_of(with(R"("rope_scaling": {"rope_type": "llama3", "factor": 8.0})"))
                .find("needs \"low_freq_factor\""),
            std::string::npos);
  EXPECT_EQ(parse(with(R"("rope_scaling": {"type": "dynamic", "factor": 2.0})")).rope_scaling.type,
            RopeScalingType::dynamic);
}

TEST(LlamaConfig, Qwen2HasQkvBiasAndOptionalSlidingWindow) {
  std::string s = kLlama2;
  s.replace(s.find("LlamaForCausalLM"), 16, "Qwen2ForCausalLM");
  const std::string off = R"("sliding_window": 4096, "use_sliding_window": false, )";
  LlamaConfig c = parse(std::string("{") + off + s.substr(1));
  EXPECT_EQ(c.architecture, "Qwen2ForCausalLM");
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_EQ(c.sliding_window, 0);
  c = parse(std::string("{") + R"("sliding_window": 4096, "use_sliding_window": true, )" +
            s.substr(1));
  EXPECT_EQ(c.sliding_window, 4096);
  EXPECT_FALSE(parse(kLlama2).qkv_bias);
}

TEST(LlamaConfig, MistralWithoutSlidingWindow) {
  std::string s = kLlama2;
  s.replace(s.find("LlamaForCausalLM"), 16, "MistralForCausalLM");
  const LlamaConfig c = parse(s);
  EXPECT_EQ(c.architecture, "MistralForCausalLM");
  EXPECT_EQ(c.sliding_window, 0);
}

TEST(LlamaConfig, UnsupportedSettingsAreClearErrors) {
  std::string s = kLlama2;
  s.replace(s.find("LlamaForCausalLM"), 16, "GPT2LMHeadModel");
  EXPECT_NE(error_of(s).find("architecture \"GPT2LMHeadModel\" is not supported"),
            std::string::npos);
  s = kLlama2;
  s.replace(s.find("\"silu\""), 6, "\"gelu\"");
  EXPECT_NE(error_of(s).find("\"hidden_act\" is \"gelu\""), std::string::npos);
  EXPECT_NE(
      error_of(with(R"("rope_scaling": {"type": "yarn", "factor": 4})"))
          .find("rope_scaling type 'yarn' is not supported; supported: linear, dynamic, llama3"),
      std::string::npos);
  EXPECT_NE(error_of(with(R"("num_key_value_heads": 5)")).find("not a multiple"),
            std::string::npos);
  EXPECT_NE(error_of(with(R"("attention_bias": true)")).find("attention_bias"), std::string::npos);
  std::string missing = kLlama2;
  missing.replace(missing.find("\"vocab_size\": 32000,"), 20, "");
  EXPECT_NE(error_of(missing).find("missing required field \"vocab_size\""), std::string::npos);
  EXPECT_NE(error_of(with(R"("hidden_size": "big")")).find("hidden_size"), std::string::npos);
}

}  // namespace
}  // namespace zerotune

namespace zerotune {
namespace {

// The config.json files of the families as their Hub repositories publish them (fields abridged
// to what transformers reads; values as published).
TEST(LlamaConfig, PublishedFamilyConfigsParse) {
  const LlamaConfig qwen = parse(R"({"architectures": ["Qwen2ForCausalLM"],
    "attention_dropout": 0.0, "bos_token_id": 151643, "eos_token_id": 151645, "hidden_act": "silu",
    "hidden_size": 3584, "initializer_range": 0.02, "intermediate_size": 18944,
    "max_position_embeddings": 32768, "max_window_layers": 28, "model_type": "qwen2",
    "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4,
    "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 131072,
    "tie_word_embeddings": false, "torch_dtype": "bfloat16", "use_cache": true,
    "use_sliding_window": false, "vocab_size": 152064})");
  EXPECT_TRUE(qwen.qkv_bias);
  EXPECT_EQ(qwen.sliding_window, 0);
  EXPECT_EQ(qwen.head_dim, 128);
  const LlamaConfig llama32 = parse(R"({"architectures": ["LlamaForCausalLM"],
    "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 128000,
    "eos_token_id": [128001, 128008, 128009], "head_dim": 64, "hidden_act": "silu",
    "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 8192,
    "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
    "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8,
    "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": {"factor": 32.0,
    "high_freq_factor": 4.0, "low_freq_factor": 1.0, "original_max_position_embeddings": 8192,
    "rope_type": "llama3"}, "rope_theta": 500000.0, "tie_word_embeddings": true,
    "torch_dtype": "bfloat16", "use_cache": true, "vocab_size": 128256})");
  EXPECT_TRUE(llama32.tie_word_embeddings);
  EXPECT_EQ(llama32.rope_scaling.type, RopeScalingType::llama3);
  EXPECT_FLOAT_EQ(llama32.rope_scaling.factor, 32.0f);
  EXPECT_EQ(llama32.eos_token_ids.size(), 3u);
  const LlamaConfig mistral = parse(R"({"architectures": ["MistralForCausalLM"],
    "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
    "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
    "max_position_embeddings": 32768, "model_type": "mistral", "num_attention_heads": 32,
    "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
    "rope_theta": 1000000.0, "sliding_window": null, "tie_word_embeddings": false,
    "torch_dtype": "bfloat16", "use_cache": true, "vocab_size": 32000})");
  EXPECT_EQ(mistral.sliding_window, 0);
  EXPECT_FALSE(mistral.qkv_bias);
}

}  // namespace
}  // namespace zerotune
