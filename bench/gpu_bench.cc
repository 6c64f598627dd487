// Training-step throughput of the CUDA backend on random tokens, through the trainer's step
// (train/train_step.h): bf16 (or f32) compute, f32 master weights and AdamW moments on the GPU,
// activation checkpointing, gradient clipping. Prints one
// JSON line: tokens/s, model FLOPs utilisation against the measured bf16 GEMM peak, peak memory.
//
//   gpu_bench [--dim 4096] [--hidden 11008] [--layers 4] [--heads 32] [--kv-heads 32]
//             [--vocab 32000] [--seq 512] [--batch 8] [--steps 10] [--warmup 3]
//             [--dtype bf16|f32] [--no-ckpt]
//
// Model FLOPs per token: 6 x (matrix parameters, LM head included) + 6 x L x T x H x Dh (causal
// attention's QK^T and PV, forward and backward), without the checkpointing recompute.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "bench_flags.h"

#include "core/device_memory.h"
#include "core/rng.h"
#include "kernels/matmul.h"
#include "model/llama.h"
#include "train/train_step.h"

namespace zerotune {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int64_t used_bytes() {
  size_t free_bytes = 0, total_bytes = 0;
  cudaMemGetInfo(&free_bytes, &total_bytes);
  return static_cast<int64_t>(total_bytes - free_bytes);
}

// bf16 GEMM throughput of cuBLASLt on an 8192^3 product (the MFU denominator).
double measured_gemm_tflops(const Device& gpu) {
  const int64_t n = 8192;
  Buffer a(DType::bf16, Shape{n, n}, gpu), b(DType::bf16, Shape{n, n}, gpu),
      c(DType::bf16, Shape{n, n}, gpu);
  linear_forward(c, a, b);
  device_synchronize(gpu);
  const int reps = 20;
  const auto start = Clock::now();
  for (int i = 0; i < reps; ++i) linear_forward(c, a, b);
  device_synchronize(gpu);
  return 2.0 * n * n * n * reps / seconds_since(start) / 1e12;
}

int run(int argc, char** argv) {
  BenchFlags flags;
  flags.values = {{"--dim", "4096"}, {"--hidden", "11008"}, {"--layers", "4"},
                  {"--heads", "32"}, {"--kv-heads", "32"},  {"--vocab", "32000"},
                  {"--seq", "512"},  {"--batch", "8"},      {"--steps", "10"},
                  {"--warmup", "3"}, {"--dtype", "bf16"}};
  if (!flags.parse("gpu_bench", argc, argv, {"--no-ckpt"})) return 2;
  const bool checkpointing = !flags.has("--no-ckpt");
  auto num = [&](const char* key) { return flags.integer(key); };
  if (cuda_device_count() == 0) {
    std::fprintf(stderr, "gpu_bench: no CUDA device\n");
    return 1;
  }
  const Device gpu = Device::cuda(0);
  const DType dtype = flags["--dtype"] == "f32" ? DType::f32 : DType::bf16;

  const LlamaConfig c = flags.model_config(std::max<int64_t>(num("--seq"), 512));
  const int64_t seq = num("--seq"), batch = num("--batch");

  const double peak = measured_gemm_tflops(gpu);
  const int64_t base_memory = used_bytes();

  // The trainer's engine on one rank: the compute copy in `dtype`, f32 master weights, gradients
  // and AdamW moments on the GPU; the trainer's step (clipping at 1.0).
  LlamaParams host(c);
  host.init_random(1);
  ZeroOptions zero;
  zero.compute = Placement{gpu, dtype};
  SingleRankTraining training = single_rank_training(
      host, checkpointing ? Checkpointing::per_layer : Checkpointing::off, zero);
  host = LlamaParams();

  Rng rng(2);
  std::vector<std::vector<int32_t>> rows(static_cast<size_t>(batch),
                                         std::vector<int32_t>(static_cast<size_t>(seq)));
  for (auto& row : rows) {
    for (auto& id : row)
      id = static_cast<int32_t>(rng.next_u64() % static_cast<uint64_t>(c.vocab_size));
  }
  std::vector<TokenBatch> micro_batches;  // one micro-batch [B, T]
  micro_batches.push_back(TokenBatch::from_rows(rows, rows));

  int64_t peak_memory = 0;
  double timed = 0.0, last_loss = 0.0;
  const int64_t warmup = num("--warmup"), steps = num("--steps");
  for (int64_t step = 1; step <= warmup + steps; ++step) {
    device_synchronize(gpu);
    const auto start = Clock::now();
    last_loss =
        train_step(*training.model, *training.engine, micro_batches, {1e-5, 1.0, step}).loss;
    device_synchronize(gpu);
    if (step > warmup) timed += seconds_since(start);
    peak_memory = std::max(peak_memory, used_bytes() - base_memory);
  }

  const int64_t d = c.hidden_size, L = c.num_hidden_layers;
  const double matmul_params =
      static_cast<double>(L) * (d * c.qkv_dim() + c.q_dim() * d + 3.0 * d * c.intermediate_size) +
      static_cast<double>(c.vocab_size) * d;
  const double flops_per_token =
      6.0 * matmul_params + 6.0 * L * seq * c.num_attention_heads * c.head_dim;
  const double tokens_per_s = static_cast<double>(batch * seq * steps) / timed;
  const double mfu = tokens_per_s * flops_per_token / (peak * 1e12);
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  std::printf(
      "{\"device\": \"%s\", \"dtype\": \"%s\", \"dim\": %lld, \"hidden\": %lld, \"layers\": %lld, "
      "\"heads\": %lld, \"kv_heads\": %lld, \"vocab\": %lld, \"seq\": %lld, \"batch\": %lld, "
      "\"checkpointing\": %s, \"steps\": %lld, \"step_s\": %.4f, \"tokens_per_s\": %.1f, "
      "\"model_tflops\": %.1f, \"gemm_peak_tflops\": %.1f, \"mfu\": %.4f, "
      "\"peak_memory_bytes\": %lld, \"last_loss\": %.4f}\n",
      prop.name, dtype_name(dtype), static_cast<long long>(d),
      static_cast<long long>(c.intermediate_size), static_cast<long long>(L),
      static_cast<long long>(c.num_attention_heads), static_cast<long long>(c.num_key_value_heads),
      static_cast<long long>(c.vocab_size), static_cast<long long>(seq),
      static_cast<long long>(batch), checkpointing ? "true" : "false",
      static_cast<long long>(steps), timed / static_cast<double>(steps), tokens_per_s,
      tokens_per_s * flops_per_token / 1e12, peak, mfu, static_cast<long long>(peak_memory),
      last_loss);
  return 0;
}

}  // namespace
}  // namespace zerotune

int main(int argc, char** argv) {
  try {
    return zerotune::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_bench: error: %s\n", e.what());
    return 1;
  }
}
