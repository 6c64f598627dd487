// The KV-cached generator against a plain full recompute: at every step, the cached logits must
// equal those of a forward over the whole sequence so far (built here from the kernels, with the
// training attention kernel over the full prefix, so the cache logic is what is tested). Greedy
// tokens against PyTorch are tests/reference/check_generate.py.
#include "model/generate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>

#include "core/rng.h"
#include "kernels/attention.h"
#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "support/errors.h"
#include "support/tiny_llama.h"

namespace zerotune {
namespace {

constexpr double kTol = 1e-5;

enum class Tied : uint8_t { no, yes };

LlamaConfig make_config(int64_t heads, int64_t kv_heads, int64_t head_dim, Tied tied) {
  LlamaConfig c;
  c.vocab_size = 97;
  c.hidden_size = 48;
  c.intermediate_size = 100;
  c.num_hidden_layers = 3;
  c.num_attention_heads = heads;
  c.num_key_value_heads = kv_heads;
  c.head_dim = head_dim;
  c.max_position_embeddings = 256;
  c.tie_word_embeddings = tied == Tied::yes;
  c.validate("generate_test");
  return c;
}

// GQA 6 -> 2 (untied), MHA (tied), MQA 4 -> 1 with H*Dh != D.
std::vector<LlamaConfig> configs() {
  return {make_config(6, 2, 8, Tied::no), make_config(4, 4, 12, Tied::yes),
          make_config(4, 1, 16, Tied::no)};
}

// Logits [V] of the last of `ids` by a forward over all of them at positions 0..T-1.
std::vector<float> full_forward_last_logits(const LlamaParams& p, const std::vector<int32_t>& ids) {
  const LlamaConfig& c = p.config();
  const int64_t T = static_cast<int64_t>(ids.size()), D = c.hidden_size, F = c.intermediate_size;
  Buffer cos(DType::f32, Shape{c.max_position_embeddings, c.head_dim / 2});
  Buffer sin(DType::f32, Shape{c.max_position_embeddings, c.head_dim / 2});
  rope_tables(cos, sin, c.rope_theta, c.rope_scaling);
  Buffer id_buf(DType::i32, Shape{T}), positions(DType::i32, Shape{T});
  for (int64_t t = 0; t < T; ++t) {
    id_buf.view().ptr<int32_t>()[t] = ids[size_t(t)];
    positions.view().ptr<int32_t>()[t] = static_cast<int32_t>(t);
  }
  Buffer x(DType::f32, Shape{T, D}), xn(DType::f32, Shape{T, D}), rstd(DType::f32, Shape{T});
  Buffer qkv(DType::f32, Shape{T, c.qkv_dim()}), attn(DType::f32, Shape{T, c.q_dim()});
  Buffer lse(DType::f32, Shape{1, c.num_attention_heads, T});
  Buffer gate_up(DType::f32, Shape{T, 2 * F}), h(DType::f32, Shape{T, F});
  const AttentionShape shape{1, T, c.num_attention_heads, c.num_key_value_heads, c.head_dim};
  embedding_forward(x, id_buf, p.embedding());
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LayerTensors w = p.layer(l);
    rmsnorm_forward(xn, rstd, x, w.input_norm, c.rms_norm_eps);
    linear_forward(qkv, xn, w.wqkv);
    rope_apply(qkv, c.num_attention_heads + c.num_key_value_heads, positions, cos, sin,
               RopeDirection::forward);
    attention_forward(attn, lse, qkv, Tensor(), shape);
    linear_forward(x, attn, w.wo, Accumulate::yes);
    rmsnorm_forward(xn, rstd, x, w.post_norm, c.rms_norm_eps);
    linear_forward(gate_up, xn, w.wgate_up);
    swiglu_forward(h, gate_up);
    linear_forward(x, h, w.wdown, Accumulate::yes);
  }
  rmsnorm_forward(xn, rstd, x, p.final_norm(), c.rms_norm_eps);
  Buffer logits(DType::f32, Shape{T, c.vocab_size});
  linear_forward(logits, xn, p.head());
  const float* last = logits.f32() + (T - 1) * c.vocab_size;
  return std::vector<float>(last, last + c.vocab_size);
}

// ||a - b|| / ||b||.
double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    norm += double(b[i]) * b[i];
  }
  return std::sqrt(diff / norm);
}

