// Does Llama-2-7B full fine-tuning fit one GPU, and how long would a GSM8K epoch take there?
// Builds a 7B-shaped model with random weights, handed to the ZeRO engine one parameter group at a
// time as `zerotune train` loads a checkpoint (no full f32 copy besides the engine's own), and
// trains it on random tokens the way the trainer does: bf16 compute, f32 master weights and
// gradients, activation checkpointing per layer, AdamW on the GPU or in host memory
// (--offload cpu), gradient clipping at 1.0. Prints one JSON line last (stdout) with peak GPU
// memory, the engine's bytes by role, host RSS, the time of one micro-batch's forward and backward
// and of one optimizer step, and the GSM8K-epoch estimate extrapolated from them; progress and the
// estimate in words go to stderr.
//
//   gpu_fit [--offload none|cpu] [--dim 4096] [--hidden 11008] [--layers 32] [--heads 32]
//           [--kv-heads 32] [--vocab 32000] [--seq 512] [--batch 16] [--accum 3] [--steps 1]
//           [--warmup 1] [--device cuda|cpu] [--plan] [--lora]
//
// Each optimizer step runs --accum micro-batches of --batch x --seq tokens; the first --warmup
// micro-batches of the run are not timed. --plan prints the expected state bytes and exits (no
// GPU needed); --device cpu runs the same loop on the CPU backend in f32 (a smoke test of small
// shapes). Exit status: 0 done, 1 error, 2 bad flag, 3 out of GPU or host memory.
//
// Peak GPU memory is the high-water mark of the device's used memory (cudaMemGetInfo total - free:
// our buffers, the CUDA context, cuBLAS's workspace and anything else on the GPU), read after every
// micro-batch and optimizer step and by a thread every millisecond in between, which sees buffers
// that live only inside a micro-batch (the LM head's logits chunk).
//
// GSM8K epoch, extrapolated: the job zerotune replaces (Ray Train + DeepSpeed ZeRO-3 on 16 A10G
// GPUs, 16 rows of 512 tokens per GPU, every row padded to 512) takes 14 minutes for GSM8K's 7,473
// training examples: ceil(7473 / 256) = 30 optimizer steps of 256 rows. On one GPU with
// micro-batch B, a step is ceil(256 / B) micro-batches and one optimizer step, so
//   epoch_1gpu = 30 x (ceil(256 / B) x t_micro + t_opt)
// (the last step is counted full: 7,680 rows for 7,473). epoch_1gpu / 16 is the ideal time on 16
// such GPUs (perfect scaling, no communication).
#include <cuda_runtime.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <new>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench_flags.h"

#include "core/device_memory.h"
#include "core/json.h"
#include "core/rng.h"
#include "core/timer.h"
#include "distributed/communicator.h"
#include "distributed/zero/zero_engine.h"
#include "model/llama.h"
#include "model/lora.h"
#include "train/train_step.h"

