// `zerotune train`: the fine-tuning job, with the flags of the Python job it replaces.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/json.h"
#include "distributed/launch.h"
#include "io/storage/checkpoint_publisher.h"
#include "io/storage/model_source.h"
#include "io/storage/url.h"
#include "train/trainer.h"

namespace zerotune {
namespace {

OptimizerOffload parse_offload(const std::string& value, const std::string& where) {
  ZT_CHECK(value == "none" || value == "cpu" || value == "nvme", "zerotune train: ", where,
           " must be none, cpu or nvme, got '", value, "'");
  return value == "cpu"    ? OptimizerOffload::cpu
         : value == "nvme" ? OptimizerOffload::nvme
                           : OptimizerOffload::none;
}

// Applies a DeepSpeed JSON config: the keys we honour override the flags unless "auto"; every
// other key is named in a warning.
void apply_ds_config(const std::string& path, TrainOptions& o) {
  std::ifstream in(path, std::ios::binary);
  ZT_CHECK(in, path, ": cannot open (--ds-config)");
  std::ostringstream text;
  text << in.rdbuf();
  const json::Value root = json::parse(text.str(), path);
  ZT_CHECK(root.is_object(), path, ": expected a JSON object");
  auto is_auto = [](const json::Value& v) { return v.is_string() && v.as_string("") == "auto"; };
  int64_t train_batch_size = 0;
  for (const auto& [key, value] : root.members()) {
    const std::string where = path + ": \"" + key + "\"";
    if (key == "train_micro_batch_size_per_gpu") {
      if (!is_auto(value)) o.batch_size = value.as_int64(where);
    } else if (key == "gradient_accumulation_steps") {
      if (!is_auto(value)) o.grad_accum = value.as_int64(where);
    } else if (key == "gradient_clipping") {
      if (!is_auto(value)) o.grad_clip = value.as_double(where);
    } else if (key == "bf16" || key == "fp16") {
      const json::Value* enabled = value.find("enabled");
      if (enabled && !is_auto(*enabled) && enabled->as_bool(where + ".enabled")) {
        std::fprintf(stderr,
                     "zerotune train: warning: %s %s.enabled: the CPU backend computes in fp32\n",
                     path.c_str(), key.c_str());
      }
    } else if (key == "zero_optimization") {
      for (const auto& [zkey, zvalue] : value.as_object(where)) {
        if (zkey == "stage") {
          if (!is_auto(zvalue)) {
            const int64_t stage = zvalue.as_int64(where + ".stage");
            ZT_CHECK(stage >= 0 && stage <= 3, where, ".stage must be 0-3, got ", stage);
            o.zero_stage = static_cast<int>(stage);
          }
        } else if (zkey == "stage3_param_persistence_threshold") {
          if (!is_auto(zvalue)) {
            o.param_persistence_threshold = zvalue.as_int64(where + "." + zkey);
          }
        } else if (zkey == "offload_optimizer") {
          const json::Value* device = zvalue.find("device");
          if (device && !is_auto(*device)) {
            o.offload_optimizer =
                parse_offload(device->as_string(where + ".offload_optimizer.device"),
                              where + ".offload_optimizer.device");
          }
          const json::Value* nvme = zvalue.find("nvme_path");
          if (nvme && !is_auto(*nvme)) {
            o.nvme_path = nvme->as_string(where + ".offload_optimizer.nvme_path");
          }
        } else {
          std::fprintf(stderr, "zerotune train: warning: %s: ignoring zero_optimization.%s\n",
                       path.c_str(), zkey.c_str());
        }
      }
    } else if (key == "train_batch_size") {
      // Derived (micro batch x accumulation x ranks): checked once every key is applied.
      if (!is_auto(value)) train_batch_size = value.as_int64(where);
    } else {
      std::fprintf(stderr, "zerotune train: warning: %s: ignoring \"%s\"\n", path.c_str(),
                   key.c_str());
    }
  }
  ZT_CHECK(train_batch_size == 0 || train_batch_size == o.batch_size * o.grad_accum * o.world_size,
           path, ": \"train_batch_size\" = ", train_batch_size, " disagrees with micro batch ",
           o.batch_size, " x accumulation ", o.grad_accum, " x ranks ", o.world_size);
}

}  // namespace

int cmd_train(int argc, char** argv, int first) {
  Args args("zerotune train",
            "Fine-tunes a Hugging Face Llama folder on JSONL text ({\"input\": ...} per line):\n"
            "AdamW (0.9, 0.999, 1e-8), linear warm-up then linear decay to 0, token-weighted loss\n"
            "over the global batch, gradient clipping by global norm; evaluates, writes\n"
            "OUTPUT_DIR/epoch-<k>/ (an HF folder) and metrics.jsonl after every epoch, and keeps\n"
            "the training state in OUTPUT_DIR/train_state for --resume.");
  args.option("--model_name", "DIR|s3://B/P|OWNER/NAME",
              "Llama model: a Hugging Face folder with tokenizer.model, an s3:// prefix, or a Hub "
              "id (downloaded once into ZEROTUNE_CACHE)")
      .option("--train_path", "FILE", "training JSONL")
      .option("--test_path", "FILE", "evaluation JSONL")
      .option("--special_token_path", "FILE", "tokens.json of special tokens to add")
      .option("--output_dir", "DIR|s3://B/P", "where checkpoints, metrics and state go")
      .option("--local-dir", "DIR",
              "with an s3:// --output_dir: the local folder written first, then uploaded in the "
              "background (default: a folder in the temp directory named after the URL)")
      .option("--batch-size-per-device|-bs", "B", "micro-batch per device", "16")
      .option("--eval-batch-size-per-device", "E", "evaluation batch per device", "64")
      .option("--num-epochs", "N", "epochs", "1")
      .option("--lr", "LR", "peak learning rate", "5e-6")
      .option("--ctx-len", "T", "tokens per example (longer ones are truncated)", "512")
      .option("--grad_accum", "A", "micro-batches per optimizer step", "1")
      .option("--warmup-steps", "W", "linear warm-up steps (default 10 x world size)")
      .option("--max-steps", "M", "stop after M optimizer steps (0 = no limit)", "0")
      .option("--weight-decay", "WD", "AdamW decoupled weight decay", "0")
      .option("--grad-clip", "C", "clip the global gradient norm to C (0 = off)", "1.0")
      .option("--mx", "no|bf16|fp16", "mixed precision (the CPU backend computes in fp32)", "bf16")
      .option("--stop-perplexity", "P",
              "stop after an epoch whose eval perplexity is below P (0 = off)", "0")
      .option("--num-checkpoints-to-keep", "N", "keep the best N epoch checkpoints (0 = all)", "0")
      .option("--seed", "S", "shuffle and initialisation seed", "42")
      .option("--save-dtype", "f32|bf16|f16", "checkpoint dtype (default: the input config's)")
      .option("--ds-config", "FILE",
              "DeepSpeed JSON config (batch, accumulation, clipping, precision, stage)")
      .option("--num-devices|-nd", "N",
              "processes (devices) to train on; without an MPI launcher, zerotune starts them "
              "with mpirun",
              "1")
      .option("--zero-stage", "0|1|2|3",
              "ZeRO stage: shard optimizer state (1), + gradients (2), + parameters (3)", "3")
      .option("--param-persistence-threshold", "N",
              "stage 3: parameter groups under N elements stay replicated", "100000")
      .option("--offload-optimizer", "none|cpu|nvme",
              "where AdamW's fp32 state lives and steps (nvme: paged to --nvme-path)", "none")
      .option("--nvme-path", "DIR", "folder for the paged optimizer state")
      .option("--device", "cpu|cuda",
              "where to compute (default: cuda when built with it and a GPU is present)")
      .option("--collective-timeout", "S",
              "seconds a collective may wait for the other ranks before the job ends", "600")
      .option("--stop-after-epochs", "K", "stop after K epochs as if interrupted (for --resume)",
              "0")
      .flag("--no-grad-ckpt", "keep every layer's activations instead of recomputing them")
      .flag("--no-shuffle", "train in file order")
      .flag("--as-test", "one forward and backward, then the checkpoint path, then exit")
      .flag("--resume", "continue the run in --output_dir from its training state")
      .flag("--packing", "pack examples into ctx-len rows (same loss, fewer tokens computed)")
      .flag("--pad-to-longest", "pad each micro-batch to its longest example, not ctx-len");
  if (!args.parse(argc, argv, first)) return 0;

  TrainOptions o;
  o.model_dir = args.get("--model_name");
  o.train_path = args.get("--train_path");
  o.test_path = args.get("--test_path");
  o.special_token_path = args.get("--special_token_path");
  o.output_dir = args.get("--output_dir");
  o.batch_size = args.get_int("--batch-size-per-device");
  o.eval_batch_size = args.get_int("--eval-batch-size-per-device");
  o.num_epochs = args.get_int("--num-epochs");
  o.lr = args.get_double("--lr");
  o.ctx_len = args.get_int("--ctx-len");
  o.grad_accum = args.get_int("--grad_accum");
  o.world_size = args.get_int("--num-devices");
  ZT_CHECK(o.world_size > 0, "zerotune train: -nd must be positive, got ", o.world_size);
  o.warmup_steps = args.has("--warmup-steps") ? args.get_int("--warmup-steps") : 10 * o.world_size;
  o.max_steps = args.get_int("--max-steps");
  o.weight_decay = args.get_double("--weight-decay");
  o.grad_clip = args.get_double("--grad-clip");
  o.stop_perplexity = args.get_double("--stop-perplexity");
  o.keep_checkpoints = args.get_int("--num-checkpoints-to-keep");
  o.stop_after_epochs = args.get_int("--stop-after-epochs");
  o.seed = static_cast<uint64_t>(args.get_int("--seed"));
  o.shuffle = !args.has("--no-shuffle");
  o.grad_ckpt = !args.has("--no-grad-ckpt");
  o.as_test = args.has("--as-test");
  o.resume = args.has("--resume");
  o.layout = args.has("--packing") ? Layout::packed : Layout::padded;
  o.pad_mode = args.has("--pad-to-longest") ? PadMode::to_longest : PadMode::to_ctx_len;
  ZT_CHECK(!(args.has("--packing") && args.has("--pad-to-longest")),
           "zerotune train: --packing and --pad-to-longest exclude each other");
  const std::string mx = args.get("--mx");
  ZT_CHECK(mx == "no" || mx == "bf16" || mx == "fp16",
           "zerotune train: --mx must be no, bf16 or fp16, got '", mx, "'");
  o.mixed_precision = mx == "no"     ? MixedPrecision::no
                      : mx == "bf16" ? MixedPrecision::bf16
                                     : MixedPrecision::fp16;
  const std::string device = args.get("--device");
  ZT_CHECK(device.empty() || device == "cpu" || device == "cuda",
           "zerotune train: --device must be cpu or cuda, got '", device, "'");
  o.device = device == "cpu"    ? ComputeDevice::cpu
             : device == "cuda" ? ComputeDevice::cuda
                                : ComputeDevice::automatic;
  if (args.has("--save-dtype")) {
    ZT_CHECK(parse_dtype(args.get("--save-dtype"), &o.save_dtype) &&
                 (o.save_dtype == DType::f32 || o.save_dtype == DType::bf16 ||
                  o.save_dtype == DType::f16),
             "zerotune train: --save-dtype must be f32, bf16 or f16, got '",
             args.get("--save-dtype"), "'");
    o.save_dtype_given = true;
  }
  o.zero_stage = static_cast<int>(args.get_int("--zero-stage"));
  o.param_persistence_threshold = args.get_int("--param-persistence-threshold");
  o.offload_optimizer = parse_offload(args.get("--offload-optimizer"), "--offload-optimizer");
  o.nvme_path = args.get("--nvme-path");
  o.collective_timeout_s = args.get_double("--collective-timeout");
  if (args.has("--ds-config")) apply_ds_config(args.get("--ds-config"), o);
  validate_train_options(o);
  if (o.world_size > 1 && read_launch_environment().launcher != Launcher::mpi) {
    relaunch_with_mpirun(o.world_size, argc, argv, "zerotune train");
  }
  // Object storage: the model is fetched into the cache, and an s3:// output is written to a
  // local folder first and uploaded from there.
  if (!o.model_dir.empty()) o.model_dir = storage::resolve_model_source(o.model_dir);
  std::unique_ptr<storage::CheckpointPublisher> publisher;
  if (storage::is_s3_url(o.output_dir)) {
    publisher =
        std::make_unique<storage::CheckpointPublisher>(o.output_dir, args.get("--local-dir"));
    if (!o.resume) publisher->refuse_existing_run();
    std::fprintf(stderr, "zerotune train: writing to %s, uploading to %s\n",
                 publisher->local_dir().c_str(), o.output_dir.c_str());
    o.output_dir = publisher->local_dir();
    o.publisher = publisher.get();
  } else {
    ZT_CHECK(!args.has("--local-dir"), "zerotune train: --local-dir needs an s3:// --output_dir");
  }
  return run_training(o);
}

}  // namespace zerotune
