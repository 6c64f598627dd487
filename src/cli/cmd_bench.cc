// `zerotune bench`: times full training steps (forward, backward, clipping, AdamW: the trainer's
// train_step through its ZeRO engine on one rank) of a randomly initialised model on random tokens
// and prints one JSON line.
//
// FLOPs per token (model FLOPs, causal attention counted once):
//   6 * N_matmul + 6 * L * T * H * Dh
// N_matmul = weights used in matrix products (every layer's projections and the LM head; not the
// embedding lookup); 6 = 2 (multiply-add) x 3 (forward, input and weight gradients). Attention:
// QK^T and PV each cost 2 * T/2 * H*Dh per token on average under the causal mask, times 3.
// MFU = achieved FLOP/s / peak, where peak is this machine's measured sgemm FLOP/s on the same
// threads (or --peak-gflops).
//
// With --decode it times decode steps of BatchedGenerator instead: --batch sequences stepping
// together against the same sequences stepping one at a time (each round: one single step per
// sequence, then one step of all, so both see the same contexts and the same machine load), and
// prints the aggregate tokens/s of each and their ratio.
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/presets.h"
#include "core/profile.h"
#include "core/timer.h"
#include "kernels/matmul.h"
#include "model/batched_generator.h"
#include "model/llama.h"
#include "model/sampling.h"
#include "train/train_step.h"