namespace zerotune {
namespace {

// The old job's epoch (DESIGN.md): GSM8K's training split, 16 GPUs x 16 rows, 14 minutes.
constexpr int64_t kGsm8kExamples = 7473;
constexpr int64_t kOldGpus = 16;
constexpr int64_t kOldGlobalBatch = 16 * kOldGpus;
constexpr int64_t kOldSeq = 512;
constexpr double kOldEpochMinutes = 14.0;

// Thrown for any allocation that does not fit, so that main() can say so and exit 3.
bool is_out_of_memory(const std::string& message) {
  for (const char* mark : {"cannot allocate", "out of host memory", "out of memory"}) {
    if (message.find(mark) != std::string::npos) return true;
  }
  return false;
}

// High-water mark of the GPU's used memory (total - free). Without a GPU every figure is 0.
class GpuMemoryWatch {
 public:
  explicit GpuMemoryWatch(const Device& device) : device_(device) {
    if (device_.is_cpu()) return;
    total_ = static_cast<int64_t>(query().second);
    start_ = sample();
    thread_ = std::thread([this] {
      cudaSetDevice(device_.index);
      while (!stop_.load()) {
        sample();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
  }
  ~GpuMemoryWatch() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  GpuMemoryWatch(const GpuMemoryWatch&) = delete;
  GpuMemoryWatch& operator=(const GpuMemoryWatch&) = delete;

  // Used bytes now; raises the peak.
  int64_t sample() {
    if (device_.is_cpu()) return 0;
    const auto [free_bytes, total_bytes] = query();
    const int64_t used = static_cast<int64_t>(total_bytes - free_bytes);
    int64_t seen = peak_.load();
    while (used > seen && !peak_.compare_exchange_weak(seen, used)) {
    }
    return used;
  }
  int64_t peak() const { return peak_.load(); }
  int64_t start() const { return start_; }  // before the engine: context and other processes
  int64_t total() const { return total_; }

 private:
  std::pair<size_t, size_t> query() const {
    size_t free_bytes = 0, total_bytes = 0;
    cudaSetDevice(device_.index);
    if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) {
      cudaGetLastError();
      return {0, 0};
    }
    return {free_bytes, total_bytes};
  }

  Device device_;
  int64_t total_ = 0, start_ = 0;
  std::atomic<int64_t> peak_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

int64_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

int64_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<int64_t>(sysconf(_SC_PAGESIZE));
}

// /proc/meminfo's MemAvailable in bytes (0 when unknown).
int64_t host_available_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key, unit;
  int64_t kib = 0;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return 0;
}

double gb(int64_t bytes) {
  return static_cast<double>(bytes) / 1e9;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// What the engine is expected to hold for N parameters (zero.h's design, one GPU): the compute
// copy (2 bytes in bf16), f32 gradients (4) on the GPU; f32 master weights (4, unless the compute
// copy is f32 and on the GPU) and AdamW's two moments (8) on the GPU, or in host memory with a
// host copy of the gradients (4) when the optimizer is offloaded. Activations come on top.
struct StatePlan {
  int64_t params = 0, gpu_bytes = 0, host_bytes = 0;
};

// With LoRA (--lora) the frozen base holds its compute copy alone; the adapters are trainable.
StatePlan plan_state(const LlamaParams& layout, DType compute, bool offload) {
  StatePlan p;
  int64_t n = 0, frozen = 0;  // trainable and frozen elements
  for (size_t g = 0; g < layout.groups().size(); ++g) {
    (layout.groups()[g].trainable ? n : frozen) += layout.group_numel(g);
  }
  p.params = n + frozen;
  const int64_t master = compute != DType::f32 || offload ? 4 * n : 0;
  p.gpu_bytes = dtype_size(compute) * (n + frozen) + 4 * n + (offload ? 0 : master + 8 * n);
  p.host_bytes = offload ? master + 4 * n + 8 * n : 0;
  return p;
}

// Group g's values, generated in place: uniform with standard deviation `stddev` for matrices (as
// `zerotune init`'s normal init, but fast enough for 7B parameters on every core), ones for norm
// weights. Chunks have their own seeds, so the values do not depend on the thread count.
void fill_group(const ParamGroup& group, const Tensor& out, uint64_t seed, int64_t g,
                float stddev) {
  constexpr int64_t kChunk = int64_t{1} << 20;
  const float half_width = stddev * std::sqrt(3.0f);
  float* values = out.f32();
  const int64_t n = out.numel(), chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    Rng rng(seed ^ (static_cast<uint64_t>(g) << 40) ^ static_cast<uint64_t>(c));
    const int64_t end = std::min(n, (c + 1) * kChunk);
    for (int64_t i = c * kChunk; i < end; ++i)
      values[i] = half_width * (2.0f * rng.uniform() - 1.0f);
  }
  for (const ParamView& v : group.views) {
    if (v.shape.ndim() != 1) continue;
    std::fill(values + v.offset, values + v.offset + v.shape.numel(), 1.0f);
  }
}

// Times each micro-batch of a training step (synchronised with the device), after the first
// `warmup` of the run, and prints its progress.
class MicroBatchClock final : public StepObserver {
 public:
  MicroBatchClock(Device device, GpuMemoryWatch& watch, int64_t warmup)
      : device_(device), watch_(watch), warmup_(warmup) {}
  void micro_batch_begin() override {
    device_synchronize(device_);
    timer_.reset();
  }
  void micro_batch_end() override {
    device_synchronize(device_);
    const double s = timer_.seconds();
    step_micro_s += s;
    watch_.sample();
    if (done_++ >= warmup_) timed_s.push_back(s);
    std::fprintf(stderr, "gpu_fit: step %lld micro-batch %lld: %.3f s%s, GPU used %.1f GB\n",
                 static_cast<long long>(step), static_cast<long long>(done_), s,
                 done_ > warmup_ ? "" : " (warm-up)", gb(watch_.sample()));
  }

