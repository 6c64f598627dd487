// A model to decode with (`eval`, `serve`): a Hugging Face folder, s3:// prefix or Hub id resolved
// and cached as `train` resolves them, its weights placed on the device, and its tokenizer with the
// special tokens training added.
#pragma once

#include <optional>
#include <string>

#include "core/device.h"
#include "core/dtype.h"
#include "data/tokenizer.h"
#include "io/hf_checkpoint.h"

namespace zerotune {

struct DecodeModel {
  std::string folder;  // the local folder the source resolved to
  LoadedHfFolder loaded;
  std::optional<Tokenizer> tokenizer;
  std::optional<LlamaParams> device_params;  // the weights on a GPU, when decoding there

  const LlamaParams& params() const { return device_params ? *device_params : loaded.params; }
};

// Loads everything; errors name the folder or file at fault. On a GPU the weights are placed in
// `dtype` (f32 or bf16) and the host copy is dropped; the CPU decodes in f32. A non-empty
// `adapter` (a PEFT LoRA folder, s3:// prefix or Hub id) is merged into the weights first.
DecodeModel load_decode_model(const std::string& source, const std::string& adapter,
                          const std::string& special_token_path, Device device, DType dtype);

}  // namespace zerotune
