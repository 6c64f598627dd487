#include "model/generate.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/timer.h"
#include "kernels/element_math.h"
#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"

namespace zerotune {

namespace {
// Multiply-adds of one attention call below which it runs on the calling thread.
constexpr int64_t kMinParallelWork = 1 << 15;
}  // namespace

LlamaGenerator::LlamaGenerator(const LlamaParams& params, int64_t capacity)
    : params_(params),
      capacity_(capacity == 0 ? params.config().max_position_embeddings : capacity) {
  const LlamaConfig& c = params.config();
  ZT_CHECK(capacity_ > 0 && capacity_ <= c.max_position_embeddings, "LlamaGenerator: capacity ",
           capacity_, " must be in [1, max_position_embeddings = ", c.max_position_embeddings, "]");
  for (const ParamGroup& g : params.groups()) {
    ZT_CHECK(g.data.view().dtype == DType::f32 && g.data.view().device.is_cpu(),
             "LlamaGenerator: parameter group ", g.name, " is ", describe(g.data.view()), " on ",
             g.data.view().device.name(), "; generation runs on f32 CPU parameters");
  }
  rope_cos_ = Buffer(DType::f32, Shape{capacity_, c.head_dim / 2});
  rope_sin_ = Buffer(DType::f32, Shape{capacity_, c.head_dim / 2});
  rope_tables(rope_cos_, rope_sin_, c.rope_theta, c.rope_linear_factor);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    k_cache_.emplace_back(DType::f32, Shape{capacity_, c.kv_dim()});
    v_cache_.emplace_back(DType::f32, Shape{capacity_, c.kv_dim()});
  }
}

void LlamaGenerator::ensure_rows(int64_t n) {
  if (n == rows_) return;
  const LlamaConfig& c = config();
  const int64_t d = c.hidden_size, f = c.intermediate_size;
  rows_ = n;
  x_ = Buffer(DType::f32, Shape{n, d});
  xn_ = Buffer(DType::f32, Shape{n, d});
  rstd_ = Buffer(DType::f32, Shape{n});
  qkv_ = Buffer(DType::f32, Shape{n, c.qkv_dim()});
  attn_ = Buffer(DType::f32, Shape{n, c.q_dim()});
  gate_up_ = Buffer(DType::f32, Shape{n, 2 * f});
  h_ = Buffer(DType::f32, Shape{n, f});
  positions_ = Buffer(DType::i32, Shape{n});
}

// Row i (position p = start_pos + i) of query head h attends to cached positions 0..p of kv head
// h / (H / Hkv), as the causal training kernel does; softmax in fp32 with the same fast_exp.
// Every (row, head) task writes its own output slice, so the result does not depend on threads.
void LlamaGenerator::attend(int64_t l, int64_t n, int64_t start_pos) {
  const LlamaConfig& c = config();
  const int64_t H = c.num_attention_heads, Dh = c.head_dim, kv_w = c.kv_dim();
  const int64_t qkv_w = c.qkv_dim(), out_w = c.q_dim(), group = H / c.num_key_value_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(Dh));
  const float* qkv = qkv_.f32();
  const float* keys = k_cache_[static_cast<size_t>(l)].f32();
  const float* values = v_cache_[static_cast<size_t>(l)].f32();
  float* out = attn_.f32();
  const int64_t tasks = n * H;
  // A decoding step of a small model is microseconds of work; forking threads for it costs more.
  const bool parallel = tasks * (start_pos + n) * Dh >= kMinParallelWork;
#pragma omp parallel if (parallel)
  {
    std::vector<float> scores(static_cast<size_t>(start_pos + n));
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t i = task / H, h = task % H, g = h / group;
      const int64_t visible = start_pos + i + 1;
      const float* q = qkv + i * qkv_w + h * Dh;
      float max_score = -INFINITY;
      for (int64_t j = 0; j < visible; ++j) {
        const float* k = keys + j * kv_w + g * Dh;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int64_t e = 0; e < Dh; ++e) dot += q[e] * k[e];
        scores[static_cast<size_t>(j)] = dot * scale;
        max_score = std::max(max_score, dot * scale);
      }
      float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
      for (int64_t j = 0; j < visible; ++j) {
        scores[static_cast<size_t>(j)] = fast_exp(scores[static_cast<size_t>(j)] - max_score);
        sum += scores[static_cast<size_t>(j)];
      }
      const float inv = 1.0f / sum;
      float* o = out + i * out_w + h * Dh;
      std::memset(o, 0, static_cast<size_t>(Dh) * sizeof(float));
      for (int64_t j = 0; j < visible; ++j) {
        const float* v = values + j * kv_w + g * Dh;
        const float p = scores[static_cast<size_t>(j)] * inv;
#pragma omp simd
        for (int64_t e = 0; e < Dh; ++e) o[e] += p * v[e];
      }
    }
  }
}

