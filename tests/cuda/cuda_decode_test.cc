// Decoding on the GPU against the CPU backend: the slotted-cache kernels (decode_kv_store,
// decode_attention) on random inputs, including contexts longer than the kernel's tile of 256
// positions, and BatchedGenerator with its parameters on the GPU (f32 within 1e-4 of the CPU's
// logits; bf16 weights and activations within 5e-2 of the CPU's f32 run on the same weights).
// Skips without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/device_memory.h"
#include "core/rng.h"
#include "kernels/decode_attention.h"
#include "model/batched_generator.h"

namespace zerotune {
namespace {

std::vector<float> host(const Tensor& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  if (t.dtype == DType::f32) {
    copy_bytes(out.data(), Device::cpu(), t.data, t.device, t.nbytes());
  } else {
    convert_copy(Tensor(out.data(), DType::f32, t.shape), t);
  }
  return out;
}

// max |a - b| / max |b|.
double rel_max(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0.0, norm = 1e-30;
  for (size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, std::fabs(double(a[i]) - b[i]));
    norm = std::max(norm, std::fabs(double(b[i])));
  }
  return diff / norm;
}

// Values that `dtype` holds exactly, so that both sides start from the same numbers.
float representable(float v, DType dtype) {
  return dtype == DType::bf16 ? bf16_to_f32(f32_to_bf16(v)) : v;
}

Buffer random_buffer(Rng& rng, Shape shape, DType dtype) {
  Buffer b(DType::f32, shape);
  for (int64_t i = 0; i < b.numel(); ++i) b.f32()[i] = representable(rng.normal(), dtype);
  return b;
}

// The same values in `dtype` on the GPU.
Buffer on_gpu(const Buffer& cpu, DType dtype) {
  Buffer gpu(dtype, cpu.view().shape, Device::cuda(0));
  convert_copy(gpu, cpu);
  return gpu;
}

Buffer i32_buffer(const std::vector<int32_t>& values, Device device) {
  Buffer b(DType::i32, Shape{int64_t(values.size())}, device);
  copy_bytes(b.view().data, device, values.data(), Device::cpu(), b.view().nbytes());
  return b;
}

struct AttentionCase {
  int64_t slots, max_seq_len, heads, kv_heads, head_dim;
  std::vector<int32_t> row_slots, row_positions;
};

void expect_attention_matches(const AttentionCase& c, DType dtype, double tolerance) {
  Rng rng(17);
  const int64_t n = int64_t(c.row_slots.size()), qkv_w = (c.heads + 2 * c.kv_heads) * c.head_dim;
  const Shape cache_shape{c.slots, c.max_seq_len, c.kv_heads, c.head_dim};
  // Random caches (earlier positions) and rows; the kv store writes the rows' own positions.
  const Buffer qkv = random_buffer(rng, Shape{n, qkv_w}, dtype);
  const Buffer k_cache = random_buffer(rng, cache_shape, dtype);
  const Buffer v_cache = random_buffer(rng, cache_shape, dtype);
  const Buffer slots = i32_buffer(c.row_slots, Device::cpu());
  const Buffer positions = i32_buffer(c.row_positions, Device::cpu());
  const Buffer gpu_qkv = on_gpu(qkv, dtype), gpu_k = on_gpu(k_cache, dtype);
  const Buffer gpu_v = on_gpu(v_cache, dtype);
  const Buffer gpu_slots = i32_buffer(c.row_slots, Device::cuda(0));
  const Buffer gpu_positions = i32_buffer(c.row_positions, Device::cuda(0));
  Buffer out(DType::f32, Shape{n, c.heads * c.head_dim});
  Buffer gpu_out(dtype, out.view().shape, Device::cuda(0));
  decode_kv_store(k_cache, v_cache, qkv, slots, positions);
  decode_attention(out, qkv, k_cache, v_cache, slots, positions);
  decode_kv_store(gpu_k, gpu_v, gpu_qkv, gpu_slots, gpu_positions);
  decode_attention(gpu_out, gpu_qkv, gpu_k, gpu_v, gpu_slots, gpu_positions);
  EXPECT_LE(rel_max(host(gpu_k), host(k_cache)), tolerance) << "keys stored";
  EXPECT_LE(rel_max(host(gpu_v), host(v_cache)), tolerance) << "values stored";
  EXPECT_LE(rel_max(host(gpu_out), host(out)), tolerance) << "attention";
}

TEST(CudaDecode, KernelsMatchTheCpu) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  // A decode step: rows of different slots and contexts, one past the 256-position tile.
  const AttentionCase step{4, 600, 6, 2, 20, {2, 0, 3, 1}, {0, 599, 300, 17}};
  // A prefill: consecutive positions of one slot.
  const AttentionCase prefill{2, 64, 4, 1, 64, std::vector<int32_t>(40, 1), {}};
  AttentionCase filled = prefill;
  for (int32_t p = 0; p < 40; ++p) filled.row_positions.push_back(p);
  expect_attention_matches(step, DType::f32, 1e-5);
  expect_attention_matches(filled, DType::f32, 1e-5);
  expect_attention_matches(step, DType::bf16, 1e-2);  // the bf16 output's rounding
}

