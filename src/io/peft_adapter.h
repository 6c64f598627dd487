// LoRA adapters in PEFT's folder format: adapter_config.json (a LoraConfig with peft_type "LORA")
// and adapter_model.safetensors with PEFT's saved names, which drop the adapter name:
//   base_model.model.model.layers.<i>.self_attn.q_proj.lora_A.weight   [r, in]
//   base_model.model.model.layers.<i>.self_attn.q_proj.lora_B.weight   [out, r]
//   base_model.model.model.embed_tokens.weight, base_model.model.lm_head.weight (modules_to_save)
// `PeftModel.from_pretrained(base, dir)` loads what write_peft_adapter writes.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "io/tokenizer_files.h"
#include "model/lora.h"

namespace zerotune {

inline constexpr const char* kAdapterConfigFile = "adapter_config.json";
inline constexpr const char* kAdapterWeightsFile = "adapter_model.safetensors";

// PEFT's saved name of a modules_to_save module ("embed_tokens" or "lm_head").
std::string peft_saved_module_name(const std::string& module);

struct PeftAdapter {
  std::string dir;
  LoraConfig config;
  std::map<std::string, Buffer> tensors;  // PEFT name -> f32 values
};

// Reads a local adapter folder; errors name the file and key or tensor.
PeftAdapter read_peft_adapter(const std::string& dir);
// Every tensor the config implies is present with its shape for `model`, and nothing else is:
// the error names the tensor and both shapes.
void check_adapter_fits(const PeftAdapter& adapter, const LlamaConfig& model);
// Layer l's adapter group ([numel] f32, the layout of add_lora_groups) from the adapter's tensors.
void adapter_group_values(const PeftAdapter& adapter, const ParamGroup& layout, const Tensor& out);
// W += scale * B A for every adapted weight and the modules_to_save replaced, in f32 `params`
// on the host (merge, generate, serve, eval).
void merge_adapter(LlamaParams& params, const PeftAdapter& adapter);
// The same for decoder layer l alone; only layer l's group of `params` needs memory (a model
// assembled one group at a time).
void merge_adapter_layer(LlamaParams& params, const PeftAdapter& adapter, int64_t l);
// The modules_to_save alone: the embedding / head of f32 `params` replaced by the adapter's.
void copy_saved_modules(LlamaParams& params, const PeftAdapter& adapter);
// The vocabulary an adapter's modules_to_save carry (added tokens), at least `base_vocab`.
int64_t adapter_vocab(const PeftAdapter& adapter, int64_t base_vocab);
// read_peft_adapter, the base grown to adapter_vocab, check_adapter_fits, merge_adapter: the call a
// command with
// `--adapter DIR` makes after loading the base model (DIR already resolved to a local folder).
void apply_adapter(LlamaParams& params, const std::string& dir);

// Writes the folder `dir` (through a temporary sibling, published whole as write_hf_checkpoint
// does): adapter_config.json, adapter_model.safetensors (`tensors` with PEFT names, in their
// dtypes) and, when given, the tokenizer files.
void write_peft_adapter(const std::string& dir, const LoraConfig& config,
                        const std::vector<NamedTensor>& tensors,
                        const TokenizerFiles* tokenizer = nullptr);

}  // namespace zerotune
