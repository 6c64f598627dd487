// The whole Llama model on the GPU against the CPU backend: in f32 the loss and every parameter
// gradient within 1e-4 relative (GQA, packed rows, tied and untied heads); in bf16 storage the
// loss within 2e-2. Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/device_memory.h"
#include "core/rng.h"
#include "kernels/adamw.h"
#include "model/llama.h"

namespace zerotune {
namespace {

LlamaConfig config(bool tied) {
  LlamaConfig c;
  c.vocab_size = 301;
  c.hidden_size = 96;
  c.intermediate_size = 200;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 6;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  c.max_position_embeddings = 128;
  c.tie_word_embeddings = tied;
  if (tied) {  // Qwen2-like as well: q/k/v biases, and llama3 rope scaling past its 32 positions
    c.architecture = "Qwen2ForCausalLM";
    c.qkv_bias = true;
    c.rope_scaling = {RopeScalingType::llama3, 8.0f, 1.0f, 4.0f, 32};
  }
  c.validate("test");
  return c;
}

TokenBatch batch(const LlamaConfig& c, bool packed) {
  Rng rng(3);
  std::vector<std::vector<int32_t>> rows(3, std::vector<int32_t>(45));
  for (auto& row : rows) {
    for (auto& id : row)
      id = static_cast<int32_t>(rng.next_u64() % static_cast<uint64_t>(c.vocab_size));
  }
  auto labels = rows;
  labels[1][10] = kIgnoreIndex;
  TokenBatch b = TokenBatch::from_rows(rows, labels);
  if (packed) {
    b.segments = Buffer(DType::i32, Shape{b.batch * b.seq_len});
    for (int64_t i = 0; i < b.batch * b.seq_len; ++i) {
      const int64_t t = i % b.seq_len;
      b.segments.view().ptr<int32_t>()[i] = t < 20 ? 0 : 1;
      b.positions.view().ptr<int32_t>()[i] = static_cast<int32_t>(t < 20 ? t : t - 20);
    }
  }
  return b;
}

// A copy of `params` in `dtype` on the GPU.
LlamaParams on_gpu(const LlamaParams& params, DType dtype) {
  return params.placed(dtype, Device::cuda(0));
}

std::vector<float> host(const Tensor& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  copy_bytes(out.data(), Device::cpu(), t.data, t.device, t.nbytes());
  return out;
}

TEST(CudaModel, F32GradientsMatchTheCpu) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  for (const bool tied : {false, true}) {
    for (const bool packed : {false, true}) {
      const LlamaConfig c = config(tied);
      LlamaParams params(c);
      params.init_random(7);
      const TokenBatch b = batch(c, packed);
      const float scale = 1.0f / static_cast<float>(b.count_targets());
      LlamaModel gpu_model(on_gpu(params, DType::f32), Checkpointing::per_layer, GradStorage::owned,
                           Placement{Device::cuda(0), DType::f32});
      LlamaParams cpu_params(c);
      for (size_t g = 0; g < params.groups().size(); ++g)
        copy(cpu_params.groups()[g].data, params.groups()[g].data);
      LlamaModel reference(std::move(cpu_params), Checkpointing::per_layer);
      const double want = reference.forward_backward(b, scale).loss_sum;
      const double got = gpu_model.forward_backward(b, scale).loss_sum;
      EXPECT_NEAR(got, want, 1e-5 * std::fabs(want)) << "tied " << tied << " packed " << packed;
      for (size_t g = 0; g < params.groups().size(); ++g) {
        const std::vector<float> gpu_grad = host(gpu_model.grads().groups()[g].data);
        const float* cpu_grad = reference.grads().groups()[g].data.f32();
        double diff = 0.0, norm = 1e-30;
        for (size_t i = 0; i < gpu_grad.size(); ++i) {
          diff = std::max(diff, std::fabs(static_cast<double>(gpu_grad[i]) - cpu_grad[i]));
          norm = std::max(norm, std::fabs(static_cast<double>(cpu_grad[i])));
        }
        EXPECT_LE(diff / norm, 1e-4)
            << params.groups()[g].name << " tied " << tied << " packed " << packed;
      }
    }
  }
}

TEST(CudaModel, Bf16LossIsCloseToF32) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  const LlamaConfig c = config(false);
  LlamaParams params(c);
  params.init_random(8);
  const TokenBatch b = batch(c, false);
  const float scale = 1.0f / static_cast<float>(b.count_targets());
  LlamaModel f32(on_gpu(params, DType::f32), Checkpointing::per_layer, GradStorage::owned,
                 Placement{Device::cuda(0), DType::f32});
  LlamaModel bf16(on_gpu(params, DType::bf16), Checkpointing::per_layer, GradStorage::owned,
                  Placement{Device::cuda(0), DType::bf16});
  const double a = f32.forward_backward(b, scale).loss_sum;
  const double l = bf16.forward_backward(b, scale).loss_sum;
  EXPECT_NEAR(l, a, 2e-2 * std::fabs(a));
  const double eval = bf16.forward_loss(b).loss_sum;
  EXPECT_NEAR(eval, l, 1e-6 * std::fabs(l));  // same forward with and without backward
}

