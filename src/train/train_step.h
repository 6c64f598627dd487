// One optimizer step of the fine-tuning job, the same for `train`, `bench`, `debug steps` and the
// GPU benchmarks: every micro-batch's forward and backward, the gradient reduction over ranks,
// clipping, AdamW.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/token_batch.h"
#include "distributed/zero/zero_engine.h"
#include "model/llama.h"
#include "model/lora.h"

namespace zerotune {

// A benchmark's view into a step: told around each micro-batch's forward and backward.
class StepObserver {
 public:
  virtual ~StepObserver() = default;
  virtual void micro_batch_begin() {}
  virtual void micro_batch_end() {}
};

struct StepSettings {
  double lr = 0.0;         // this step's learning rate (the schedule's value)
  double grad_clip = 0.0;  // max global gradient norm; 0 = no clipping
  int64_t step = 0;        // this step's number from 1, for messages
  StepObserver* observer = nullptr;
};

struct StepResult {
  double loss = 0.0;       // mean over the global batch's counted targets
  double grad_norm = 0.0;  // global norm before clipping
  int64_t tokens = 0;      // counted targets over every rank's micro-batches
};

// Runs one step on this rank's micro-batches (each [B, T]). Collective: every rank calls it with
// the same number of micro-batches (an empty share is a micro-batch without counted targets).
// The loss is the token-weighted mean over the global batch, as one rank with all of it would
// compute; clipping follows torch.nn.utils.clip_grad_norm_. A non-finite gradient norm or loss
// stops the run, naming the step, before the optimizer touches the weights.
StepResult train_step(LlamaModel& model, ZeroEngine& engine,
                      const std::vector<TokenBatch>& micro_batches, const StepSettings& settings);

// A model computing on `placement` whose parameters, gradients and AdamW state live in `engine`,
// which owns them on one rank (bench, debug and the GPU benchmarks; the trainer builds its engine
// over all ranks). `params` are the full f32 values to start from.
struct SingleRankTraining {
  std::unique_ptr<Communicator> comm;
  std::unique_ptr<ZeroEngine> engine;
  std::unique_ptr<LoraLayers> lora;  // with LoRA only
  std::unique_ptr<LlamaModel> model;
};
SingleRankTraining single_rank_training(const LlamaParams& params, Checkpointing checkpointing,
                                        const ZeroOptions& options);
// The same with LoRA adapters over the frozen `params`: each adapter group starts from
// `adapter_values(layer, group layout, out [numel] f32)`.
using AdapterValues = std::function<void(int64_t, const ParamGroup&, const Tensor&)>;
SingleRankTraining single_rank_lora_training(const LlamaParams& params, const LoraConfig& lora,
                                             const AdapterValues& adapter_values, uint64_t seed,
                                             Checkpointing checkpointing,
                                             const ZeroOptions& options);
// The dropout key of micro-batch `micro` of step `step` on `rank`: distinct per micro-batch,
// the same on a resumed run.
uint64_t lora_dropout_key(int64_t step, int rank, size_t micro);

}  // namespace zerotune