  int64_t step = 0;
  double step_micro_s = 0.0;    // this step's micro-batches
  std::vector<double> timed_s;  // every timed micro-batch of the run

 private:
  Device device_;
  GpuMemoryWatch& watch_;
  int64_t warmup_;
  int64_t done_ = 0;
  Timer timer_;
};

TokenBatch random_batch(Rng& rng, int64_t batch, int64_t seq, int64_t vocab) {
  std::vector<std::vector<int32_t>> rows(static_cast<size_t>(batch),
                                         std::vector<int32_t>(static_cast<size_t>(seq)));
  for (auto& row : rows) {
    for (auto& id : row) id = static_cast<int32_t>(rng.below(static_cast<uint64_t>(vocab)));
  }
  return TokenBatch::from_rows(rows, rows);
}

int run(int argc, char** argv) {
  BenchFlags flags;
  flags.values = {{"--offload", "none"}, {"--dim", "4096"}, {"--hidden", "11008"},
                  {"--layers", "32"},    {"--heads", "32"}, {"--kv-heads", "32"},
                  {"--vocab", "32000"},  {"--seq", "512"},  {"--batch", "16"},
                  {"--accum", "3"},      {"--steps", "1"},  {"--warmup", "1"},
                  {"--device", "cuda"}};
  if (!flags.parse("gpu_fit", argc, argv, {"--plan", "--lora"})) return 2;
  const bool plan_only = flags.has("--plan");
  auto num = [&](const char* key) { return flags.integer(key); };
  const std::string offload_flag = flags["--offload"], device_flag = flags["--device"];
  ZT_CHECK(offload_flag == "none" || offload_flag == "cpu", "--offload must be none or cpu, got '",
           offload_flag, "'");
  ZT_CHECK(device_flag == "cuda" || device_flag == "cpu", "--device must be cuda or cpu, got '",
           device_flag, "'");
  const bool offload = offload_flag == "cpu";
  const bool on_gpu = device_flag == "cuda";
  const int64_t seq = num("--seq"), batch = num("--batch"), accum = num("--accum");
  const int64_t steps = num("--steps"), warmup = num("--warmup");
  ZT_CHECK(seq >= 2 && batch >= 1 && accum >= 1 && steps >= 1 && warmup >= 0,
           "need --seq >= 2, --batch, --accum, --steps >= 1 and --warmup >= 0");
  ZT_CHECK(warmup < steps * accum, "--warmup ", warmup, " leaves none of the ", steps * accum,
           " micro-batches (--steps x --accum) to time");

  const LlamaConfig c = flags.model_config(std::max<int64_t>(seq, 4096));

  const Placement compute = on_gpu ? Placement{Device::cuda(0), DType::bf16} : Placement{};
  LlamaParams layout(c, Storage::none);
  // --lora: the job's default adapters (r 8 on gate/up/down_proj) over the frozen model.
  const int64_t first_adapter = flags.has("--lora") ? add_lora_groups(layout, LoraConfig{}) : -1;
  const StatePlan plan = plan_state(layout, compute.dtype, offload && on_gpu);
  std::fprintf(stderr,
               "gpu_fit: %s, %.3f B parameters, %s compute on %s, optimizer %s: expected state "
               "%.1f GB there, %.1f GB in host memory, activations extra\n",
               c.summary().c_str(), static_cast<double>(plan.params) / 1e9,
               dtype_name(compute.dtype), compute.device.name().c_str(),
               offload && on_gpu ? "in host memory" : "beside the model", gb(plan.gpu_bytes),
               gb(plan.host_bytes));
  if (plan_only) {
    json::Value row = json::Value::object();
    row.set("params", plan.params);
    row.set("offload", offload_flag);
    row.set("lora", flags.has("--lora"));
    row.set("gpu_state_bytes", plan.gpu_bytes);
    row.set("host_state_bytes", plan.host_bytes);
    std::printf("%s\n", row.dump().c_str());
    return 0;
  }
  if (on_gpu && cuda_device_count() == 0) {
    std::fprintf(stderr, "gpu_fit: no CUDA device (--device cpu runs the loop on the CPU)\n");
    return 1;
  }
  if (const int64_t available = host_available_bytes();
      available > 0 && plan.host_bytes > available) {
    std::fprintf(stderr,
                 "gpu_fit: warning: the offloaded optimizer needs about %.1f GB of host memory, "
                 "MemAvailable is %.1f GB; the kernel may kill this process\n",
                 gb(plan.host_bytes), gb(available));
  }

  GpuMemoryWatch watch(compute.device);
  ZeroOptions options;
  options.compute = compute;
  options.optimizer_placement = offload ? OptimizerPlacement::cpu : OptimizerPlacement::device;
  const std::unique_ptr<Communicator> comm = make_single_communicator();

  // The engine, then the weights group by group through one host buffer of the largest group.
  Timer init_timer;
  ZeroEngine engine(layout, *comm, options);
  watch.sample();
  int64_t largest = 0;
  for (size_t g = 0; g < layout.groups().size(); ++g)
    largest = std::max(largest, layout.group_numel(g));
  {
    Buffer values(DType::f32, Shape{largest});
    for (size_t g = 0; g < layout.groups().size(); ++g) {
      const Tensor group_values = values.view().flat(0, layout.group_numel(g));
      fill_group(layout.groups()[g], group_values, 1, static_cast<int64_t>(g), 0.02f);
      engine.set_group_params(g, group_values);
    }
  }
  LlamaModel model(layout.like(Storage::none), Checkpointing::per_layer, GradStorage::external,
                   compute);
  LoraLayers lora(c, LoraConfig{}, first_adapter, 1);
  if (first_adapter >= 0) model.set_lora(&lora);
  engine.attach(model);
  device_synchronize(compute.device);
  const double init_s = init_timer.seconds();
  watch.sample();
  std::fprintf(stderr, "gpu_fit: engine and weights ready in %.1f s\n", init_s);

  // The trainer's step (train/train_step.h), each micro-batch timed on its own; the rest of the
  // step (zeroing, reduction, clipping, AdamW) is the optimizer's time.
  MicroBatchClock clock{compute.device, watch, warmup};
  Rng rng(2);
  std::vector<double> opt_s;
  double last_loss = 0.0, last_norm = 0.0;
  for (int64_t step = 1; step <= steps; ++step) {
    std::vector<TokenBatch> micro_batches;
    for (int64_t m = 0; m < accum; ++m) {
      micro_batches.push_back(random_batch(rng, batch, seq, c.vocab_size));
    }
    clock.step = step;
    clock.step_micro_s = 0.0;
    device_synchronize(compute.device);
    Timer step_timer;
    const StepResult r = train_step(model, engine, micro_batches, {1e-5, 1.0, step, &clock});
    // A host optimizer runs on its own thread and overlaps the next step's forward; waiting for it
    // here times the whole update (the estimate below claims no overlap).
    engine.finish_updates();
    device_synchronize(compute.device);
    opt_s.push_back(step_timer.seconds() - clock.step_micro_s);
    last_loss = r.loss;
    last_norm = r.grad_norm;
    std::fprintf(stderr,
                 "gpu_fit: step %lld: loss %.4f grad norm %.3f, optimizer step %.3f s, GPU used "
                 "%.1f GB (peak %.1f GB)\n",
                 static_cast<long long>(step), last_loss, last_norm, opt_s.back(),
                 gb(watch.sample()), gb(watch.peak()));
  }
  const std::vector<double>& micro_s = clock.timed_s;

  const double t_micro = median(micro_s), t_opt = median(opt_s);
  const int64_t old_steps = (kGsm8kExamples + kOldGlobalBatch - 1) / kOldGlobalBatch;
  const int64_t micro_per_step = (kOldGlobalBatch + batch - 1) / batch;
  const double epoch_min = static_cast<double>(old_steps) *
                           (static_cast<double>(micro_per_step) * t_micro + t_opt) / 60.0;
  const double epoch_min_ideal = epoch_min / static_cast<double>(kOldGpus);
  const ZeroMemory mem = engine.memory();

  std::string device_name = compute.device.name();
  if (on_gpu) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, compute.device.index) == cudaSuccess)
      device_name = prop.name;
  }
  std::fprintf(
      stderr,
      "gpu_fit: GSM8K epoch (%lld examples, ctx %lld), extrapolated from %zu timed "
      "micro-batches and %zu optimizer step(s): %lld steps x (%lld x %.3f s + %.3f s) = "
      "%.1f min on this device, %.2fx the old job's %.0f min on %lld A10G; ideal %lld GPUs: "
      "%.2f min\n",
      static_cast<long long>(kGsm8kExamples), static_cast<long long>(seq), micro_s.size(),
      opt_s.size(), static_cast<long long>(old_steps), static_cast<long long>(micro_per_step),
      t_micro, t_opt, epoch_min, kOldEpochMinutes / epoch_min, kOldEpochMinutes,
      static_cast<long long>(kOldGpus), static_cast<long long>(kOldGpus), epoch_min_ideal);
  if (seq != kOldSeq) {
    std::fprintf(stderr, "gpu_fit: warning: --seq %lld is not the old job's %lld tokens\n",
                 static_cast<long long>(seq), static_cast<long long>(kOldSeq));
  }

