#include "train/trainer.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include <sys/resource.h>

#include "core/device_memory.h"
#include "core/files.h"
#include "core/json.h"
#include "core/timer.h"
#include "data/text_jsonl.h"
#include "data/tokenizer.h"
#include "distributed/zero/zero_engine.h"
#include "io/hf_checkpoint.h"
#include "io/hf_model.h"
#include "io/storage/checkpoint_publisher.h"
#include "model/llama.h"
#include "model/resize.h"
#include "train/lr_schedule.h"
#include "train/train_state.h"

namespace zerotune {

namespace fs = std::filesystem;

namespace {

struct Dataset {
  std::vector<std::vector<int32_t>> examples;  // <s> ... </s>, truncated to ctx-len
  int64_t truncated = 0;
};

Dataset tokenize_file(const Tokenizer& tok, const std::string& path, int64_t ctx_len) {
  Dataset d;
  for (const std::string& text : read_text_jsonl(path)) {
    bool truncated = false;
    d.examples.push_back(tok.encode_example(text, ctx_len, &truncated));
    d.truncated += truncated;
  }
  return d;
}

std::vector<std::vector<int32_t>> pick(const Dataset& d, const std::vector<int64_t>& order,
                                       int64_t begin, int64_t end) {
  std::vector<std::vector<int32_t>> out;
  for (int64_t i = begin; i < end; ++i) {
    out.push_back(d.examples[static_cast<size_t>(order[static_cast<size_t>(i)])]);
  }
  return out;
}

std::string format_seconds(double s) {
  char buf[32];
  const int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) {
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm", static_cast<long long>(t / 3600),
                  static_cast<long long>(t % 3600 / 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", static_cast<long long>(t / 60),
                  static_cast<long long>(t % 60));
  }
  return buf;
}

class MetricsLog {
 public:
  MetricsLog(const std::string& path, bool append)
      : out_(path, append ? std::ios::app : std::ios::trunc) {
    ZT_CHECK(out_, path, ": cannot open for writing");
  }
  void write(const json::Value& row) {
    out_ << row.dump() << "\n";
    out_.flush();
  }

 private:
  std::ofstream out_;
};

// The run's output folder must not hold another run's results unless resuming them.
void check_output_dir(const TrainOptions& o) {
  if (!fs::exists(o.output_dir)) return;
  ZT_CHECK(fs::is_directory(o.output_dir), o.output_dir, ": exists and is not a directory");
  if (o.resume) return;
  for (const auto& entry : fs::directory_iterator(o.output_dir)) {
    const std::string name = entry.path().filename().string();
    ZT_CHECK(name.rfind("epoch-", 0) != 0 && name != "train_state", o.output_dir,
             " already holds a run (", name,
             "); pass --resume to continue it, or choose another --output_dir");
  }
}

// The settings that change a run's numbers. OpenMP's thread count is among them: reductions
// (norm-weight gradients) sum per-thread partials.
// The global batch, not its split over ranks: a run may resume on another number of ranks.
std::string run_fingerprint(const TrainOptions& o, int world) {
  return str("global_batch=", o.batch_size * o.grad_accum * world, " epochs=", o.num_epochs,
             " ctx=", o.ctx_len, " lr=", o.lr, " warmup=", o.warmup_steps,
             " max_steps=", o.max_steps, " wd=", o.weight_decay, " clip=", o.grad_clip,
             " shuffle=", o.shuffle, " layout=", static_cast<int>(o.layout),
             " pad=", static_cast<int>(o.pad_mode), " eval_bs=", o.eval_batch_size,
             " threads=", omp_get_max_threads());
}

// Temporary folders of saves that a crash interrupted (`<name>.tmp-<pid>`) are incomplete by
// construction; `.old-<pid>` folders are left alone, as they may be the only complete copy.
void remove_interrupted_saves(const std::string& output_dir) {
  if (!fs::exists(output_dir)) return;
  for (const auto& entry : fs::directory_iterator(output_dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.find(".tmp-") != std::string::npos) {
      std::fprintf(stderr, "zerotune train: removing %s, left by an interrupted save\n",
                   entry.path().c_str());
      fs::remove_all(entry.path());
    }
  }
}

// On resume, drops metric rows written after the saved state (a crash mid-epoch), so that the
// replayed steps are not listed twice.
void trim_metrics(const std::string& path, const LoopState& loop) {
  std::ifstream in(path);
  if (!in) return;
  std::string kept, line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    const json::Value row = json::parse_line(line, path, line_no);
    const json::Value* step = row.find("step");
    const json::Value* epoch = row.find("epoch");
    const bool keep = step ? step->as_int64(path + ": step") <= loop.global_step
                           : epoch && epoch->as_int64(path + ": epoch") <= loop.epochs_done;
    if (keep) kept += line + "\n";
  }
  in.close();
  write_file_atomically(path, kept);
}

