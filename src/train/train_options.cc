#include "train/train_options.h"

#include <limits>

#include "core/check.h"
#include "core/device.h"

namespace zerotune {

namespace {

constexpr opt::EnumName<ComputeDevice> kDeviceNames[] = {
    {"automatic", ComputeDevice::automatic},
    {"cpu", ComputeDevice::cpu},
    {"cuda", ComputeDevice::cuda},
};
constexpr opt::EnumName<MixedPrecision> kPrecisionNames[] = {
    {"no", MixedPrecision::no},
    {"bf16", MixedPrecision::bf16},
    {"fp16", MixedPrecision::fp16},
};
constexpr opt::EnumName<OptimizerOffload> kOffloadNames[] = {
    {"none", OptimizerOffload::none},
    {"cpu", OptimizerOffload::cpu},
    {"nvme", OptimizerOffload::nvme},
};
constexpr opt::EnumName<CheckpointMetric> kMetricNames[] = {
    {"perplexity", CheckpointMetric::perplexity},
    {"accuracy", CheckpointMetric::accuracy},
};

// Rules that span options, checked once each option passed its own.
void check_across_options(const TrainOptions& o) {
  const char* cmd = "zerotune train";
  ZT_CHECK(!(o.layout == Layout::packed && o.pad_mode == PadMode::to_longest), cmd,
           ": --packing and --pad-to-longest exclude each other");
  ZT_CHECK(o.offload_optimizer != OptimizerOffload::nvme || !o.nvme_path.empty(), cmd,
           ": --offload-optimizer nvme needs --nvme-path DIR");
  ZT_CHECK(o.lora || o.lora_config_path.empty(), cmd, ": --lora-config needs --lora");
  ZT_CHECK(o.adapter_dir.empty() || o.lora_config_path.empty(), cmd,
           ": --adapter brings its own adapter_config.json; drop --lora-config");
  ZT_CHECK(o.device != ComputeDevice::cuda || cuda_backend_built(), cmd,
           ": --device cuda needs the CUDA build (scripts/build.sh --cuda: build-cuda/zerotune)");
  ZT_CHECK(o.checkpoint_metric != CheckpointMetric::accuracy || o.eval_accuracy > 0, cmd,
           ": --checkpoint-metric accuracy needs --eval-accuracy N (N > 0 test rows to decode)");
}

}  // namespace

std::span<const opt::EnumName<ComputeDevice>> enum_names(ComputeDevice) {
  return kDeviceNames;
}
std::span<const opt::EnumName<MixedPrecision>> enum_names(MixedPrecision) {
  return kPrecisionNames;
}
std::span<const opt::EnumName<OptimizerOffload>> enum_names(OptimizerOffload) {
  return kOffloadNames;
}
std::span<const opt::EnumName<CheckpointMetric>> enum_names(CheckpointMetric) {
  return kMetricNames;
}

const char* name_of(ComputeDevice device) {
  return opt::name_of_value(device);
}
const char* name_of(MixedPrecision precision) {
  return opt::name_of_value(precision);
}
const char* name_of(OptimizerOffload offload) {
  return opt::name_of_value(offload);
}
const char* name_of(CheckpointMetric metric) {
  return opt::name_of_value(metric);
}

void fill_dependent_defaults(TrainOptions& o) {
  if (!o.adapter_dir.empty()) o.lora = true;
  if (o.lora && !o.lr_given) o.lr = 1e-4;
  // The Python job warmed up for 10 steps per device. A world size that is not positive is left
  // for its own rule to report.
  if (o.warmup_steps_given || o.world_size <= 0) return;
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  o.warmup_steps = o.world_size <= kMax / 10 ? 10 * o.world_size : kMax;
}

void validate_train_options(const TrainOptions& o) {
  opt::validate_options(o, "zerotune train: ");
  check_across_options(o);
}

}  // namespace zerotune