namespace zerotune {
namespace {

double measure_sgemm_gflops() {
  const int64_t n = 1536;
  std::vector<float> a(static_cast<size_t>(n * n), 0.5f), b(a), c(a);
  double best = 0.0;
  for (int rep = 0; rep < 4; ++rep) {
    Timer t;
    cpu::gemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    best = std::max(best, 2.0 * n * n * n / t.seconds() / 1e9);
  }
  return best;
}

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Greedy next tokens of `rows` rows of logits [rows, V].
std::vector<int32_t> greedy_tokens(const std::vector<float>& logits, int64_t rows, int64_t vocab) {
  std::vector<int32_t> tokens;
  for (int64_t r = 0; r < rows; ++r)
    tokens.push_back(argmax_token(logits.data() + r * vocab, vocab));
  return tokens;
}

// Starts `batch` sequences on random prompts; returns their slots and greedy next tokens.
void start_sequences(BatchedGenerator& generator, int64_t batch, int64_t prompt_len,
                     std::vector<int64_t>& slots, std::vector<int32_t>& next) {
  const int64_t V = generator.config().vocab_size;
  Rng rng(42);
  std::vector<float> logits(static_cast<size_t>(V));
  for (int64_t s = 0; s < batch; ++s) {
    std::vector<int32_t> prompt;
    for (int64_t t = 0; t < prompt_len; ++t) {
      prompt.push_back(static_cast<int32_t>(rng.below(static_cast<uint64_t>(V))));
    }
    slots.push_back(generator.start(prompt, logits.data()));
    next.push_back(argmax_token(logits.data(), V));
  }
}

struct StepTimes {
  double single_s, batch_s;  // median seconds of a step of one sequence, of all of them
};

// Rounds of one single step per sequence followed by one step of all (greedy tokens throughout).
StepTimes time_steps(BatchedGenerator& generator, const std::vector<int64_t>& slots,
                     std::vector<int32_t> next, int64_t warmup, int64_t rounds) {
  const int64_t V = generator.config().vocab_size, batch = static_cast<int64_t>(slots.size());
  std::vector<float> logits(static_cast<size_t>(batch * V));
  std::vector<double> single_s, batch_s;
  for (int64_t round = 0; round < warmup + rounds; ++round) {
    for (int64_t s = 0; s < batch; ++s) {
      Timer t;
      generator.step({slots[size_t(s)]}, {next[size_t(s)]}, logits.data());
      if (round >= warmup) single_s.push_back(t.seconds());
      next[size_t(s)] = argmax_token(logits.data(), V);
    }
    Timer t;
    generator.step(slots, next, logits.data());
    if (round >= warmup) batch_s.push_back(t.seconds());
    next = greedy_tokens(logits, batch, V);
  }
  return {median(single_s), median(batch_s)};
}

int bench_decode(const Args& args, LlamaConfig c) {
  const int64_t batch = args.has("--batch") ? args.get_int("--batch") : 8;
  const int64_t prompt_len = args.get_int("--prompt-len");
  const int64_t rounds = args.has("--steps") ? args.get_int("--steps") : 16;
  const int64_t warmup = args.get_int("--warmup");
  ZT_CHECK(batch >= 1 && prompt_len >= 1 && rounds >= 1 && warmup >= 0,
           "zerotune bench --decode: need --batch >= 1, --prompt-len >= 1, --steps >= 1 and "
           "--warmup >= 0");
  // Each round advances every sequence by two positions (its single step and the batch step).
  const int64_t max_seq_len = prompt_len + 2 * (warmup + rounds);
  c.max_position_embeddings = max_seq_len;
  c.validate("zerotune bench");
  LlamaParams params(c);
  params.init_random(1234);
  BatchedGenerator generator(params, batch, max_seq_len);
  std::vector<int64_t> slots;
  std::vector<int32_t> next;
  start_sequences(generator, batch, prompt_len, slots, next);
  const StepTimes times = time_steps(generator, slots, next, warmup, rounds);
  const double single_rate = 1.0 / times.single_s;
  const double batch_rate = static_cast<double>(batch) / times.batch_s;
  // The weights a step reads: every matrix (the embedding only for its looked-up rows).
  const int64_t embedding = c.tie_word_embeddings ? 0 : c.vocab_size * c.hidden_size;
  const double weight_bytes = 4.0 * static_cast<double>(params.numel() - embedding);
  std::printf(
      "{\"mode\": \"decode\", \"batch\": %lld, \"tokens_per_s_batch_1\": %.2f, "
      "\"tokens_per_s_batch_n\": %.2f, \"speedup\": %.3f, \"step_ms_batch_1\": %.3f, "
      "\"step_ms_batch_n\": %.3f, \"weight_gb_per_s_batch_1\": %.2f, \"params\": %lld, "
      "\"threads\": %d, \"prompt_len\": %lld, \"rounds\": %lld, \"peak_rss_mb\": %.1f}\n",
      static_cast<long long>(batch), single_rate, batch_rate, batch_rate / single_rate,
      1e3 * times.single_s, 1e3 * times.batch_s, weight_bytes / times.single_s / 1e9,
      static_cast<long long>(params.numel()), omp_get_max_threads(),
      static_cast<long long>(prompt_len), static_cast<long long>(rounds), peak_rss_mb());
  return 0;
}

}  // namespace

int cmd_bench(int argc, char** argv, int first) {
  Args args(
      "zerotune bench",
      "Times training steps (forward, backward, AdamW) on random tokens; prints one JSON\n"
      "line last with tokens_per_s, step_s_median, params, peak_rss_mb, mfu.\n"
      "FLOPs/token = 6*N_matmul + 6*L*T*H*Dh; MFU is against the measured sgemm peak.\n"
      "With --decode: decode steps of --batch sequences (default 8) together and one at a\n"
      "time after --prompt-len prompt tokens, --steps rounds (default 16); one JSON line with\n"
      "tokens_per_s_batch_1, tokens_per_s_batch_n and speedup (their ratio).");
  add_shape_flags(args);
  args.option("--seq-len", "T", "tokens per sequence (overrides the preset)")
      .option("--batch", "B", "sequences per step (overrides the preset)")
      .option("--steps", "S", "timed steps", "5")
      .option("--warmup", "W", "untimed steps first", "1")
      .option("--threads", "N", "OpenMP/BLAS threads (0 = OpenMP's default)", "0")
      .option("--dtype", "fp32", "compute dtype (the CPU backend computes in fp32)", "fp32")
      .option("--peak-gflops", "X", "peak FLOP/s for MFU in GFLOP/s (0 = measure sgemm)", "0")
      .flag("--grad-ckpt", "activation checkpointing per layer")
      .flag("--lora", "train LoRA adapters (r 8 on gate/up/down_proj) over the frozen model")
      .flag("--decode", "time decode steps (batched against one at a time) instead of training")
      .option("--prompt-len", "P", "prompt tokens per sequence before decoding (--decode)", "32");
  if (!args.parse(argc, argv, first)) return 0;
  ZT_CHECK(args.get("--dtype") == "fp32", "zerotune bench: --dtype ", args.get("--dtype"),
           " is not available on the CPU backend (fp32 only)");
  if (const int64_t threads = args.get_int("--threads"); threads > 0) {
    omp_set_num_threads(static_cast<int>(threads));
  }
  LlamaConfig c = shape_config(args, "zerotune bench");
  if (args.has("--decode")) return bench_decode(args, c);
  const ModelPreset& preset = model_preset(args.get("--preset"));
  const int64_t batch_size = args.has("--batch") ? args.get_int("--batch") : preset.batch;
  const int64_t seq_len = args.has("--seq-len") ? args.get_int("--seq-len") : preset.seq_len;
  c.max_position_embeddings = std::max<int64_t>(seq_len, 1);
  c.validate("zerotune bench");
  ZT_CHECK(batch_size > 0 && seq_len > 1, "zerotune bench: need --batch >= 1 and --seq-len >= 2");

  // The trainer's engine and step on one rank (clipping at the trainer's default 1.0).
  LlamaParams params(c);
  params.init_random(1234);
  const int64_t param_count = params.numel();
  const Checkpointing ckpt =
      args.has("--grad-ckpt") ? Checkpointing::per_layer : Checkpointing::off;
  // --lora: the job's default adapters (r 8 on gate/up/down_proj) over the frozen model.
  SingleRankTraining training = args.has("--lora")
                                    ? single_rank_lora_training(
                                          params, LoraConfig{},
                                          [&](int64_t l, const ParamGroup&, const Tensor& out) {
                                            init_lora_group(out, c, LoraConfig{}, l, 1234);
                                          },
                                          1234, ckpt, ZeroOptions{})
                                    : single_rank_training(params, ckpt, ZeroOptions{});
  params = LlamaParams();
  Rng rng(42);
  std::vector<std::vector<int32_t>> rows(static_cast<size_t>(batch_size));
  for (auto& row : rows) {
    for (int64_t t = 0; t < seq_len; ++t) {
      row.push_back(static_cast<int32_t>(rng.below(static_cast<uint64_t>(c.vocab_size))));
    }
  }
  std::vector<TokenBatch> batch;  // one micro-batch [B, T]
  batch.push_back(TokenBatch::from_rows(rows, rows));

  const int64_t warmup = args.get_int("--warmup"), steps = args.get_int("--steps");
  ZT_CHECK(steps > 0, "zerotune bench: --steps must be positive");
  std::vector<double> times;
  double loss = 0.0;
  for (int64_t s = 0; s < warmup + steps; ++s) {
    Timer t;
    loss = train_step(*training.model, *training.engine, batch, {1e-4, 1.0, s + 1}).loss;
    const double seconds = t.seconds();
    if (s >= warmup) {
      times.push_back(seconds);
    } else {
      profile_reset();
    }
    std::fprintf(stderr, "step %lld: %.3f s, loss %.4f\n", static_cast<long long>(s), seconds,
                 loss);
  }
  if (profiling_enabled()) {
    std::fprintf(stderr, "time per region over %lld timed steps:\n%s",
                 static_cast<long long>(steps), profile_report().c_str());
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  const double tokens_per_step = static_cast<double>(batch_size * seq_len);

  const int64_t d = c.hidden_size, L = c.num_hidden_layers;
  const double n_matmul =
      static_cast<double>(L) *
          static_cast<double>(c.qkv_dim() * d + d * c.q_dim() + 3 * d * c.intermediate_size) +
      static_cast<double>(c.vocab_size * d);
  const double flops_per_token =
      6.0 * n_matmul + 6.0 * static_cast<double>(L * seq_len * c.q_dim());
  double peak = args.get_double("--peak-gflops");
  if (peak <= 0.0) peak = measure_sgemm_gflops();
  const double achieved = flops_per_token * tokens_per_step / median / 1e9;
  std::printf(
      "{\"tokens_per_s\": %.2f, \"step_s_median\": %.4f, \"params\": %lld, \"peak_rss_mb\": %.1f, "
      "\"mfu\": %.4f, \"achieved_gflops\": %.2f, \"peak_gflops\": %.2f, \"flops_per_token\": %.4g, "
      "\"threads\": %d, \"batch\": %lld, \"seq_len\": %lld, \"loss\": %.4f, \"lora\": %s}\n",
      tokens_per_step / median, median, static_cast<long long>(param_count), peak_rss_mb(),
      achieved / peak, achieved, peak, flops_per_token, omp_get_max_threads(),
      static_cast<long long>(batch_size), static_cast<long long>(seq_len), loss,
      args.has("--lora") ? "true" : "false");
  return 0;
}

}  // namespace zerotune