// --device and --mx: a GPU computes in bf16 (f32 with --mx no); the CPU in f32.
Placement placement_for(const TrainOptions& o, bool lead) {
  const bool cuda = o.device == ComputeDevice::cuda ||
                    (o.device == ComputeDevice::automatic && cuda_device_count() > 0);
  if (!cuda) {
    if (o.mixed_precision != MixedPrecision::no && lead) {
      std::fprintf(stderr, "zerotune train: warning: --mx %s: the CPU backend computes in fp32\n",
                   name_of(o.mixed_precision));
    }
    return Placement{};
  }
  ZT_CHECK(cuda_device_count() > 0, "zerotune train: --device cuda but no GPU is visible");
  ZT_CHECK(o.mixed_precision != MixedPrecision::fp16,
           "zerotune train: --mx fp16 is not supported on the GPU; use bf16 (or no for f32)");
  // This process's index among the ranks of its machine, as the launchers name it (torchrun,
  // Open MPI, Slurm, MPICH/Hydra, MVAPICH): one GPU per rank.
  int local_rank = 0;
  const char* from = nullptr;
  for (const char* var : {"LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID",
                          "MPI_LOCALRANKID", "PMI_LOCAL_RANK", "MV2_COMM_WORLD_LOCAL_RANK"}) {
    if (const char* v = std::getenv(var)) {
      local_rank = std::atoi(v);
      from = var;
      break;
    }
  }
  // One visible GPU: the launcher gave each rank its own (CUDA_VISIBLE_DEVICES per rank).
  const int gpus = cuda_device_count();
  ZT_CHECK(gpus == 1 || local_rank < gpus, "zerotune train: this rank is number ", local_rank,
           " on its machine (", from ? from : "", ") but only ", gpus,
           " GPUs are visible: start at most one rank per GPU");
  return Placement{Device::cuda(gpus == 1 ? 0 : local_rank),
                   o.mixed_precision == MixedPrecision::no ? DType::f32 : DType::bf16};
}

// Rank r's part [begin, end) of the n items starting at `first`: contiguous, as even as possible.
std::pair<int64_t, int64_t> rank_slice(int64_t first, int64_t n, int rank, int world) {
  const int64_t per = (n + world - 1) / world;
  const int64_t begin = std::min(n, per * rank), end = std::min(n, per * (rank + 1));
  return {first + begin, first + end};
}

// A micro-batch with no counted target: ranks whose share of a short final batch is empty still
// take part in every collective.
TokenBatch empty_micro_batch(int32_t pad_id) {
  return TokenBatch::from_rows({{pad_id, pad_id}}, {{kIgnoreIndex, kIgnoreIndex}});
}

int64_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
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

double finite_or_fail(double value, const char* what, int64_t step) {
  ZT_CHECK(std::isfinite(value), "zerotune train: ", what, " is ", value, " at step ", step,
           "; training diverged (try a lower --lr or --grad-clip)");
  return value;
}

}  // namespace