// The training layer (LlamaModel::layer_forward) on n rows, with keys and values going through
// the cache: x <- x + o(attn(rope(qkv(norm1(x))))); x <- x + down(swiglu(gate_up(norm2(x)))).
void LlamaGenerator::layer_forward(int64_t l, int64_t n, int64_t start_pos) {
  const LlamaConfig& c = config();
  const LayerTensors w = params_.layer(l);
  rmsnorm_forward(xn_, rstd_, x_, w.input_norm, c.rms_norm_eps);
  linear_forward(qkv_, xn_, w.wqkv);
  rope_apply(qkv_, c.num_attention_heads + c.num_key_value_heads, positions_, rope_cos_, rope_sin_,
             RopeDirection::forward);
  const int64_t kv_w = c.kv_dim(), qkv_w = c.qkv_dim(), q_w = c.q_dim();
  float* k_cache = k_cache_[static_cast<size_t>(l)].f32();
  float* v_cache = v_cache_[static_cast<size_t>(l)].f32();
  const float* qkv = qkv_.f32();
  for (int64_t i = 0; i < n; ++i) {
    const size_t bytes = static_cast<size_t>(kv_w) * sizeof(float);
    std::memcpy(k_cache + (start_pos + i) * kv_w, qkv + i * qkv_w + q_w, bytes);
    std::memcpy(v_cache + (start_pos + i) * kv_w, qkv + i * qkv_w + q_w + kv_w, bytes);
  }
  attend(l, n, start_pos);
  linear_forward(x_, attn_, w.wo, Accumulate::yes);
  rmsnorm_forward(xn_, rstd_, x_, w.post_norm, c.rms_norm_eps);
  linear_forward(gate_up_, xn_, w.wgate_up);
  swiglu_forward(h_, gate_up_);
  linear_forward(x_, h_, w.wdown, Accumulate::yes);
}

std::vector<float> LlamaGenerator::forward_positions(const std::vector<int32_t>& ids,
                                                     int64_t start_pos) {
  const LlamaConfig& c = config();
  const int64_t n = static_cast<int64_t>(ids.size());
  ZT_CHECK(n > 0, "LlamaGenerator::forward_positions: no ids");
  ZT_CHECK(start_pos >= 0 && start_pos <= cached_, "LlamaGenerator::forward_positions: start_pos ",
           start_pos, " must be in [0, ", cached_, "] (the cached positions)");
  ZT_CHECK(start_pos + n <= capacity_, "LlamaGenerator::forward_positions: positions [", start_pos,
           ", ", start_pos + n, ") exceed the cache capacity ", capacity_);
  ZT_CHECK(c.sliding_window == 0 || start_pos + n <= c.sliding_window,
           "LlamaGenerator::forward_positions: position ", start_pos + n - 1,
           " is beyond the sliding window ", c.sliding_window, ", which is not implemented");
  for (int64_t i = 0; i < n; ++i) {
    const int32_t id = ids[static_cast<size_t>(i)];
    ZT_CHECK(id >= 0 && id < c.vocab_size, "LlamaGenerator::forward_positions: token id ", id,
             " at index ", i, " is outside the vocabulary [0, ", c.vocab_size, ")");
  }
  ensure_rows(n);
  int32_t* positions = positions_.view().ptr<int32_t>();
  for (int64_t i = 0; i < n; ++i) positions[i] = static_cast<int32_t>(start_pos + i);
  const Tensor ids_view(const_cast<int32_t*>(ids.data()), DType::i32, Shape{n});
  embedding_forward(x_, ids_view, params_.embedding());
  // The layers overwrite cache rows from start_pos on; should a kernel throw half way, only the
  // prefix before start_pos is still valid.
  cached_ = start_pos;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) layer_forward(l, n, start_pos);
  cached_ = start_pos + n;

  // Only the last row's logits are needed: its final norm and one [1, D] x [D, V] product.
  const Tensor last_x = x_.view().rows(n - 1, 1);
  const Tensor last_xn = xn_.view().rows(n - 1, 1);
  rmsnorm_forward(last_xn, rstd_.view().rows(n - 1, 1), last_x, params_.final_norm(),
                  c.rms_norm_eps);
  std::vector<float> logits(static_cast<size_t>(c.vocab_size));
  linear_forward(Tensor(logits.data(), DType::f32, Shape{1, c.vocab_size}), last_xn,
                 params_.head());
  return logits;
}

int32_t argmax_token(const std::vector<float>& logits) {
  ZT_CHECK(!logits.empty(), "argmax_token: empty logits");
  size_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[best]) best = i;  // strict: the first of equal maxima wins
  }
  return static_cast<int32_t>(best);
}

const char* stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::eos:
      return "eos";
    case StopReason::stop:
      return "stop";
    case StopReason::length:
      return "length";
  }
  return "?";
}

GenerateResult generate_greedy(LlamaGenerator& generator, const std::vector<int32_t>& prompt,
                               const GenerateOptions& options) {
  const int64_t prompt_len = static_cast<int64_t>(prompt.size());
  ZT_CHECK(prompt_len > 0, "generate: the prompt has no tokens");
  ZT_CHECK(options.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0, got ",
           options.max_new_tokens);
  ZT_CHECK(prompt_len + options.max_new_tokens <= generator.capacity(), "generate: the prompt's ",
           prompt_len, " tokens + ", options.max_new_tokens,
           " new tokens = ", prompt_len + options.max_new_tokens,
           " positions exceed the generator's capacity ", generator.capacity(),
           " (max_position_embeddings ", generator.config().max_position_embeddings, ")");
  GenerateResult result;
  generator.reset();
  if (options.max_new_tokens == 0) return result;
  const Timer timer;
  std::vector<float> logits = generator.forward_positions(prompt, 0);
  for (int64_t pos = prompt_len;; ++pos) {
    const int32_t next = argmax_token(logits);
    result.new_tokens.push_back(next);
    if (next == options.eos_id) {
      result.stopped = StopReason::eos;
      break;
    }
    if (next == options.stop_id) {
      result.stopped = StopReason::stop;
      break;
    }
    if (static_cast<int64_t>(result.new_tokens.size()) == options.max_new_tokens) {
      result.stopped = StopReason::length;
      break;
    }
    logits = generator.forward_positions({next}, pos);
  }
  result.seconds = timer.seconds();
  return result;
}

}  // namespace zerotune
