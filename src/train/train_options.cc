#include "train/train_options.h"

#include <cmath>

#include "core/check.h"
#include "core/device.h"

namespace zerotune {

const char* name_of(ComputeDevice device) {
  switch (device) {
    case ComputeDevice::automatic:
      return "automatic";
    case ComputeDevice::cpu:
      return "cpu";
    case ComputeDevice::cuda:
      return "cuda";
  }
  return "?";
}

const char* name_of(MixedPrecision precision) {
  switch (precision) {
    case MixedPrecision::no:
      return "no";
    case MixedPrecision::bf16:
      return "bf16";
    case MixedPrecision::fp16:
      return "fp16";
  }
  return "?";
}

const char* name_of(OptimizerOffload offload) {
  switch (offload) {
    case OptimizerOffload::none:
      return "none";
    case OptimizerOffload::cpu:
      return "cpu";
    case OptimizerOffload::nvme:
      return "nvme";
  }
  return "?";
}

void validate_train_options(const TrainOptions& o) {
  const char* cmd = "zerotune train";
  ZT_CHECK(!o.model_dir.empty(), cmd, ": --model_name is required");
  ZT_CHECK(!o.train_path.empty(), cmd, ": --train_path is required");
  ZT_CHECK(!o.test_path.empty(), cmd, ": --test_path is required");
  ZT_CHECK(!o.output_dir.empty(), cmd, ": --output_dir is required");
  ZT_CHECK(o.batch_size > 0, cmd, ": --batch-size-per-device must be positive, got ", o.batch_size);
  ZT_CHECK(o.eval_batch_size > 0, cmd, ": --eval-batch-size-per-device must be positive, got ",
           o.eval_batch_size);
  ZT_CHECK(o.num_epochs > 0, cmd, ": --num-epochs must be positive, got ", o.num_epochs);
  ZT_CHECK(o.ctx_len > 1, cmd, ": --ctx-len must be at least 2, got ", o.ctx_len);
  ZT_CHECK(o.grad_accum > 0, cmd, ": --grad_accum must be positive, got ", o.grad_accum);
  ZT_CHECK(o.warmup_steps >= 0, cmd, ": --warmup-steps must be >= 0, got ", o.warmup_steps);
  ZT_CHECK(o.max_steps >= 0, cmd, ": --max-steps must be >= 0, got ", o.max_steps);
  ZT_CHECK(std::isfinite(o.lr) && o.lr >= 0.0, cmd, ": --lr must be >= 0, got ", o.lr);
  ZT_CHECK(std::isfinite(o.weight_decay) && o.weight_decay >= 0.0, cmd,
           ": --weight-decay must be >= 0, got ", o.weight_decay);
  ZT_CHECK(std::isfinite(o.grad_clip) && o.grad_clip >= 0.0, cmd,
           ": --grad-clip must be >= 0 (0 = off), got ", o.grad_clip);
  ZT_CHECK(o.stop_perplexity >= 0.0, cmd, ": --stop-perplexity must be >= 0, got ",
           o.stop_perplexity);
  ZT_CHECK(o.keep_checkpoints >= 0, cmd, ": --num-checkpoints-to-keep must be >= 0, got ",
           o.keep_checkpoints);
  ZT_CHECK(o.world_size > 0, cmd, ": -nd must be positive, got ", o.world_size);
  ZT_CHECK(o.zero_stage >= 0 && o.zero_stage <= 3, cmd, ": --zero-stage must be 0-3, got ",
           o.zero_stage);
  ZT_CHECK(o.param_persistence_threshold >= 0, cmd,
           ": --param-persistence-threshold must be >= 0, got ", o.param_persistence_threshold);
  ZT_CHECK(o.offload_optimizer != OptimizerOffload::nvme || !o.nvme_path.empty(), cmd,
           ": --offload-optimizer nvme needs --nvme-path DIR");
  ZT_CHECK(o.collective_timeout_s > 0.0, cmd, ": --collective-timeout must be positive, got ",
           o.collective_timeout_s);
  ZT_CHECK(o.device != ComputeDevice::cuda || cuda_backend_built(), cmd,
           ": --device cuda needs the CUDA build (scripts/build.sh --cuda: build-cuda/zerotune)");
}

}  // namespace zerotune