LlamaConfig config() {
  LlamaConfig c;
  c.vocab_size = 301;
  c.hidden_size = 96;
  c.intermediate_size = 200;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 6;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  c.max_position_embeddings = 128;
  c.validate("test");
  return c;
}

// Three prompts, then steps of varying subsets; every logits row of the GPU generator against
// the CPU generator's.
void expect_generator_matches(DType dtype, double tolerance) {
  const LlamaConfig c = config();
  LlamaParams params(c);
  params.init_random(21, 0.1f);
  for (ParamGroup& g : params.groups()) {
    for (int64_t i = 0; i < g.data.numel(); ++i) {
      g.data.f32()[i] = representable(g.data.f32()[i], dtype);
    }
  }
  const LlamaParams gpu_params = params.placed(dtype, Device::cuda(0));
  BatchedGenerator cpu(params, 3, 64), gpu(gpu_params, 3, 64);
  const int64_t V = c.vocab_size;
  std::vector<float> want(3 * size_t(V)), got(3 * size_t(V));
  Rng rng(22);
  std::vector<int64_t> slots;
  for (const int64_t length : {5, 17, 1}) {
    std::vector<int32_t> prompt;
    for (int64_t t = 0; t < length; ++t) prompt.push_back(int32_t(rng.below(uint64_t(V))));
    slots.push_back(cpu.start(prompt, want.data()));
    EXPECT_EQ(gpu.start(prompt, got.data()), slots.back());
    EXPECT_LE(rel_max({got.begin(), got.begin() + V}, {want.begin(), want.begin() + V}), tolerance)
        << "prefill of " << length;
  }
  for (int step = 0; step < 12; ++step) {
    std::vector<int64_t> stepping =
        step % 3 == 0 ? std::vector<int64_t>{slots[2], slots[0]} : slots;
    std::vector<int32_t> tokens;
    for (size_t i = 0; i < stepping.size(); ++i) tokens.push_back(int32_t(rng.below(uint64_t(V))));
    cpu.step(stepping, tokens, want.data());
    gpu.step(stepping, tokens, got.data());
    const size_t used = stepping.size() * size_t(V);
    EXPECT_LE(
        rel_max({got.begin(), got.begin() + long(used)}, {want.begin(), want.begin() + long(used)}),
        tolerance)
        << "step " << step;
  }
}

TEST(CudaDecode, GeneratorMatchesTheCpuInF32) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  expect_generator_matches(DType::f32, 1e-4);
}

TEST(CudaDecode, GeneratorInBf16IsCloseToTheCpu) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  expect_generator_matches(DType::bf16, 5e-2);
}

}  // namespace
}  // namespace zerotune
