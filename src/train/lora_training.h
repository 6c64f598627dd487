// `zerotune train --lora`: the adapters' configuration, their starting values (Kaiming-uniform A
// and zero B from the run's seed, or an existing PEFT adapter's tensors exactly) and the
// modules_to_save an adapter brings.
#pragma once

#include <optional>

#include "distributed/zero/zero_engine.h"
#include "io/peft_adapter.h"
#include "train/train_options.h"

namespace zerotune {

struct LoraSetup {
  LoraConfig config;
  std::optional<PeftAdapter> adapter;  // --adapter
  int64_t first_group = -1;            // the first adapter group in the layout
};

// Reads --adapter or --lora-config (the defaults without either); `model` is the grown
// configuration the adapter must fit. `base_name` is the model as the user named it.
LoraSetup read_lora_setup(const TrainOptions& o, const LlamaConfig& model,
                          const std::string& base_name);
// After the base weights are in the engine: every adapter group's starting values, and an
// adapter's modules_to_save over the base's embedding / head.
void load_lora_values(ZeroEngine& engine, const LlamaParams& layout, const LoraSetup& setup,
                      uint64_t seed);
// The run's LoRA summary on stderr, and the warning when added tokens' rows cannot train.
void report_lora(const LoraSetup& setup, const LlamaParams& layout, int64_t source_vocab);

}  // namespace zerotune