  json::Value gsm8k = json::Value::object();
  gsm8k.set("extrapolated", true);
  gsm8k.set("examples", kGsm8kExamples);
  gsm8k.set("old_global_batch", kOldGlobalBatch);
  gsm8k.set("steps", old_steps);
  gsm8k.set("micro_batches_per_step", micro_per_step);
  gsm8k.set("epoch_min_1gpu", epoch_min);
  gsm8k.set("epoch_min_ideal_16gpu", epoch_min_ideal);
  gsm8k.set("old_epoch_min_16xA10G", kOldEpochMinutes);
  gsm8k.set("speedup_1gpu", kOldEpochMinutes / epoch_min);
  gsm8k.set("speedup_ideal_16gpu", kOldEpochMinutes / epoch_min_ideal);

  json::Value row = json::Value::object();
  row.set("device", device_name);
  row.set("offload", offload_flag);
  row.set("compute_dtype", dtype_name(compute.dtype));
  row.set("dim", c.hidden_size);
  row.set("hidden", c.intermediate_size);
  row.set("layers", c.num_hidden_layers);
  row.set("heads", c.num_attention_heads);
  row.set("kv_heads", c.num_key_value_heads);
  row.set("vocab", c.vocab_size);
  row.set("params", plan.params);
  row.set("seq", seq);
  row.set("batch", batch);
  row.set("accum", accum);
  row.set("checkpointing", "per_layer");
  row.set("init_s", init_s);
  row.set("micro_batches_timed", static_cast<int64_t>(micro_s.size()));
  row.set("micro_batch_s", t_micro);
  row.set("optimizer_steps_timed", static_cast<int64_t>(opt_s.size()));
  row.set("optimizer_step_s", t_opt);
  row.set("tokens_per_s", static_cast<double>(batch * seq) / t_micro);
  row.set("last_loss", last_loss);
  row.set("grad_norm", last_norm);
  row.set("gpu_total_bytes", watch.total());
  row.set("gpu_start_bytes", watch.start());
  row.set("peak_gpu_bytes", watch.peak());
  json::Value zero_memory = json::Value::object();  // ZeroEngine::memory(): its own account
  zero_memory.set("params_bytes", mem.params);
  zero_memory.set("master_bytes", mem.master);
  zero_memory.set("grads_bytes", mem.grads);
  zero_memory.set("host_grads_bytes", mem.host_grads);
  zero_memory.set("optimizer_bytes", mem.optimizer);
  zero_memory.set("slot_bytes", mem.slots);
  zero_memory.set("staging_bytes", mem.staging);
  zero_memory.set("held_bytes", mem.resident());
  row.set("zero_memory", std::move(zero_memory));
  row.set("expected_gpu_state_bytes", plan.gpu_bytes);
  row.set("expected_host_state_bytes", plan.host_bytes);
  row.set("peak_rss_bytes", peak_rss_bytes());
  row.set("rss_bytes", rss_bytes());
  row.set("gsm8k", std::move(gsm8k));
  std::printf("%s\n", row.dump().c_str());
  return 0;
}

}  // namespace
}  // namespace zerotune

int main(int argc, char** argv) {
  try {
    return zerotune::run(argc, argv);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "gpu_fit: out of memory: a host allocation failed (std::bad_alloc)\n");
    return 3;
  } catch (const std::exception& e) {
    const bool oom = zerotune::is_out_of_memory(e.what());
    std::fprintf(stderr, "gpu_fit: %s%s\n", oom ? "out of memory: " : "error: ", e.what());
    return oom ? 3 : 1;
  }
}
