// Attention over the slotted cache (kernels/decode_attention.h), one task per (row, head): the
// scores q.k_j in simd::dot's fixed order, softmax with fast_exp and a sum in position order,
// then the value rows added in position order. Nothing in a task depends on the other rows, on
// where the row sits in the call or on the thread that runs it.
#include "kernels/decode_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backends/cpu/decode_simd.h"
#include "kernels/element_math.h"

namespace zerotune::cpu {
namespace {

// Multiply-adds of one call below which it runs on the calling thread: a decode step of a small
// model is microseconds of attention, less than forking the threads costs.
constexpr int64_t kMinParallelWork = 1 << 15;

// out_head: [Dh] = softmax(q . k_j / sqrt(Dh)) v_j over j < visible; keys, values: [visible, *]
// rows kv_width apart; scores: [visible] scratch.
void attend_head(float* out_head, const float* q, const float* keys, const float* values,
                 int64_t visible, const DecodeAttentionShape& s, float* scores) {
  const int64_t Dh = s.head_dim, kv_w = s.kv_width();
  const float scale = 1.0f / std::sqrt(static_cast<float>(Dh));
  float max_score = -INFINITY;
  for (int64_t j = 0; j < visible; ++j) {
    scores[j] = simd::dot(q, keys + j * kv_w, Dh) * scale;
    max_score = std::max(max_score, scores[j]);
  }
  float sum = 0.0f;
  for (int64_t j = 0; j < visible; ++j) {
    scores[j] = fast_exp(scores[j] - max_score);
    sum += scores[j];
  }
  const float inv = 1.0f / sum;
  std::memset(out_head, 0, static_cast<size_t>(Dh) * sizeof(float));
  for (int64_t j = 0; j < visible; ++j) {
    simd::add_scaled(out_head, scores[j] * inv, values + j * kv_w, Dh);
  }
}

}  // namespace

void decode_kv_store(float* k_cache, float* v_cache, const float* qkv, const int32_t* slots,
                     const int32_t* positions, const DecodeAttentionShape& s) {
  const int64_t kv_w = s.kv_width(), q_w = s.heads * s.head_dim, qkv_w = s.qkv_width();
  const size_t bytes = static_cast<size_t>(kv_w) * sizeof(float);
  for (int64_t i = 0; i < s.rows; ++i) {
    const int64_t at = (static_cast<int64_t>(slots[i]) * s.max_seq_len + positions[i]) * kv_w;
    std::memcpy(k_cache + at, qkv + i * qkv_w + q_w, bytes);
    std::memcpy(v_cache + at, qkv + i * qkv_w + q_w + kv_w, bytes);
  }
}

void decode_attention(float* out, const float* qkv, const float* k_cache, const float* v_cache,
                      const int32_t* slots, const int32_t* positions,
                      const DecodeAttentionShape& s) {
  const int64_t H = s.heads, Dh = s.head_dim, kv_w = s.kv_width(), qkv_w = s.qkv_width();
  const int64_t group = H / s.kv_heads, tasks = s.rows * H;
  int64_t longest = 0, work = 0;
  for (int64_t i = 0; i < s.rows; ++i) {
    longest = std::max<int64_t>(longest, positions[i] + 1);
    work += (positions[i] + 1) * H * Dh;
  }
#pragma omp parallel if (work >= kMinParallelWork)
  {
    std::vector<float> scores(static_cast<size_t>(longest));
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t i = task / H, h = task % H;
      const int64_t slot_start = static_cast<int64_t>(slots[i]) * s.max_seq_len * kv_w;
      const int64_t kv_offset = slot_start + (h / group) * Dh;
      attend_head(out + i * H * Dh + h * Dh, qkv + i * qkv_w + h * Dh, k_cache + kv_offset,
                  v_cache + kv_offset, positions[i] + 1, s, scores.data());
    }
  }
}

}  // namespace zerotune::cpu
