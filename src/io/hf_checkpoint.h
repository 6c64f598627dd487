// Writing and reading complete Hugging Face Llama checkpoint folders: config.json,
// generation_config.json, model.safetensors (or model-0000k-of-0000n.safetensors shards plus
// model.safetensors.index.json) and the tokenizer files, laid out so that transformers'
// from_pretrained loads the folder as it is.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "core/dtype.h"
#include "core/json.h"
#include "io/tokenizer_files.h"
#include "model/params.h"

namespace zerotune {

struct HfCheckpointOptions {
  DType save_dtype = DType::bf16;           // f32, bf16 or f16 (f32 -> 16-bit rounds to even)
  int64_t max_shard_bytes = 5'000'000'000;  // HF's default "5GB" (decimal), tensor bytes only
  // Test seam for crash safety: called with each file's path once it is complete inside the
  // temporary folder; an exception thrown here aborts the save like a failed write.
  std::function<void(const std::string& path)> after_file_written;
  // When set, each tensor's values come from here ([numel] f32 into `out`) instead of the
  // parameters' memory, one tensor at a time in hf_tensor_order: a sharding engine gathers each
  // tensor onto the writing rank, so no rank holds the whole model.
  std::function<void(const std::string& name, float* out)> fetch_tensor;
};

// The tensor names of a checkpoint in the order they are written (transformers' state_dict
// order); tied models have no lm_head.weight.
std::vector<std::string> hf_tensor_order(const LlamaConfig& config);

// Writes the folder `dir` atomically: everything goes into the sibling `dir.tmp-<pid>`, each file
// and the folder are fsynced, then the folder replaces `dir` (an existing checkpoint is swapped
// out and deleted only once the new one is in place; a crash leaves the old or the new folder
// under `dir`, never a mix). An existing `dir` must be empty or hold a config.json, so that a
// mistyped path never replaces an unrelated folder. On error the temporary folder is removed and
// the message names the file.
//
// `source_config` is the input config.json object, whose fields are kept (sizes, vocab_size,
// dtype, ids and architecture are updated from params.config()), or null to synthesise every
// LlamaConfig field. `tokenizer` may be null. Tensors go in HF's state_dict order; tied models
// have no lm_head.weight.
void write_hf_checkpoint(const std::string& dir, const LlamaParams& params,
                         const json::Value& source_config, const TokenizerFiles* tokenizer,
                         const HfCheckpointOptions& options = {});

// config.json's object for `config` saved in `save_dtype`, as write_hf_checkpoint writes it.
json::Value make_hf_config_json(const LlamaConfig& config, const json::Value& source_config,
                                DType save_dtype);

// The raw config.json object of a folder (bounded size, errors name the file).
json::Value read_hf_config_json(const std::string& dir);

struct LoadedHfFolder {
  LlamaConfig config;
  json::Value raw_config;                   // config.json as read, for write_hf_checkpoint
  LlamaParams params;                       // f32
  std::optional<TokenizerFiles> tokenizer;  // when tokenizer.model exists
};

enum class HfWeights : uint8_t { load, skip };
// With HfWeights::skip, params has the layout (Storage::none) but no memory: the caller loads the
// weights group by group (load_hf_weights with a group selection).
LoadedHfFolder read_hf_folder(const std::string& dir, HfWeights weights = HfWeights::load);

}  // namespace zerotune
