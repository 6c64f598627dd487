// The fine-tuning job's options, after parsing: every choice is a type, not a string.
#pragma once

#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "data/collate.h"
#include "train/batching.h"

namespace zerotune {

namespace storage {
class CheckpointPublisher;
}

// Where to compute: automatic is cuda when this build has it and a GPU is visible, else cpu.
enum class ComputeDevice : uint8_t { automatic, cpu, cuda };
// --mx: the compute dtype on a GPU (no = f32); the CPU backend computes in f32 whatever is asked.
enum class MixedPrecision : uint8_t { no, bf16, fp16 };
// Where AdamW's f32 state lives: beside the model, in host memory, or paged to NVMe.
enum class OptimizerOffload : uint8_t { none, cpu, nvme };

const char* name_of(ComputeDevice device);
const char* name_of(MixedPrecision precision);
const char* name_of(OptimizerOffload offload);

struct TrainOptions {
  std::string model_dir, train_path, test_path, special_token_path, output_dir;
  int64_t batch_size = 16;       // per device (micro-batch)
  int64_t eval_batch_size = 64;  // per device
  int64_t num_epochs = 1;
  int64_t ctx_len = 512;
  int64_t grad_accum = 1;
  int64_t warmup_steps = 10;
  int64_t max_steps = 0;  // 0: no limit
  double lr = 5e-6;
  double weight_decay = 0.0;
  double grad_clip = 1.0;         // 0: off
  double stop_perplexity = 0.0;   // 0: off
  int64_t keep_checkpoints = 0;   // 0: all
  int64_t stop_after_epochs = 0;  // 0: off; stop as if interrupted (state saved) for --resume
  uint64_t seed = 42;
  bool shuffle = true;
  bool grad_ckpt = true;
  bool as_test = false;
  bool resume = false;
  bool save_dtype_given = false;
  DType save_dtype = DType::f32;
  Layout layout = Layout::padded;
  PadMode pad_mode = PadMode::to_ctx_len;
  int64_t world_size = 1;  // -nd: ranks expected (checked against the MPI launch)
  // ZeRO (distributed/zero/zero_engine.h): stage 0-3, small groups kept replicated, AdamW state
  // placement.
  int zero_stage = 3;
  int64_t param_persistence_threshold = 100000;
  OptimizerOffload offload_optimizer = OptimizerOffload::none;
  std::string nvme_path;
  double collective_timeout_s = 600.0;
  ComputeDevice device = ComputeDevice::automatic;
  MixedPrecision mixed_precision = MixedPrecision::bf16;  // --mx: the GPU's compute dtype
  // Object storage: when set, rank 0 hands it each finished checkpoint and metrics.jsonl after
  // writing them in output_dir (then its local folder), and the checkpoints keep-best drops.
  storage::CheckpointPublisher* publisher = nullptr;
};

// Checks every option before any work starts; errors name the flag and the value.
void validate_train_options(const TrainOptions& options);

}  // namespace zerotune