// Five AdamW steps (f32 master and moments; the model's compute copy in `dtype` on `device`);
// returns the loss of each step.
std::vector<double> train_steps(const LlamaParams& init, Placement at, int steps) {
  const LlamaConfig& c = init.config();
  const bool gpu = !at.device.is_cpu();
  LlamaParams master(c, Storage::allocated, DType::f32, at.device);
  for (size_t g = 0; g < init.groups().size(); ++g)
    copy(master.groups()[g].data, init.groups()[g].data);
  LlamaModel model(gpu ? on_gpu(init, at.dtype) : LlamaParams(c), Checkpointing::per_layer,
                   GradStorage::owned, at);
  if (!gpu) {
    for (size_t g = 0; g < init.groups().size(); ++g) {
      copy(model.params().groups()[g].data, init.groups()[g].data);
    }
  }
  std::vector<Buffer> m, v;
  for (const ParamGroup& g : init.groups()) {
    m.emplace_back(DType::f32, Shape{g.data.numel()}, at.device);
    v.emplace_back(DType::f32, Shape{g.data.numel()}, at.device);
  }
  AdamWConfig adam;
  adam.lr = 3e-3;
  std::vector<double> losses;
  for (int step = 1; step <= steps; ++step) {
    const TokenBatch b = batch(c, step % 2 == 0);
    model.grads().zero();
    losses.push_back(
        model.forward_backward(b, 1.0f / static_cast<float>(b.count_targets())).loss_sum /
        static_cast<double>(b.count_targets()));
    for (size_t g = 0; g < init.groups().size(); ++g) {
      const Tensor& params = model.params().groups()[g].data.view();
      if (at.dtype == DType::bf16) {
        adamw_step_mixed(master.groups()[g].data, model.grads().groups()[g].data, m[g], v[g],
                         params, adam, step);
      } else {
        adamw_step(params, model.grads().groups()[g].data, m[g], v[g], adam, step);
      }
    }
  }
  return losses;
}

TEST(CudaModel, ShortTrainingRunsMatchTheCpuAndBf16StaysClose) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  const LlamaConfig c = config(false);
  LlamaParams init(c);
  init.init_random(9);
  const std::vector<double> cpu = train_steps(init, Placement{}, 5);
  const std::vector<double> f32 = train_steps(init, Placement{Device::cuda(0), DType::f32}, 5);
  const std::vector<double> bf16 = train_steps(init, Placement{Device::cuda(0), DType::bf16}, 5);
  ASSERT_LT(cpu.back(), cpu.front());  // it learns
  for (size_t i = 0; i < cpu.size(); ++i) {
    EXPECT_NEAR(f32[i], cpu[i], 1e-4 * cpu[i]) << "step " << i + 1;
    EXPECT_NEAR(bf16[i], cpu[i], 3e-2 * cpu[i]) << "step " << i + 1;
  }
}

}  // namespace
}  // namespace zerotune