int run_training(const TrainOptions& o) {
  validate_train_options(o);
  CommOptions comm_options;
  comm_options.timeout_s = o.collective_timeout_s;
  // The launcher's communicator: MPI under mpirun/srun, else one rank. Ranks on GPUs talk over
  // NCCL, bootstrapped over MPI or, under torchrun-style launchers (RANK, WORLD_SIZE, MASTER_ADDR,
  // MASTER_PORT) without MPI, over TCP (a launch of one such rank too, which checks the setup).
  const std::unique_ptr<Communicator> launcher = make_communicator(comm_options);
  const bool env_launch = !launched_by_mpi() && launched_by_env();
  const int env_world = env_launch ? std::atoi(std::getenv("WORLD_SIZE")) : 1;
  const int env_rank = env_launch ? std::atoi(std::getenv("RANK")) : 0;
  const bool first = launched_by_mpi() ? launcher->rank() == 0 : env_rank == 0;
  const Placement placement = placement_for(o, first);
  std::unique_ptr<Communicator> nccl;
  if (!placement.device.is_cpu() && (launcher->size() > 1 || env_launch)) {
    nccl = make_nccl_communicator(comm_options, placement.device.index,
                                  launched_by_mpi() ? launcher.get() : nullptr);
  } else {
    ZT_CHECK(env_world <= 1, "zerotune train: RANK/WORLD_SIZE describe ", env_world,
             " ranks: such a launch runs over NCCL and needs GPUs (--device cuda on "
             "build-cuda/zerotune); start CPU ranks with mpirun or -nd");
  }
  Communicator* const comm = nccl ? nccl.get() : launcher.get();
  const int rank = comm->rank(), world = comm->size();
  const bool lead = rank == 0;  // prints and writes the shared files
  ZT_CHECK(o.world_size == 1 || o.world_size == world, "zerotune train: -nd ", o.world_size,
           " but the launcher started ", world, " processes");
  if (lead) check_output_dir(o);
  const bool tty = isatty(2);
  Timer total_timer;
  auto log = [&](const char* format, auto... values) {
    if (lead) std::fprintf(stderr, format, values...);
  };

  // Model layout, tokenizer, vocabulary (weights come later, group by group).
  LoadedHfFolder folder = read_hf_folder(o.model_dir, HfWeights::skip);
  ZT_CHECK(folder.tokenizer.has_value(), o.model_dir,
           ": no tokenizer.model; the fine-tuning job tokenises with the model's tokenizer");
  Tokenizer tokenizer = Tokenizer::from_files(*folder.tokenizer);
  if (!o.special_token_path.empty()) {
    tokenizer.add_special_tokens(read_special_tokens_json(o.special_token_path));
  }
  LlamaConfig config = folder.config;
  if (tokenizer.vocab_size() > config.vocab_size) {
    log("zerotune train: growing the vocabulary %lld -> %lld for added tokens\n",
        static_cast<long long>(config.vocab_size), static_cast<long long>(tokenizer.vocab_size()));
    config.vocab_size = tokenizer.vocab_size();
    config.validate("zerotune train");
  }
  ZT_CHECK(o.ctx_len <= config.max_position_embeddings, "zerotune train: --ctx-len ", o.ctx_len,
           " exceeds the model's max_position_embeddings ", config.max_position_embeddings);

  // Data: every rank tokenises the files (cheap next to training) and takes its slices.
  const Dataset train = tokenize_file(tokenizer, o.train_path, o.ctx_len);
  const Dataset test = tokenize_file(tokenizer, o.test_path, o.ctx_len);
  const int32_t pad_id = tokenizer.pad_id();
  const int64_t n_train = static_cast<int64_t>(train.examples.size());
  const int64_t n_test = static_cast<int64_t>(test.examples.size());
  const int64_t global_batch = o.batch_size * o.grad_accum * world;
  const int64_t steps_per_epoch = (n_train + global_batch - 1) / global_batch;
  int64_t total_steps = steps_per_epoch * o.num_epochs;
  if (o.max_steps > 0) total_steps = std::min(total_steps, o.max_steps);
  log("zerotune train: %s, %lld train / %lld test examples (%lld / %lld truncated to "
      "%lld tokens), %lld steps of %lld examples\n",
      config.summary().c_str(), static_cast<long long>(n_train), static_cast<long long>(n_test),
      static_cast<long long>(train.truncated), static_cast<long long>(test.truncated),
      static_cast<long long>(o.ctx_len), static_cast<long long>(total_steps),
      static_cast<long long>(global_batch));

  // The engine holds this rank's part of parameters, gradients and AdamW state.
  ZeroOptions zero;
  zero.stage = o.zero_stage;
  zero.param_persistence_threshold = o.param_persistence_threshold;
  zero.optimizer_placement =
      o.offload_optimizer == OptimizerOffload::nvme  ? OptimizerPlacement::nvme
      : o.offload_optimizer == OptimizerOffload::cpu ? OptimizerPlacement::cpu
                                                     : OptimizerPlacement::device;
  zero.nvme_path = o.nvme_path;
  zero.compute = placement;
  log("zerotune train: computing on %s in %s\n", zero.compute.device.name().c_str(),
      dtype_name(zero.compute.dtype));
  zero.adam.weight_decay = o.weight_decay;
  // ZEROTUNE_ZERO_PATHS=separate-master,host-thread: the GPU's engine paths on CPU ranks (tests).
  if (const char* paths = std::getenv("ZEROTUNE_ZERO_PATHS")) {
    const std::string p = paths;
    zero.separate_master = p.find("separate-master") != std::string::npos;
    zero.host_thread_on_cpu = p.find("host-thread") != std::string::npos;
  }
  const LlamaParams layout(config, Storage::none);
  ZeroEngine engine(layout, *comm, zero);
  load_weights_sharded(o.model_dir, folder.params, config, engine, o.seed);
  folder.params = LlamaParams();
  LlamaModel model(LlamaParams(config, Storage::none),
                   o.grad_ckpt ? Checkpointing::per_layer : Checkpointing::off,
                   GradStorage::external, zero.compute);
  engine.attach(model);
  if (world > 1) {
    log("zerotune train: %d ranks over %s, ZeRO stage %d%s\n", world, comm->backend(),
        engine.stage(),
        o.offload_optimizer == OptimizerOffload::none
            ? ""
            : str(", optimizer on ", name_of(o.offload_optimizer)).c_str());
  }

  const std::string state_dir = (fs::path(o.output_dir) / "train_state").string();
  LoopState loop;
  loop.total_steps = total_steps;
  loop.seed = o.seed;
  loop.fingerprint = run_fingerprint(o, world);
  const std::string metrics_path = (fs::path(o.output_dir) / "metrics.jsonl").string();
  if (lead) {
    fs::create_directories(o.output_dir);
    remove_interrupted_saves(o.output_dir);
  }
  comm->barrier();
  if (o.resume) {
    int saved_world = 1;
    loop = load_loop_state(state_dir, &saved_world);
    ZT_CHECK(loop.total_steps == total_steps && loop.seed == o.seed &&
                 loop.fingerprint == run_fingerprint(o, world),
             state_dir, ": the state is for a run with seed ", loop.seed, " and {",
             loop.fingerprint, "}, not seed ", o.seed, " and {", run_fingerprint(o, world),
             "}; resume with the same flags, global batch and OMP_NUM_THREADS");
    engine.load_state(state_dir, saved_world);
    engine.set_optimizer_steps(loop.optimizer_steps);
    if (lead) trim_metrics(metrics_path, loop);
    log("zerotune train: resuming after epoch %lld, step %lld%s\n",
        static_cast<long long>(loop.epochs_done), static_cast<long long>(loop.global_step),
        saved_world != world
            ? str(" (state of ", saved_world, " ranks re-partitioned over ", world, ")").c_str()
            : "");
  }
  std::optional<MetricsLog> metrics;
  if (lead) metrics.emplace(metrics_path, o.resume);

  DType save_dtype = o.save_dtype;
  if (!o.save_dtype_given) {
    const std::string& t = config.torch_dtype;
    save_dtype = t == "bfloat16" ? DType::bf16 : t == "float16" ? DType::f16 : DType::f32;
  }
  const TokenizerFiles tokenizer_files = tokenizer.files();

  // Every rank runs the same number of batches (collectives inside the model); a rank whose
  // share is empty runs an empty batch.
  auto batches_of = [&](const Dataset& data, const std::vector<int64_t>& order, int64_t first,
                        int64_t n, int64_t per_batch, int64_t max_batches) {
    const auto [begin, end] = rank_slice(first, n, rank, world);
    const int64_t per_rank = (n + world - 1) / world;
    int64_t count = (per_rank + per_batch - 1) / per_batch;
    if (max_batches > 0) count = std::min(count, max_batches);
    std::vector<TokenBatch> out;
    for (int64_t b = 0; b < count; ++b) {
      const int64_t lo = begin + b * per_batch, hi = std::min(end, lo + per_batch);
      out.push_back(lo < hi ? make_micro_batch(pick(data, order, lo, hi), pad_id, o.ctx_len,
                                               o.layout, o.pad_mode)
                            : empty_micro_batch(pad_id));
    }
    return out;
  };

  auto evaluate = [&]() {
    const std::vector<int64_t> order = epoch_order(n_test, false, 0, 0);
    double sums[2] = {0.0, 0.0};  // loss, counted tokens
    for (const TokenBatch& batch : batches_of(test, order, 0, n_test, o.eval_batch_size, 0)) {
      const CrossEntropyResult r = model.forward_loss(batch);
      sums[0] += r.loss_sum;
      sums[1] += static_cast<double>(r.count);
    }
    comm->all_reduce(sums, 2, DType::f64);
    return sums[1] > 0 ? sums[0] / sums[1] : 0.0;
  };

  // Rank 0 writes the checkpoint; the others hand it their shards tensor by tensor.
  auto save_checkpoint = [&](const std::string& dir) {
    if (lead) {
      HfCheckpointOptions save;
      save.save_dtype = save_dtype;
      save.fetch_tensor = [&](const std::string& name, float* out) {
        engine.gather_tensor(name, out);
      };
      write_hf_checkpoint(dir, model.params(), folder.raw_config, &tokenizer_files, save);
    } else {
      for (const std::string& name : hf_tensor_order(config)) engine.gather_tensor(name, nullptr);
    }
    comm->barrier();
  };

  // Each rank writes its own state file into one temporary folder, which rank 0 publishes.
  auto save_state = [&]() {
    const std::string tmp = state_dir + ".tmp-save";
    if (lead) {
      fs::remove_all(tmp);
      fs::create_directories(tmp);
    }
    comm->barrier();
    engine.save_state((fs::path(tmp) / ZeroEngine::state_file_name(rank, world)).string());
    comm->barrier();
    if (lead) {
      loop.optimizer_steps = engine.optimizer_steps();
      save_loop_state(tmp, state_dir, loop, world);
    }
    comm->barrier();
  };

  bool stop = false;
  std::string stop_reason = "all epochs done";
  for (int64_t epoch = loop.epochs_done; epoch < o.num_epochs && !stop; ++epoch) {
    if (loop.global_step >= total_steps && !o.as_test) break;
    const std::vector<int64_t> order = epoch_order(n_train, o.shuffle, o.seed, epoch);
    Timer epoch_timer;
    for (int64_t s = 0; s < steps_per_epoch; ++s) {
      if (loop.global_step >= total_steps) break;
      Timer step_timer;
      const CommVolume volume_before = comm->volume();
      const int64_t begin = s * global_batch;
      const int64_t n = std::min(n_train, begin + global_batch) - begin;
      const std::vector<TokenBatch> micro =
          batches_of(train, order, begin, n, o.batch_size, o.as_test ? 1 : 0);
      int64_t local_tokens = 0;
      for (const TokenBatch& mb : micro) local_tokens += mb.count_targets();
      const int64_t tokens =
          static_cast<int64_t>(comm->all_reduce_sum(static_cast<double>(local_tokens)));
      engine.zero_grads();
      double loss_sum = 0.0;
      for (const TokenBatch& mb : micro) {
        loss_sum +=
            model.forward_backward(mb, tokens ? 1.0f / static_cast<float>(tokens) : 0.0f).loss_sum;
      }
      loss_sum = comm->all_reduce_sum(loss_sum);
      const double grad_norm =
          finite_or_fail(engine.reduce_gradients(), "the gradient norm", loop.global_step + 1);
      if (o.grad_clip > 0.0) {
        // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when below 1.
        const double coef = o.grad_clip / (grad_norm + 1e-6);
        if (coef < 1.0) engine.scale_gradients(static_cast<float>(coef));
      }
      const double lr = o.lr * linear_warmup_decay(loop.global_step, o.warmup_steps, total_steps);
      engine.optimizer_step(lr);
      ++loop.global_step;
      const double step_time = step_timer.seconds();
      const double loss = finite_or_fail(tokens ? loss_sum / static_cast<double>(tokens) : 0.0,
                                         "the loss", loop.global_step);
      if (lead) {
        json::Value row = json::Value::object();
        row.set("type", "train");
        row.set("step", loop.global_step);
        row.set("epoch", epoch + 1);
        row.set("loss", loss);
        row.set("lr", lr);
        row.set("grad_norm", grad_norm);
        row.set("tokens", tokens);
        row.set("tokens_per_s", static_cast<double>(tokens) / step_time);
        row.set("step_time_s", step_time);
        if (world > 1) {
          // Bytes rank 0 handed to collectives this step (ZeRO-3's theory: ~3x the parameters).
          const CommVolume& v = comm->volume();
          row.set("comm_all_gather_bytes", v.all_gather - volume_before.all_gather);
          row.set("comm_reduce_scatter_bytes", v.reduce_scatter - volume_before.reduce_scatter);
          row.set("comm_all_reduce_bytes", v.all_reduce - volume_before.all_reduce);
        }
        metrics->write(row);
      }
      const double eta = epoch_timer.seconds() / static_cast<double>(s + 1) *
                         static_cast<double>(total_steps - loop.global_step);
      log("%sstep %lld/%lld epoch %lld loss %.4f lr %.3g grad_norm %.3f %.0f tok/s ETA %s%s",
          tty ? "\r" : "", static_cast<long long>(loop.global_step),
          static_cast<long long>(total_steps), static_cast<long long>(epoch + 1), loss, lr,
          grad_norm, static_cast<double>(tokens) / step_time, format_seconds(eta).c_str(),
          tty ? "   " : "\n");
      if (o.as_test) break;
    }
    if (tty && lead) std::fputc('\n', stderr);
    const double train_time = epoch_timer.seconds();

    Timer eval_timer;
    // --as-test checks the training and checkpoint paths only: no evaluation is run or reported.
    const double eval_loss =
        o.as_test ? 0.0 : finite_or_fail(evaluate(), "the eval loss", loop.global_step);
    const double perplexity = std::exp(eval_loss);  // +inf past loss 709: written as null
    if (!o.as_test && lead) {
      json::Value row = json::Value::object();
      row.set("type", "eval");
      row.set("epoch", epoch + 1);
      row.set("eval_loss", eval_loss);
      row.set("perplexity", std::isfinite(perplexity) ? json::Value(perplexity) : json::Value());
      row.set("train_time_s", train_time);
      row.set("eval_time_s", eval_timer.seconds());
      metrics->write(row);
      std::fprintf(stderr, "epoch %lld: eval loss %.4f perplexity %.4f\n",
                   static_cast<long long>(epoch + 1), eval_loss, perplexity);
    }

    // Checkpoint, then keep the best n by perplexity (ties: the earlier epoch stays).
    save_checkpoint((fs::path(o.output_dir) / ("epoch-" + std::to_string(epoch + 1))).string());
    if (o.publisher && lead) o.publisher->publish_folder("epoch-" + std::to_string(epoch + 1));
    loop.checkpoints.emplace_back(perplexity, epoch + 1);
    std::stable_sort(loop.checkpoints.begin(), loop.checkpoints.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    if (o.keep_checkpoints > 0) {
      while (static_cast<int64_t>(loop.checkpoints.size()) > o.keep_checkpoints) {
        const int64_t dropped = loop.checkpoints.back().second;
        if (lead) fs::remove_all(fs::path(o.output_dir) / ("epoch-" + std::to_string(dropped)));
        if (o.publisher && lead) o.publisher->remove_folder("epoch-" + std::to_string(dropped));
        loop.checkpoints.pop_back();
      }
    }
    loop.epochs_done = epoch + 1;
    if (!o.as_test) save_state();
    if (o.publisher && lead) o.publisher->publish_file("metrics.jsonl");

    if (o.as_test) {
      stop = true;
      stop_reason = "--as-test";
    } else if (o.stop_perplexity > 0.0 && perplexity < o.stop_perplexity) {
      stop = true;
      stop_reason = str("perplexity ", perplexity, " below --stop-perplexity ", o.stop_perplexity);
    } else if (o.stop_after_epochs > 0 && epoch + 1 >= o.stop_after_epochs &&
               epoch + 1 < o.num_epochs) {
      stop = true;
      stop_reason = str("--stop-after-epochs ", o.stop_after_epochs, " (continue with --resume)");
    }
  }

  // Memory per rank: what the engine holds and the process's peak resident set.
  const ZeroMemory mem = engine.memory();
  std::vector<int64_t> mine = {mem.params,     mem.master,     mem.grads,
                               mem.host_grads, mem.optimizer,  mem.slots,
                               mem.staging,    mem.resident(), peak_rss_bytes()};
  std::vector<int64_t> all(static_cast<size_t>(world) * mine.size());
  std::vector<int64_t> counts(static_cast<size_t>(world), static_cast<int64_t>(mine.size()));
  comm->gather_to_root(mine.data(), counts.data(), all.data(), DType::i64);
  if (lead) {
    // OUTPUT_DIR/memory.json, beside metrics.jsonl: bytes per rank, for sizing runs.
    json::Value row = json::Value::object();
    row.set("world_size", world);
    row.set("zero_stage", engine.stage());
    // On a GPU, master/optimizer/host_grads/staging are host memory with the optimizer offloaded.
    row.set("device", zero.compute.device.name());
    const char* keys[] = {"params_bytes",     "master_bytes",    "grads_bytes",
                          "host_grads_bytes", "optimizer_bytes", "slot_bytes",
                          "staging_bytes",    "held_bytes",      "peak_rss_bytes"};
    for (size_t k = 0; k < mine.size(); ++k) {
      json::Value per_rank = json::Value::array();
      for (int r = 0; r < world; ++r)
        per_rank.push_back(all[static_cast<size_t>(r) * mine.size() + k]);
      row.set(keys[k], std::move(per_rank));
    }
    write_file_atomically((fs::path(o.output_dir) / "memory.json").string(), row.dump(2) + "\n");
  }
  if (o.as_test) {
    log("zerotune train: --as-test done in %s; checkpoint %s/epoch-%lld\n",
        format_seconds(total_timer.seconds()).c_str(), o.output_dir.c_str(),
        static_cast<long long>(loop.epochs_done));
  } else if (!loop.checkpoints.empty()) {
    const auto& best = loop.checkpoints.front();
    log("zerotune train: done (%s) in %s; best checkpoint %s/epoch-%lld, perplexity %.4f\n",
        stop_reason.c_str(), format_seconds(total_timer.seconds()).c_str(), o.output_dir.c_str(),
        static_cast<long long>(best.second), best.first);
  }
  comm->barrier();
  // After the last collective, so that no rank waits (and times out) on the uploads. Throws,
  // naming each object, if one failed.
  if (o.publisher && lead) o.publisher->finish();
  return 0;
}

}  // namespace zerotune
