// The fine-tuning job's options, after parsing: every choice is a type, not a string. Each option
// is declared once, in TrainOptions::visit (spellings, help, default, rules); the command line,
// --help, the checks and the printed options all come from that list (cli/option_rules.h).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "core/dtype.h"
#include "core/option_rules.h"
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
// What --num-checkpoints-to-keep ranks the epochs by.
enum class CheckpointMetric : uint8_t { perplexity, accuracy };

// The names of each choice, for parsing, --help and messages (found by opt:: through ADL).
std::span<const opt::EnumName<ComputeDevice>> enum_names(ComputeDevice);
std::span<const opt::EnumName<MixedPrecision>> enum_names(MixedPrecision);
std::span<const opt::EnumName<OptimizerOffload>> enum_names(OptimizerOffload);
std::span<const opt::EnumName<CheckpointMetric>> enum_names(CheckpointMetric);

const char* name_of(ComputeDevice device);
const char* name_of(MixedPrecision precision);
const char* name_of(OptimizerOffload offload);
const char* name_of(CheckpointMetric metric);

struct TrainOptions {
  std::string model_dir, train_path, test_path, special_token_path, output_dir;
  int64_t batch_size = 16;       // per device (micro-batch)
  int64_t eval_batch_size = 64;  // per device
  int64_t num_epochs = 1;
  int64_t ctx_len = 512;
  int64_t grad_accum = 1;
  int64_t warmup_steps = 10;  // 10 x world_size unless given (fill_dependent_defaults)
  int64_t max_steps = 0;      // 0: no limit
  double lr = 5e-6;           // 1e-4 with --lora unless given (fill_dependent_defaults)
  double weight_decay = 0.0;
  double grad_clip = 1.0;         // 0: off
  double stop_perplexity = 0.0;   // 0: off
  int64_t keep_checkpoints = 0;   // 0: all
  int64_t stop_after_epochs = 0;  // 0: off; stop as if interrupted (state saved) for --resume
  int64_t eval_accuracy = 0;      // GSM8K accuracy on the first N test rows per epoch; 0: off
  int64_t eval_max_new_tokens = 256;
  CheckpointMetric checkpoint_metric = CheckpointMetric::perplexity;
  uint64_t seed = 42;
  bool shuffle = true;
  bool grad_ckpt = true;
  bool as_test = false;
  bool resume = false;
  bool save_dtype_given = false;
  bool warmup_steps_given = false;
  bool lr_given = false;
  // LoRA (model/lora.h): adapters over a frozen base, from a PEFT LoraConfig file (the defaults
  // without one) or continuing an existing adapter folder (s3:// and Hub ids resolved by the cli).
  bool lora = false;
  std::string lora_config_path;
  std::string adapter_dir;
  std::string base_model_name;  // --model_name as given (adapter_config.json names it)
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

  // Every option, in --help's order: field, spellings, value name (empty: the choices' names, or
  // none for a flag), help, then rules and marks (cli/option_rules.h). Defaults are the initial
  // values above.
  template <class Visitor>
  void visit(Visitor& v) {
    visit_data_options(v);
    visit_step_options(v);
    visit_distributed_options(v);
    visit_flags(v);
    visit_lora_options(v);
  }

 private:
  template <class Visitor>
  void visit_data_options(Visitor& v);
  template <class Visitor>
  void visit_step_options(Visitor& v);
  template <class Visitor>
  void visit_distributed_options(Visitor& v);
  template <class Visitor>
  void visit_flags(Visitor& v);
  template <class Visitor>
  void visit_lora_options(Visitor& v);
};

// Defaults that depend on other options: --warmup-steps is 10 x -nd unless given; --lr is 1e-4
// with --lora (or --adapter) unless given, as the Python job's LoRA runs.
void fill_dependent_defaults(TrainOptions& options);
// Checks every option before any work starts: each option's own rules (from visit), then the
// rules across options. Errors name the flag and the value.
void validate_train_options(const TrainOptions& options);

template <class Visitor>
void TrainOptions::visit_data_options(Visitor& v) {
  using namespace opt;
  v(model_dir, "--model_name", "DIR|s3://B/P|OWNER/NAME",
    "Llama model: a Hugging Face folder with tokenizer.model, an s3:// prefix, or a Hub id "
    "(downloaded once into ZEROTUNE_CACHE)",
    Required{}, PythonJob{}, Alias{"--model-name"});
  v(train_path, "--train_path", "FILE", "training JSONL", Required{}, PythonJob{},
    Alias{"--train-path"});
  v(test_path, "--test_path", "FILE", "evaluation JSONL", Required{}, PythonJob{},
    Alias{"--test-path"});
  v(special_token_path, "--special_token_path", "FILE", "tokens.json of special tokens to add",
    PythonJob{}, Alias{"--special-token-path"});
  v(output_dir, "--output_dir", "DIR|s3://B/P", "where checkpoints, metrics and state go",
    Required{}, PythonJob{}, Alias{"--output-dir"});
  v(batch_size, "--batch-size-per-device|-bs", "B", "micro-batch per device", Positive{},
    PythonJob{});
  v(eval_batch_size, "--eval-batch-size-per-device", "E", "evaluation batch per device", Positive{},
    PythonJob{});
  v(num_epochs, "--num-epochs", "N", "epochs", Positive{}, PythonJob{});
  v(ctx_len, "--ctx-len", "T", "tokens per example (longer ones are truncated)", AtLeast{2},
    PythonJob{});
  v(grad_accum, "--grad_accum", "A", "micro-batches per optimizer step", Positive{}, PythonJob{},
    Alias{"--grad-accum"});
}

