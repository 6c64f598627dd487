// Loading a Hugging Face Llama folder: config.json plus model.safetensors, or sharded
// model-0000k-of-0000n.safetensors with model.safetensors.index.json.
#pragma once

#include <string>

#include "model/params.h"

namespace zerotune {

LlamaConfig load_hf_config(const std::string& dir);

// Fills `params` (already shaped for the folder's config) from the folder's safetensors, converting
// BF16/F16/F32 to the parameters' f32. Every expected tensor must be present with its shape; a
// tied model may carry lm_head.weight too (ignored). Unexpected tensors are an error, except
// rotary inv_freq buffers that older exports include.
// With `only_group` >= 0, only that group's tensors are copied (the group must have memory; the
// others may have none), and every tensor is still checked.
void load_hf_weights(const std::string& dir, LlamaParams& params, int64_t only_group = -1);

// The safetensors files of a folder: the index's shards, or the single model.safetensors.
std::vector<std::string> hf_weight_files(const std::string& dir);

}  // namespace zerotune
