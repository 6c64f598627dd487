#include "train/trainer.h"

#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>

#include "core/device_memory.h"
#include "core/files.h"
#include "core/timer.h"
#include "distributed/launch.h"
#include "eval/eval_items.h"
#include "io/hf_model.h"
#include "io/storage/checkpoint_publisher.h"
#include "model/resize.h"
#include "report/html_report.h"
#include "report/run_settings.h"
#include "train/checkpoints.h"
#include "train/evaluation.h"
#include "train/inputs.h"
#include "train/lora_training.h"
#include "train/lr_schedule.h"
#include "train/run_folder.h"
#include "train/train_step.h"

namespace zerotune {
namespace {

// The engine that holds this rank's part of parameters, gradients and AdamW state, and the model
// computing with them.
struct Engine {
  std::unique_ptr<ZeroEngine> zero;
  LoraSetup lora_setup;              // with --lora
  std::unique_ptr<LoraLayers> lora;  // with --lora
  std::unique_ptr<LlamaModel> model;
};

// --device and --mx: a GPU computes in bf16 (f32 with --mx no); the CPU in f32.
Placement placement_for(const TrainOptions& o, const LaunchEnvironment& launch) {
  const bool cuda = o.device == ComputeDevice::cuda ||
                    (o.device == ComputeDevice::automatic && cuda_device_count() > 0);
  if (!cuda) {
    if (o.mixed_precision != MixedPrecision::no && launch.first_process) {
      std::fprintf(stderr, "zerotune train: warning: --mx %s: the CPU backend computes in fp32\n",
                   name_of(o.mixed_precision));
    }
    return Placement{};
  }
  ZT_CHECK(cuda_device_count() > 0, "zerotune train: --device cuda but no GPU is visible");
  ZT_CHECK(o.mixed_precision != MixedPrecision::fp16,
           "zerotune train: --mx fp16 is not supported on the GPU; use bf16 (or no for f32)");
  return Placement{Device::cuda(gpu_for_rank(launch, cuda_device_count())),
                   o.mixed_precision == MixedPrecision::no ? DType::f32 : DType::bf16};
}

RankGroup connect(const TrainOptions& o, Placement* placement) {
  const LaunchEnvironment launch = read_launch_environment();
  *placement = placement_for(o, launch);
  CommOptions comm_options;
  comm_options.timeout_s = o.collective_timeout_s;
  RankGroup ranks = connect_ranks(comm_options, launch, placement->device);
  ZT_CHECK(o.world_size == 1 || o.world_size == ranks.world(), "zerotune train: -nd ", o.world_size,
           " but the launcher started ", ranks.world(), " processes");
  return ranks;
}

ZeroOptions zero_options(const TrainOptions& o, const Placement& placement) {
  ZeroOptions zero;
  zero.stage = o.zero_stage;
  zero.param_persistence_threshold = o.param_persistence_threshold;
  zero.optimizer_placement =
      o.offload_optimizer == OptimizerOffload::nvme  ? OptimizerPlacement::nvme
      : o.offload_optimizer == OptimizerOffload::cpu ? OptimizerPlacement::cpu
                                                     : OptimizerPlacement::device;
  zero.nvme_path = o.nvme_path;
  zero.compute = placement;
  zero.adam.weight_decay = o.weight_decay;
  // Test hook (tests/distributed/check_zero.py): ZEROTUNE_ZERO_PATHS=separate-master,host-thread
  // runs the GPU's engine paths on CPU ranks, so that they are checked where no GPU is.
  if (const char* paths = std::getenv("ZEROTUNE_ZERO_PATHS")) {
    const std::string p = paths;
    zero.separate_master = p.find("separate-master") != std::string::npos;
    zero.host_thread_on_cpu = p.find("host-thread") != std::string::npos;
  }
  return zero;
}

// Loads the folder's weights one group at a time into the engine, growing the vocabulary for
// added tokens on the way: no rank ever holds more than one full group besides its shards.
void load_weights_sharded(const std::string& dir, const LlamaParams& source_layout,
                          const LlamaConfig& config, ZeroEngine& engine, uint64_t seed) {
  LlamaParams source = LlamaParams(source_layout.config(), Storage::none);
  const LlamaParams target(config, Storage::none);
  Rng rng(seed);  // resize_vocab's single stream: the embedding's new rows, then the head's
  for (size_t g = 0; g < source.groups().size(); ++g) {
    ParamGroup& group = source.groups()[g];
    group.data = Buffer(DType::f32, Shape{source.group_numel(g)});
    load_hf_weights(dir, source, static_cast<int64_t>(g));
    if (target.group_numel(g) != source.group_numel(g)) {
      const ParamView& from = group.views.at(0);
      const ParamView& to = target.groups()[g].views.at(0);
      Buffer grown(DType::f32, Shape{target.group_numel(g)});
      resize_vocab_rows(from.name.c_str(), group.view(from),
                        grown.view().flat(0, to.shape.numel()).reshape(to.shape), rng);
      engine.set_group_params(g, grown);
    } else {
      engine.set_group_params(g, group.data);
    }
    group.data = Buffer();
  }
}

Engine build_engine(const TrainOptions& o, TrainInputs& in, const Placement& placement,
                    Communicator& comm) {
  const ZeroOptions zero = zero_options(o, placement);
  Engine e;
  LlamaParams layout(in.config, Storage::none);
  if (o.lora) {  // adapter groups after the base's, which freeze (model/lora.h)
    e.lora_setup = read_lora_setup(o, in.config, o.base_model_name);
    e.lora_setup.first_group = add_lora_groups(layout, e.lora_setup.config);
  }
  e.zero = std::make_unique<ZeroEngine>(layout, comm, zero);
  load_weights_sharded(o.model_dir, in.folder.params, in.config, *e.zero, o.seed);
  const int64_t source_vocab = in.folder.params.config().vocab_size;
  in.folder.params = LlamaParams();
  if (o.lora) load_lora_values(*e.zero, layout, e.lora_setup, o.seed);
  e.model = std::make_unique<LlamaModel>(
      layout.like(Storage::none), o.grad_ckpt ? Checkpointing::per_layer : Checkpointing::off,
      GradStorage::external, zero.compute);
  if (o.lora) {
    e.lora = std::make_unique<LoraLayers>(in.config, e.lora_setup.config, e.lora_setup.first_group,
                                          o.seed);
    e.model->set_lora(e.lora.get());
    if (comm.rank() == 0) report_lora(e.lora_setup, layout, source_vocab);
  }
  e.zero->attach(*e.model);
  if (comm.rank() == 0) {
    std::fprintf(stderr, "zerotune train: computing on %s in %s\n", placement.device.name().c_str(),
                 dtype_name(placement.dtype));
    if (comm.size() > 1) {
      std::fprintf(stderr, "zerotune train: %d ranks over %s, ZeRO stage %d%s\n", comm.size(),
                   comm.backend(), e.zero->stage(),
                   o.offload_optimizer == OptimizerOffload::none
                       ? ""
                       : str(", optimizer on ", name_of(o.offload_optimizer)).c_str());
    }
  }
  return e;
}

// The settings that change a run's numbers. OpenMP's thread count is among them: reductions
// (norm-weight gradients) sum per-thread partials. The global batch, not its split over ranks:
// a run may resume on another number of ranks.
LoopState expected_loop(const TrainOptions& o, const StepPlan& plan) {
  LoopState loop;
  loop.total_steps = plan.total_steps;
  loop.seed = o.seed;
  loop.fingerprint =
      str("global_batch=", plan.global_batch, " epochs=", o.num_epochs, " ctx=", o.ctx_len,
          " lr=", o.lr, " warmup=", o.warmup_steps, " max_steps=", o.max_steps,
          " wd=", o.weight_decay, " clip=", o.grad_clip, " shuffle=", o.shuffle,
          " layout=", static_cast<int>(o.layout), " pad=", static_cast<int>(o.pad_mode),
          " eval_bs=", o.eval_batch_size, " threads=", omp_get_max_threads(),
          o.lora ? str(" lora=", o.lora_config_path, " adapter=", o.adapter_dir) : "");
  // Keep-best by accuracy ranks other numbers than a run that kept by perplexity.
  if (o.checkpoint_metric == CheckpointMetric::accuracy) loop.fingerprint += " ranked_by=accuracy";
  return loop;
}

LoopState open_run(const TrainOptions& o, const StepPlan& plan, RunFolder& run, ZeroEngine& engine,
                   CheckpointPolicy& checkpoints) {
  const LoopState expected = expected_loop(o, plan);
  if (!o.resume) return expected;
  LoopState loop = run.resume(expected, engine, o.publisher);
  checkpoints.restore(loop.checkpoints);
  if (engine.comm().rank() == 0) {
    std::fprintf(stderr, "zerotune train: resuming after %lld epochs, step %lld\n",
                 static_cast<long long>(loop.epochs_done),
                 static_cast<long long>(loop.global_step));
  }
  return loop;
}

RankBatching rank_batching(const TrainOptions& o, const TrainInputs& in, const RankGroup& ranks) {
  return RankBatching{ranks.rank(), ranks.world(), in.tokenizer.pad_id(),
                      o.ctx_len,    o.layout,      o.pad_mode};
}

// The loss evaluation and, with --eval-accuracy N, the accuracy of greedy answers to the first N
// test rows (read and checked now, before training), ranked as --checkpoint-metric says. The
// decoding batch is capped at 16: its key/value cache grows with it.
std::unique_ptr<Evaluation> make_evaluation(const TrainOptions& o, const TrainInputs& in,
                                            const RankBatching& batching, Engine& engine,
                                            const Placement& placement) {
  Communicator& comm = engine.zero->comm();
  std::vector<std::unique_ptr<Evaluation>> parts;
  parts.push_back(std::make_unique<LossEvaluation>(in.test, batching, o.eval_batch_size, comm));
  if (o.eval_accuracy > 0) {
    EvalSettings settings;
    settings.max_new_tokens = o.eval_max_new_tokens;
    settings.batch_size = std::min<int64_t>(o.eval_batch_size, 16);
    parts.push_back(std::make_unique<AccuracyEvaluation>(
        read_seed_items(o.test_path, o.eval_accuracy), in.tokenizer, *engine.zero,
        engine.model->params(), placement, settings,
        o.lora ? std::optional<LoraConfig>(engine.lora_setup.config) : std::nullopt));
  }
  const size_t ranked_by = o.checkpoint_metric == CheckpointMetric::accuracy ? 1 : 0;
  return std::make_unique<EvaluationSet>(std::move(parts), ranked_by);
}

DType checkpoint_dtype(const TrainOptions& o, const LlamaConfig& config) {
  if (o.save_dtype_given) return o.save_dtype;
  const std::string& t = config.torch_dtype;
  return t == "bfloat16" ? DType::bf16 : t == "float16" ? DType::f16 : DType::f32;
}

}  // namespace

namespace {

int64_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

// One step's metrics row (rank 0): the bytes it handed to collectives beside the numbers.
json::Value train_row(const StepResult& r, double lr, int64_t step, int64_t epoch, double seconds,
                      const CommVolume& before, const Communicator& comm) {
  json::Value row = json::Value::object();
  row.set("type", "train");
  row.set("step", step);
  row.set("epoch", epoch);
  row.set("loss", r.loss);
  row.set("lr", lr);
  row.set("grad_norm", r.grad_norm);
  row.set("tokens", r.tokens);
  row.set("tokens_per_s", static_cast<double>(r.tokens) / seconds);
  row.set("step_time_s", seconds);
  if (comm.size() > 1) {
    // ZeRO-3's theory: ~3x the parameter bytes per step.
    const CommVolume& v = comm.volume();
    row.set("comm_all_gather_bytes", v.all_gather - before.all_gather);
    row.set("comm_reduce_scatter_bytes", v.reduce_scatter - before.reduce_scatter);
    row.set("comm_all_reduce_bytes", v.all_reduce - before.all_reduce);
  }
  return row;
}

// Everything one epoch of training needs, and nothing else.
struct EpochContext {
  const TrainOptions& o;
  const TrainInputs& in;
  const RankBatching& batching;
  Engine& engine;
  RunFolder& run;
  LoopState& loop;
  bool lead;
  // The previous epoch's accuracy, shown in the progress line; NaN before one.
  double last_accuracy;
};

// Trains one epoch (or up to the step limit); returns its wall time.
double train_epoch(const EpochContext& c, int64_t epoch) {
  const TrainOptions& o = c.o;
  const StepPlan& plan = c.in.plan;
  const std::vector<int64_t> order = epoch_order(c.in.train.rows.size(), o.shuffle, o.seed, epoch);
  const int64_t n_train = static_cast<int64_t>(c.in.train.rows.size());
  const bool tty = isatty(2);
  Communicator& comm = c.engine.zero->comm();
  Timer epoch_timer;
  for (int64_t s = 0; s < plan.steps_per_epoch && c.loop.global_step < plan.total_steps; ++s) {
    Timer step_timer;
    const CommVolume volume_before = comm.volume();
    const int64_t first = s * plan.global_batch;
    const std::vector<TokenBatch> micro = c.batching.micro_batches(
        c.in.train, order, first, std::min(n_train, first + plan.global_batch) - first,
        o.batch_size, o.as_test ? 1 : 0);
    const double lr =
        o.lr * linear_warmup_decay(c.loop.global_step, o.warmup_steps, plan.total_steps);
    const StepResult r = train_step(*c.engine.model, *c.engine.zero, micro,
                                    {lr, o.grad_clip, c.loop.global_step + 1});
    ++c.loop.global_step;
    const double seconds = step_timer.seconds();
    if (c.lead) {
      c.run.write_metrics(
          train_row(r, lr, c.loop.global_step, epoch, seconds, volume_before, comm));
      const double eta = epoch_timer.seconds() / static_cast<double>(s + 1) *
                         static_cast<double>(plan.total_steps - c.loop.global_step);
      char accuracy[32] = "";  // after the first evaluation with --eval-accuracy
      if (!std::isnan(c.last_accuracy)) {
        std::snprintf(accuracy, sizeof(accuracy), " accuracy %.4f", c.last_accuracy);
      }
      std::fprintf(stderr,
                   "%sstep %lld/%lld epoch %lld loss %.4f lr %.3g grad_norm %.3f%s "
                   "%.0f tok/s ETA %s%s",
                   tty ? "\r" : "", static_cast<long long>(c.loop.global_step),
                   static_cast<long long>(plan.total_steps), static_cast<long long>(epoch), r.loss,
                   lr, r.grad_norm, accuracy, static_cast<double>(r.tokens) / seconds,
                   clock_text(eta).c_str(), tty ? "   " : "\n");
    }
    if (o.as_test) break;
  }
  if (tty && c.lead) std::fputc('\n', stderr);
  return epoch_timer.seconds();
}

void write_eval_row(RunFolder& run, int64_t epoch, const EvalReport& report, double train_time,
                    double eval_time) {
  json::Value row = json::Value::object();
  row.set("type", "eval");
  row.set("epoch", epoch);
  for (const auto& [name, value] : report.fields) {
    row.set(name, std::isfinite(value) ? json::Value(value) : json::Value());
  }
  row.set("train_time_s", train_time);
  row.set("eval_time_s", eval_time);
  run.write_metrics(row);
  std::fprintf(stderr, "epoch %lld: %s\n", static_cast<long long>(epoch), report.summary.c_str());
}

// Why the run stops after `epoch`, or nothing when it goes on.
std::optional<std::string> stop_reason(const TrainOptions& o, int64_t epoch,
                                       const EvalReport& report) {
  if (o.as_test) return "--as-test";
  const double perplexity = report.field("perplexity", report.rank_metric);
  if (o.stop_perplexity > 0.0 && perplexity < o.stop_perplexity) {
    return str("perplexity ", perplexity, " below --stop-perplexity ", o.stop_perplexity);
  }
  if (o.stop_after_epochs > 0 && epoch + 1 >= o.stop_after_epochs && epoch + 1 < o.num_epochs) {
    return str("--stop-after-epochs ", o.stop_after_epochs, " (continue with --resume)");
  }
  return std::nullopt;
}

// OUTPUT_DIR/memory.json, beside metrics.jsonl: what each rank's engine holds and its peak
// resident set, for sizing runs. Collective.
void write_memory_report(const ZeroEngine& engine, Communicator& comm, const RunFolder& run,
                         const Placement& placement) {
  const ZeroMemory mem = engine.memory();
  const std::vector<std::pair<const char*, int64_t>> mine = {
      {"params_bytes", mem.params},        {"master_bytes", mem.master},
      {"grads_bytes", mem.grads},          {"host_grads_bytes", mem.host_grads},
      {"optimizer_bytes", mem.optimizer},  {"slot_bytes", mem.slots},
      {"staging_bytes", mem.staging},      {"held_bytes", mem.resident()},
      {"peak_rss_bytes", peak_rss_bytes()}};
  const size_t k = mine.size(), world = static_cast<size_t>(comm.size());
  std::vector<int64_t> values, all(world * k);
  for (const auto& [name, value] : mine) values.push_back(value);
  std::vector<int64_t> counts(world, static_cast<int64_t>(k));
  comm.gather_to_root(values.data(), counts.data(), all.data(), DType::i64);
  if (comm.rank() != 0) return;
  json::Value row = json::Value::object();
  row.set("world_size", comm.size());
  row.set("zero_stage", engine.stage());
  // On a GPU, master/optimizer/host_grads/staging are host memory with the optimizer offloaded.
  row.set("device", placement.device.name());
  for (size_t i = 0; i < k; ++i) {
    json::Value per_rank = json::Value::array();
    for (size_t r = 0; r < world; ++r) per_rank.push_back(all[r * k + i]);
    row.set(mine[i].first, std::move(per_rank));
  }
  write_file_atomically(run.path("memory.json"), row.dump(2) + "\n");
}

// OUTPUT_DIR/report.html and the settings.json it reads, uploaded beside metrics.jsonl. Rank 0.
void publish_report(const TrainOptions& o, const RunFolder& run) {
  if (!report::write_run_report(run.path(""), report::option_settings(o)) || !o.publisher) return;
  for (const char* file : {"settings.json", "report.html"}) o.publisher->publish_file(file);
}

void log_done(const TrainOptions& o, const CheckpointPolicy& checkpoints, const LoopState& loop,
              const std::string& reason, double seconds) {
  if (o.as_test) {
    std::fprintf(stderr, "zerotune train: --as-test done in %s; checkpoint %s/%s\n",
                 clock_text(seconds).c_str(), o.output_dir.c_str(),
                 CheckpointPolicy::folder_name(loop.epochs_done - 1).c_str());
  } else if (!checkpoints.kept().empty()) {
    const SavedCheckpoint& best = checkpoints.kept().best();
    std::fprintf(stderr, "zerotune train: done (%s) in %s; best checkpoint %s/%s, %s %.4f\n",
                 reason.c_str(), clock_text(seconds).c_str(), o.output_dir.c_str(),
                 CheckpointPolicy::folder_name(best.epoch).c_str(), name_of(o.checkpoint_metric),
                 best.metric);
  }
}

}  // namespace

int run_training(const TrainOptions& o) {
  validate_train_options(o);
  Timer total_timer;
  Placement placement;
  const RankGroup ranks = connect(o, &placement);
  Communicator& comm = ranks.comm();
  const bool lead = ranks.lead();
  if (lead) refuse_other_runs(o.output_dir, o.resume);
  TrainInputs in = load_inputs(o, ranks.world(), lead);
  Engine engine = build_engine(o, in, placement, comm);
  RunFolder run(o.output_dir, o.resume, comm);
  const RankBatching batching = rank_batching(o, in, ranks);
  const std::unique_ptr<Evaluation> evaluation =
      make_evaluation(o, in, batching, engine, placement);
  CheckpointPolicy checkpoints(o.output_dir, o.keep_checkpoints, evaluation->order(), o.publisher,
                               lead);
  std::unique_ptr<CheckpointWriter> writer;
  if (o.lora) {  // a PEFT adapter folder per epoch instead of the whole model
    writer = std::make_unique<LoraAdapterWriter>(*engine.zero, engine.model->params(),
                                                 engine.lora_setup.config, in.tokenizer.files(),
                                                 checkpoint_dtype(o, in.config));
  } else {
    writer =
        std::make_unique<HfModelWriter>(*engine.zero, engine.model->params(), in.folder.raw_config,
                                        in.tokenizer.files(), checkpoint_dtype(o, in.config));
  }
  LoopState loop = open_run(o, in.plan, run, *engine.zero, checkpoints);
  std::string reason = "all epochs done";
  double last_accuracy = std::nan("");
  for (int64_t epoch = loop.epochs_done; epoch < o.num_epochs; ++epoch) {
    if (loop.global_step >= in.plan.total_steps && !o.as_test) break;
    const double train_time =
        train_epoch({o, in, batching, engine, run, loop, lead, last_accuracy}, epoch);
    Timer eval_timer;
    // --as-test checks the training and checkpoint paths only: no evaluation is run or reported.
    const EvalReport report =
        o.as_test ? EvalReport{} : evaluation->run(*engine.model, loop.global_step);
    if (!o.as_test && lead) write_eval_row(run, epoch, report, train_time, eval_timer.seconds());
    last_accuracy = report.field("accuracy", std::nan(""));
    checkpoints.save(epoch, report.rank_metric, *writer);
    loop.epochs_done = epoch + 1;
    loop.checkpoints = checkpoints.kept().kept();
    if (!o.as_test) run.save_state(*engine.zero, loop);
    if (o.publisher && lead) o.publisher->publish_file("metrics.jsonl");
    if (lead) publish_report(o, run);
    if (const std::optional<std::string> why = stop_reason(o, epoch, report)) {
      reason = *why;
      break;
    }
  }
  write_memory_report(*engine.zero, comm, run, placement);
  if (lead) publish_report(o, run);  // again, now with memory.json
  if (lead) log_done(o, checkpoints, loop, reason, total_timer.seconds());
  comm.barrier();
  // After the last collective, so that no rank waits (and times out) on the uploads. Throws,
  // naming each object, if one failed.
  if (o.publisher && lead) o.publisher->finish();
  return 0;
}

}  // namespace zerotune