template <class Visitor>
void TrainOptions::visit_step_options(Visitor& v) {
  using namespace opt;
  v(lr, "--lr", "LR", "peak learning rate", Finite{}, NonNegative{}, PythonJob{},
    DefaultText{"5e-06; 1e-04 with --lora"}, Given{lr_given});
  v(warmup_steps, "--warmup-steps", "W", "linear warm-up steps", NonNegative{},
    DefaultText{"10 x -nd"}, Given{warmup_steps_given});
  v(max_steps, "--max-steps", "M", "stop after M optimizer steps (0 = no limit)", NonNegative{});
  v(weight_decay, "--weight-decay", "WD", "AdamW decoupled weight decay", Finite{}, NonNegative{});
  v(grad_clip, "--grad-clip", "C", "clip the global gradient norm to C (0 = off)", Finite{},
    NonNegative{"off"});
  v(mixed_precision, "--mx", "", "mixed precision (the CPU backend computes in fp32)", PythonJob{});
  v(stop_perplexity, "--stop-perplexity", "P",
    "stop after an epoch whose eval perplexity is below P (0 = off)", NonNegative{}, PythonJob{});
  v(keep_checkpoints, "--num-checkpoints-to-keep", "N",
    "keep the best N epoch checkpoints (0 = all)", NonNegative{}, PythonJob{});
  v(seed, "--seed", "S", "shuffle and initialisation seed");
  v(save_dtype, "--save-dtype", "", "checkpoint dtype",
    Choices{DType::f32, DType::bf16, DType::f16}, DefaultText{"the input config's"},
    PresentIf{save_dtype_given});
  v(stop_after_epochs, "--stop-after-epochs", "K",
    "stop after K epochs as if interrupted (for --resume)");
  v(eval_accuracy, "--eval-accuracy", "N",
    "after each epoch, GSM8K exact-match accuracy of greedy answers to the first N test rows "
    "(0 = off)",
    NonNegative{});
  v(eval_max_new_tokens, "--eval-max-new-tokens", "N", "most tokens per answer of --eval-accuracy",
    Positive{});
  v(checkpoint_metric, "--checkpoint-metric", "",
    "what --num-checkpoints-to-keep ranks by (accuracy needs --eval-accuracy)");
}

template <class Visitor>
void TrainOptions::visit_distributed_options(Visitor& v) {
  using namespace opt;
  // "-nd" first: errors name the option as the Python job's users typed it.
  v(world_size, "-nd|--num-devices", "N",
    "processes (devices) to train on; without an MPI launcher, zerotune starts them with mpirun",
    Positive{}, PythonJob{});
  v(zero_stage, "--zero-stage", "0|1|2|3",
    "ZeRO stage: shard optimizer state (1), + gradients (2), + parameters (3)", InRange{0, 3});
  v(param_persistence_threshold, "--param-persistence-threshold", "N",
    "stage 3: parameter groups under N elements stay replicated", NonNegative{});
  v(offload_optimizer, "--offload-optimizer", "",
    "where AdamW's fp32 state lives and steps (nvme: paged to --nvme-path)");
  v(nvme_path, "--nvme-path", "DIR", "folder for the paged optimizer state");
  v(device, "--device", "", "where to compute", Choices{ComputeDevice::cpu, ComputeDevice::cuda},
    DefaultText{"cuda when built with it and a GPU is present"});
  v(collective_timeout_s, "--collective-timeout", "S",
    "seconds a collective may wait for the other ranks before the job ends", Positive{});
}

template <class Visitor>
void TrainOptions::visit_flags(Visitor& v) {
  using namespace opt;
  v(grad_ckpt, "--no-grad-ckpt", "", "keep every layer's activations instead of recomputing them",
    SetsTo{false}, PythonJob{});
  v(shuffle, "--no-shuffle", "", "train in file order", SetsTo{false});
  v(as_test, "--as-test", "", "one forward and backward, then the checkpoint path, then exit",
    PythonJob{});
  v(resume, "--resume", "", "continue the run in --output_dir from its training state");
  v(layout, "--packing", "", "pack examples into ctx-len rows (same loss, fewer tokens computed)",
    SetsTo{Layout::packed});
  v(pad_mode, "--pad-to-longest", "", "pad each micro-batch to its longest example, not ctx-len",
    SetsTo{PadMode::to_longest});
}

template <class Visitor>
void TrainOptions::visit_lora_options(Visitor& v) {
  using namespace opt;
  v(lora, "--lora", "",
    "train LoRA adapters over the frozen model (r 8, alpha 16, dropout 0.05, gate/up/down_proj "
    "unless --lora-config); checkpoints are PEFT adapter folders",
    PythonJob{});
  v(lora_config_path, "--lora-config", "FILE", "PEFT LoraConfig JSON (r, lora_alpha, ...)");
  v(adapter_dir, "--adapter", "DIR|s3://B/P|OWNER/NAME",
    "continue training this PEFT adapter (implies --lora; its config replaces --lora-config)");
}

}  // namespace zerotune