TEST(Generate, CachedLogitsEqualFullRecomputeAtEveryStep) {
  for (const LlamaConfig& c : configs()) {
    SCOPED_TRACE(c.summary());
    const LlamaParams p = random_params(c, 11);
    Rng rng(3);
    std::vector<int32_t> seq = random_ids(rng, 9, c.vocab_size);
    LlamaGenerator gen(p, 40);
    std::vector<float> logits = gen.forward_positions(seq, 0);
    EXPECT_LT(rel_err(logits, full_forward_last_logits(p, seq)), kTol) << "prefill";
    // Teacher-forced random tokens: every step checks another cache length.
    for (int step = 0; step < 25; ++step) {
      const int32_t next = random_ids(rng, 1, c.vocab_size)[0];
      logits = gen.forward_positions({next}, int64_t(seq.size()));
      seq.push_back(next);
      EXPECT_LT(rel_err(logits, full_forward_last_logits(p, seq)), kTol) << "step " << step;
    }
    EXPECT_EQ(gen.cached_length(), int64_t(seq.size()));
  }
}

TEST(Generate, ChunkedPrefillAndRewindMatchOneShot) {
  const LlamaConfig c = configs()[0];
  const LlamaParams p = random_params(c, 12);
  Rng rng(4);
  // Long enough that the prefill's attention runs on several threads.
  const std::vector<int32_t> seq = random_ids(rng, 150, c.vocab_size);
  LlamaGenerator gen(p);
  EXPECT_EQ(gen.capacity(), c.max_position_embeddings);
  const std::vector<float> whole = gen.forward_positions(seq, 0);
  EXPECT_LT(rel_err(whole, full_forward_last_logits(p, seq)), kTol);

  gen.reset();
  gen.forward_positions({seq.begin(), seq.begin() + 60}, 0);
  gen.forward_positions({seq.begin() + 60, seq.begin() + 137}, 60);
  std::vector<float> chunked;
  for (size_t i = 137; i < seq.size(); ++i) chunked = gen.forward_positions({seq[i]}, int64_t(i));
  EXPECT_LT(rel_err(chunked, whole), kTol);

  // Rewinding to position 80 overwrites the cache from there on.
  std::vector<int32_t> other(seq.begin(), seq.begin() + 80);
  const std::vector<int32_t> tail = random_ids(rng, 5, c.vocab_size);
  other.insert(other.end(), tail.begin(), tail.end());
  const std::vector<float> rewound = gen.forward_positions(tail, 80);
  EXPECT_EQ(gen.cached_length(), 85);
  EXPECT_LT(rel_err(rewound, full_forward_last_logits(p, other)), kTol);
}

TEST(Generate, RerunIsBitIdentical) {
  const LlamaConfig c = configs()[2];
  const LlamaParams p = random_params(c, 13);
  Rng rng(5);
  const std::vector<int32_t> prompt = random_ids(rng, 7, c.vocab_size);
  LlamaGenerator gen(p, 40);
  GenerateOptions options;
  options.max_new_tokens = 20;
  const GenerateResult a = generate_greedy(gen, prompt, options);
  const std::vector<float> logits_a = gen.forward_positions({3}, gen.cached_length());
  const GenerateResult b = generate_greedy(gen, prompt, options);
  const std::vector<float> logits_b = gen.forward_positions({3}, gen.cached_length());
  EXPECT_EQ(a.new_tokens, b.new_tokens);
  EXPECT_EQ(0, std::memcmp(logits_a.data(), logits_b.data(), logits_a.size() * sizeof(float)));
}

// Each greedy token is the argmax of a full recompute over the prompt and the tokens before it.
TEST(Generate, GreedyTokensAreArgmaxOfFullRecompute) {
  for (const LlamaConfig& c : configs()) {
    SCOPED_TRACE(c.summary());
    const LlamaParams p = random_params(c, 21);
    Rng rng(6);
    const std::vector<int32_t> prompt = random_ids(rng, 5, c.vocab_size);
    LlamaGenerator gen(p, 30);
    GenerateOptions options;
    options.max_new_tokens = 25;
    const GenerateResult r = generate_greedy(gen, prompt, options);
    ASSERT_EQ(r.new_tokens.size(), 25u);
    EXPECT_EQ(r.stopped, StopReason::length);
    std::vector<int32_t> seq = prompt;
    for (const int32_t token : r.new_tokens) {
      const std::vector<float> ref = full_forward_last_logits(p, seq);
      const float best = *std::max_element(ref.begin(), ref.end());
      // Equal ids, or a near tie that float rounding may break either way.
      EXPECT_TRUE(token == argmax_token(ref) || best - ref[size_t(token)] < 1e-5f * std::abs(best))
          << "at position " << seq.size();
      seq.push_back(token);
    }
  }
}

