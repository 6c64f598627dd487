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
#include "cli/options.h"
#include "core/json.h"
#include "distributed/launch.h"
#include "io/storage/checkpoint_publisher.h"
#include "io/storage/model_source.h"
#include "io/storage/url.h"
#include "train/trainer.h"

namespace zerotune {
namespace {

constexpr const char* kSummary =
    "Fine-tunes a Hugging Face Llama folder on JSONL text ({\"input\": ...} per line):\n"
    "AdamW (0.9, 0.999, 1e-8), linear warm-up then linear decay to 0, token-weighted loss\n"
    "over the global batch, gradient clipping by global norm; evaluates, writes\n"
    "OUTPUT_DIR/epoch-<k>/ (an HF folder) and metrics.jsonl after every epoch, and keeps\n"
    "the training state in OUTPUT_DIR/train_state for --resume.";

// The job's options (train/train_options.h) and the command's own, declared the same way.
struct TrainCommandFlags {
  TrainOptions job;
  std::string ds_config;  // applied over the flags
  std::string local_dir;  // an s3:// output's local copy
  bool print_options = false;

  template <class Visitor>
  void visit(Visitor& v) {
    using namespace opt;
    job.visit(v);
    v(ds_config, "--ds-config", "FILE",
      "DeepSpeed JSON config (batch, accumulation, clipping, precision, stage); its keys override "
      "the flags",
      PythonJob{});
    v(local_dir, "--local-dir", "DIR",
      "with an s3:// --output_dir: the local folder written first, then uploaded in the "
      "background",
      DefaultText{"a folder in the temp directory named after the URL"});
    v(print_options, "--print-options", "",
      "print the effective options (after --ds-config and the checks) and exit");
  }
};

// DeepSpeed's "auto": the value is left to the flags.
bool is_auto(const json::Value& v) {
  return v.is_string() && v.as_string("") == "auto";
}

// A DeepSpeed config's "zero_optimization" object (`where` names it): each key zerotune honours is
// written over its flag through that option's own parsing and rules (opt::assign_option).
void apply_zero_optimization(const json::Value& zero, const std::string& path,
                             const std::string& where, TrainOptions& o) {
  for (const auto& [zkey, zvalue] : zero.as_object(where)) {
    const std::string zwhere = where + "." + zkey;
    if (zkey == "stage") {
      if (!is_auto(zvalue)) opt::assign_option(o, o.zero_stage, zvalue.as_int64(zwhere), zwhere);
    } else if (zkey == "stage3_param_persistence_threshold") {
      if (!is_auto(zvalue)) {
        opt::assign_option(o, o.param_persistence_threshold, zvalue.as_int64(zwhere), zwhere);
      }
    } else if (zkey == "offload_optimizer") {
      const json::Value* device = zvalue.find("device");
      if (device && !is_auto(*device)) {
        opt::assign_option(o, o.offload_optimizer, device->as_string(zwhere + ".device"),
                           zwhere + ".device");
      }
      const json::Value* nvme = zvalue.find("nvme_path");
      if (nvme && !is_auto(*nvme)) {
        opt::assign_option(o, o.nvme_path, nvme->as_string(zwhere + ".nvme_path"),
                           zwhere + ".nvme_path");
      }
    } else {
      std::fprintf(stderr, "zerotune train: warning: %s: ignoring zero_optimization.%s\n",
                   path.c_str(), zkey.c_str());
    }
  }
}

// Applies a DeepSpeed JSON config: the keys we honour override the flags unless "auto", as typed
// values checked by their options' rules; every other key is named in a warning.
void apply_ds_config(const std::string& path, TrainOptions& o) {
  std::ifstream in(path, std::ios::binary);
  ZT_CHECK(in, path, ": cannot open (--ds-config)");
  std::ostringstream text;
  text << in.rdbuf();
  const json::Value root = json::parse(text.str(), path);
  ZT_CHECK(root.is_object(), path, ": expected a JSON object");
  int64_t train_batch_size = 0;
  for (const auto& [key, value] : root.members()) {
    const std::string where = path + ": \"" + key + "\"";
    if (key == "train_micro_batch_size_per_gpu") {
      if (!is_auto(value)) opt::assign_option(o, o.batch_size, value.as_int64(where), where);
    } else if (key == "gradient_accumulation_steps") {
      if (!is_auto(value)) opt::assign_option(o, o.grad_accum, value.as_int64(where), where);
    } else if (key == "gradient_clipping") {
      if (!is_auto(value)) opt::assign_option(o, o.grad_clip, value.as_double(where), where);
    } else if (key == "bf16" || key == "fp16") {
      const json::Value* enabled = value.find("enabled");
      if (enabled && !is_auto(*enabled) && enabled->as_bool(where + ".enabled")) {
        std::fprintf(stderr,
                     "zerotune train: warning: %s %s.enabled: the CPU backend computes in fp32\n",
                     path.c_str(), key.c_str());
      }
    } else if (key == "zero_optimization") {
      apply_zero_optimization(value, path, where, o);
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
  Args args("zerotune train", kSummary);
  TrainCommandFlags flags;
  if (!opt::parse_options(args, flags, argc, argv, first)) return 0;
  TrainOptions& o = flags.job;
  fill_dependent_defaults(o);
  if (args.has("--ds-config")) apply_ds_config(flags.ds_config, o);
  validate_train_options(o);
  if (flags.print_options) {
    std::fputs(opt::format_options(flags).c_str(), stdout);
    return 0;
  }
  if (o.world_size > 1 && read_launch_environment().launcher != Launcher::mpi) {
    relaunch_with_mpirun(o.world_size, argc, argv, "zerotune train");
  }
  // Object storage: the model is fetched into the cache, and an s3:// output is written to a
  // local folder first and uploaded from there.
  o.base_model_name = o.model_dir;
  if (!o.model_dir.empty()) o.model_dir = storage::resolve_model_source(o.model_dir);
  if (!o.adapter_dir.empty()) o.adapter_dir = storage::resolve_adapter_source(o.adapter_dir);
  std::unique_ptr<storage::CheckpointPublisher> publisher;
  if (storage::is_s3_url(o.output_dir)) {
    publisher = std::make_unique<storage::CheckpointPublisher>(o.output_dir, flags.local_dir);
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
