// The checkpoint after every epoch: what is written (a CheckpointWriter: the whole model as a
// Hugging Face folder; a LoRA adapter plugs in the same way) and which folders stay (KeepBest),
// locally and in object storage.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"
#include "data/tokenizer.h"
#include "distributed/zero/zero_engine.h"
#include "io/hf_checkpoint.h"
#include "model/lora.h"
#include "train/keep_best.h"

namespace zerotune {

namespace storage {
class CheckpointPublisher;
}

class CheckpointWriter {
 public:
  virtual ~CheckpointWriter() = default;
  // Collective: every rank calls it; rank 0 writes the folder `dir` (temporary name + rename).
  virtual void write(const std::string& dir) = 0;
};

// The whole model as a Hugging Face folder: rank 0 writes it, gathering one tensor at a time from
// the ranks' shards, while the other ranks serve the same tensor order.
class HfModelWriter final : public CheckpointWriter {
 public:
  HfModelWriter(ZeroEngine& engine, const LlamaParams& layout, const json::Value& source_config,
                TokenizerFiles tokenizer, DType save_dtype)
      : engine_(engine),
        layout_(layout),
        source_config_(source_config),
        tokenizer_(std::move(tokenizer)),
        save_dtype_(save_dtype) {}
  void write(const std::string& dir) override;

 private:
  ZeroEngine& engine_;
  const LlamaParams& layout_;
  const json::Value& source_config_;
  TokenizerFiles tokenizer_;
  DType save_dtype_;
};

// A LoRA run's checkpoint: the adapters (and modules_to_save) as a PEFT adapter folder plus the
// tokenizer files, gathered one tensor at a time like HfModelWriter.
class LoraAdapterWriter final : public CheckpointWriter {
 public:
  LoraAdapterWriter(ZeroEngine& engine, const LlamaParams& layout, LoraConfig config,
                    TokenizerFiles tokenizer, DType save_dtype)
      : engine_(engine),
        layout_(layout),
        config_(std::move(config)),
        tokenizer_(std::move(tokenizer)),
        save_dtype_(save_dtype) {}
  void write(const std::string& dir) override;

 private:
  ZeroEngine& engine_;
  const LlamaParams& layout_;
  LoraConfig config_;
  TokenizerFiles tokenizer_;
  DType save_dtype_;
};

class CheckpointPolicy {
 public:
  // keep = 0 keeps every epoch's checkpoint; `publisher` (may be null) uploads what is written
  // and deletes remotely what keep-best drops. Only rank 0 (`lead`) touches files.
  CheckpointPolicy(std::string output_dir, int64_t keep, MetricOrder order,
                   storage::CheckpointPublisher* publisher, bool lead)
      : output_dir_(std::move(output_dir)),
        kept_(keep, order),
        publisher_(publisher),
        lead_(lead) {}

  // The folder of an epoch's checkpoint: epoch-0 for the first epoch, as the Python job names them.
  static std::string folder_name(int64_t epoch) { return "epoch-" + std::to_string(epoch); }

  // Collective: writes epoch-<epoch> through `writer`, publishes it, ranks it by `metric` and
  // removes the checkpoints that fall out of the best N.
  void save(int64_t epoch, double metric, CheckpointWriter& writer);

  void restore(std::vector<SavedCheckpoint> kept) { kept_.restore(std::move(kept)); }
  const KeepBest& kept() const { return kept_; }

 private:
  std::string output_dir_;
  KeepBest kept_;
  storage::CheckpointPublisher* publisher_;
  bool lead_;
};

}  // namespace zerotune