TEST(Generate, StopsAtEosStopTokenOrLength) {
  const LlamaConfig c = configs()[0];
  const LlamaParams p = random_params(c, 14);
  Rng rng(7);
  const std::vector<int32_t> prompt = random_ids(rng, 4, c.vocab_size);
  LlamaGenerator gen(p, 40);
  GenerateOptions options;
  options.max_new_tokens = 12;
  const GenerateResult free_run = generate_greedy(gen, prompt, options);
  ASSERT_EQ(free_run.new_tokens.size(), 12u);
  EXPECT_EQ(free_run.stopped, StopReason::length);
  EXPECT_STREQ(stop_reason_name(free_run.stopped), "length");

  // Stopping after the token that greedy decoding emits at index k (its first occurrence).
  const size_t k = 5;
  const int32_t token = free_run.new_tokens[k];
  const size_t first =
      size_t(std::find(free_run.new_tokens.begin(), free_run.new_tokens.end(), token) -
             free_run.new_tokens.begin());
  const std::vector<int32_t> expected(free_run.new_tokens.begin(),
                                      free_run.new_tokens.begin() + long(first) + 1);
  GenerateOptions with_stop = options;
  with_stop.stop_id = token;
  const GenerateResult stopped = generate_greedy(gen, prompt, with_stop);
  EXPECT_EQ(stopped.new_tokens, expected);
  EXPECT_EQ(stopped.stopped, StopReason::stop);

  GenerateOptions with_eos = options;
  with_eos.eos_id = token;
  const GenerateResult eos = generate_greedy(gen, prompt, with_eos);
  EXPECT_EQ(eos.new_tokens, expected);
  EXPECT_EQ(eos.stopped, StopReason::eos);
  EXPECT_STREQ(stop_reason_name(eos.stopped), "eos");

  GenerateOptions none = options;
  none.max_new_tokens = 0;
  const GenerateResult empty = generate_greedy(gen, prompt, none);
  EXPECT_TRUE(empty.new_tokens.empty());
  EXPECT_EQ(empty.stopped, StopReason::length);
}

TEST(Generate, ArgmaxTiesGoToTheLowestId) {
  EXPECT_EQ(argmax_token({0.5f, 2.0f, -1.0f, 2.0f}), 1);
  EXPECT_EQ(argmax_token({-3.0f, -3.0f}), 0);
  EXPECT_EQ(argmax_token({1.0f, 1.0f, 7.0f}), 2);
  EXPECT_THROW(argmax_token({}), Error);
}

TEST(Generate, RejectsBadInput) {
  const LlamaConfig c = configs()[0];
  const LlamaParams p = random_params(c, 15);
  expect_error([&] { [[maybe_unused]] LlamaGenerator too_long(p, c.max_position_embeddings + 1); },
               "must be in [1, max_position_embeddings = 256]");
  LlamaGenerator gen(p, 10);
  expect_error(
      [&] {
        gen.forward_positions({1, 2, int32_t(c.vocab_size)}, 0);
      },
      "token id 97 at index 2 is outside the vocabulary [0, 97)");
  expect_error([&] { gen.forward_positions({-1}, 0); }, "token id -1");
  expect_error([&] { gen.forward_positions({}, 0); }, "no ids");
  expect_error([&] { gen.forward_positions({1}, 1); }, "start_pos 1 must be in [0, 0]");
  expect_error([&] { gen.forward_positions(std::vector<int32_t>(11, 1), 0); },
               "positions [0, 11) exceed the cache capacity 10");
  GenerateOptions options;
  options.max_new_tokens = 8;
  expect_error(
      [&] {
        generate_greedy(gen, {1, 2, 3}, options);
      },
      "3 tokens + 8 new tokens = 11 positions exceed the generator's capacity 10");
  expect_error([&] { generate_greedy(gen, {}, options); }, "the prompt has no tokens");
  // A failed call leaves the cache usable.
  gen.reset();
  EXPECT_EQ(gen.forward_positions({1, 2}, 0).size(), size_t(c.vocab_size));
  EXPECT_EQ(gen.cached_length(), 2);
}

}  // namespace
}  // namespace zerotune
