#include "kernels/attention.h"

#include "backends/cpu/scratch.h"

#include <omp.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/element_math.h"
#include "kernels/matmul.h"

namespace zerotune::cpu {
namespace {

// Query rows are processed in blocks; a block only multiplies against the keys it can see,
// which halves the causal GEMM work compared with full T x T scores.
constexpr int64_t kQueryBlock = 128;

// first_key[t]: the first key position row t may attend to (the start of its segment run).
void segment_starts(const int32_t* segments, int64_t seq_len, int64_t* first_key) {
  for (int64_t t = 0; t < seq_len; ++t) {
    first_key[t] = (segments && t > 0 && segments[t] == segments[t - 1]) ? first_key[t - 1]
                                                                         : (segments ? t : 0);
  }
}

struct Block {
  int64_t r0, r1;  // query rows [r0, r1)
  int64_t k0, kn;  // keys [k0, k0 + kn), kn = r1 - k0
};

Block query_block(int64_t qb, int64_t seq_len, const int64_t* first_key) {
  Block blk;
  blk.r0 = qb * kQueryBlock;
  blk.r1 = std::min(seq_len, blk.r0 + kQueryBlock);
  blk.k0 = first_key[blk.r0];  // runs are contiguous, so the block's first row sees the least
  blk.kn = blk.r1 - blk.k0;
  return blk;
}

// Turns scaled scores into probabilities P = exp(S - lse) over each row's visible keys
// [first_key[i], i], zero elsewhere. With lse_out, computes and stores lse; otherwise reads it.
void softmax_rows(float* scores, const Block& blk, const int64_t* first_key, float* lse_out,
                  const float* lse_in) {
  for (int64_t i = blk.r0; i < blk.r1; ++i) {
    float* row = scores + (i - blk.r0) * blk.kn;
    const int64_t lo = first_key[i] - blk.k0, hi = i - blk.k0 + 1;  // visible [lo, hi)
    float lse;
    if (lse_out) {
      float max_score = -INFINITY;
#pragma omp simd reduction(max : max_score)
      for (int64_t j = lo; j < hi; ++j) max_score = row[j] > max_score ? row[j] : max_score;
      float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
      for (int64_t j = lo; j < hi; ++j) {
        row[j] = fast_exp(row[j] - max_score);
        sum += row[j];
      }
      const float inv = 1.0f / sum;
#pragma omp simd
      for (int64_t j = lo; j < hi; ++j) row[j] *= inv;
      lse = max_score + std::log(sum);
      lse_out[i] = lse;
    } else {
      lse = lse_in[i];
#pragma omp simd
      for (int64_t j = lo; j < hi; ++j) row[j] = fast_exp(row[j] - lse);
    }
    for (int64_t j = 0; j < lo; ++j) row[j] = 0.0f;
    for (int64_t j = hi; j < blk.kn; ++j) row[j] = 0.0f;
  }
}

}  // namespace

void attention_forward(float* out, float* lse, const float* qkv, const int32_t* segments,
                       const AttentionShape& s) {
  const int64_t T = s.seq_len, Dh = s.head_dim, W = s.qkv_width(), out_w = s.n_heads * Dh;
  const int64_t group = s.n_heads / s.n_kv_heads;
  const int64_t q_blocks = (T + kQueryBlock - 1) / kQueryBlock;
  const float scale = 1.0f / std::sqrt(static_cast<float>(Dh));
  const int64_t tasks = s.batch * s.n_heads * q_blocks;
#pragma omp parallel
  {
    std::vector<float> scores(static_cast<size_t>(kQueryBlock * T));
    std::vector<int64_t> first_key(static_cast<size_t>(T));
    int64_t keys_for_batch = -1;
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t b = task / (s.n_heads * q_blocks);
      const int64_t h = (task / q_blocks) % s.n_heads;
      const int64_t qb = task % q_blocks;
      if (keys_for_batch != b) {
        segment_starts(segments ? segments + b * T : nullptr, T, first_key.data());
        keys_for_batch = b;
      }
      const int64_t g = h / group;
      const float* base = qkv + b * T * W;
      const float* q = base + h * Dh;
      const float* k = base + (s.n_heads + g) * Dh;
      const float* v = base + (s.n_heads + s.n_kv_heads + g) * Dh;
      const Block blk = query_block(qb, T, first_key.data());
      const int64_t rows = blk.r1 - blk.r0;
      gemm(false, true, rows, blk.kn, Dh, scale, q + blk.r0 * W, W, k + blk.k0 * W, W, 0.0f,
           scores.data(), blk.kn);
      softmax_rows(scores.data(), blk, first_key.data(), lse + (b * s.n_heads + h) * T, nullptr);
      gemm(false, false, rows, Dh, blk.kn, 1.0f, scores.data(), blk.kn, v + blk.k0 * W, W, 0.0f,
           out + (b * T + blk.r0) * out_w + h * Dh, out_w);
    }
  }
}

// With P the probabilities and D_i = sum_d dO_i O_i (flash-attention's identity):
// dV = P^T dO, dP = dO V^T, dS = P * (dP - D), dQ = scale dS K, dK = scale dS^T Q.
void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* out,
                        const float* lse, const int32_t* segments, const AttentionShape& s) {
  const int64_t T = s.seq_len, Dh = s.head_dim, W = s.qkv_width(), out_w = s.n_heads * Dh;
  const int64_t H = s.n_heads, Hkv = s.n_kv_heads, group = H / Hkv;
  const int64_t q_blocks = (T + kQueryBlock - 1) / kQueryBlock;
  const float scale = 1.0f / std::sqrt(static_cast<float>(Dh));
  // Query heads of one group write their dK/dV into private slices, summed in head order
  // afterwards, so that heads run in parallel and the result does not depend on scheduling.
  // Without grouping each head owns its kv slot and writes dqkv directly.
  float* private_kv = nullptr;  // [B, H, 2, T, Dh]
  if (group > 1) {
    const int64_t n = s.batch * H * T * Dh * 2;
    private_kv = scratch_floats(Scratch::attention_kv_grads, n);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) private_kv[i] = 0.0f;
  }
  const int64_t rows_total = s.batch * T;
  if (group == 1) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows_total; ++r) {
      std::memset(dqkv + r * W + H * Dh, 0, static_cast<size_t>(2 * Hkv * Dh) * sizeof(float));
    }
  }
  const int64_t tasks = s.batch * H;
#pragma omp parallel
  {
    std::vector<float> probs(static_cast<size_t>(kQueryBlock * T));
    std::vector<float> dscores(static_cast<size_t>(kQueryBlock * T));
    std::vector<float> row_dot(static_cast<size_t>(kQueryBlock));
    std::vector<int64_t> first_key(static_cast<size_t>(T));
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t b = task / H, h = task % H, g = h / group;
      segment_starts(segments ? segments + b * T : nullptr, T, first_key.data());
      const float* base = qkv + b * T * W;
      const float* q = base + h * Dh;
      const float* k = base + (H + g) * Dh;
      const float* v = base + (H + Hkv + g) * Dh;
      const float* o = out + b * T * out_w + h * Dh;
      const float* dO = dout + b * T * out_w + h * Dh;
      float* dq = dqkv + b * T * W + h * Dh;
      float *dk, *dv;
      int64_t ld_kv;
      if (group > 1) {
        dk = private_kv + ((b * H + h) * 2) * T * Dh;
        dv = dk + T * Dh;
        ld_kv = Dh;
      } else {
        dk = dqkv + b * T * W + (H + g) * Dh;
        dv = dqkv + b * T * W + (H + Hkv + g) * Dh;
        ld_kv = W;
      }
      for (int64_t qb = 0; qb < q_blocks; ++qb) {
        const Block blk = query_block(qb, T, first_key.data());
        const int64_t rows = blk.r1 - blk.r0;
        gemm(false, true, rows, blk.kn, Dh, scale, q + blk.r0 * W, W, k + blk.k0 * W, W, 0.0f,
             probs.data(), blk.kn);
        softmax_rows(probs.data(), blk, first_key.data(), nullptr, lse + (b * H + h) * T);
        gemm(false, true, rows, blk.kn, Dh, 1.0f, dO + blk.r0 * out_w, out_w, v + blk.k0 * W, W,
             0.0f, dscores.data(), blk.kn);
        for (int64_t i = 0; i < rows; ++i) {
          const float* oi = o + (blk.r0 + i) * out_w;
          const float* gi = dO + (blk.r0 + i) * out_w;
          float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
          for (int64_t d = 0; d < Dh; ++d) dot += oi[d] * gi[d];
          row_dot[static_cast<size_t>(i)] = dot;
        }
        for (int64_t i = 0; i < rows; ++i) {
          float* ds = dscores.data() + i * blk.kn;
          const float* p = probs.data() + i * blk.kn;
          const float di = row_dot[static_cast<size_t>(i)];
#pragma omp simd
          for (int64_t j = 0; j < blk.kn; ++j) ds[j] = p[j] * (ds[j] - di);
        }
        gemm(false, false, rows, Dh, blk.kn, scale, dscores.data(), blk.kn, k + blk.k0 * W, W, 0.0f,
             dq + blk.r0 * W, W);
        gemm(true, false, blk.kn, Dh, rows, scale, dscores.data(), blk.kn, q + blk.r0 * W, W, 1.0f,
             dk + blk.k0 * ld_kv, ld_kv);
        gemm(true, false, blk.kn, Dh, rows, 1.0f, probs.data(), blk.kn, dO + blk.r0 * out_w, out_w,
             1.0f, dv + blk.k0 * ld_kv, ld_kv);
      }
    }
  }
  if (group > 1) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows_total; ++r) {
      const int64_t b = r / T, t = r % T;
      for (int64_t g = 0; g < Hkv; ++g) {
        float* dk = dqkv + r * W + (H + g) * Dh;
        float* dv = dqkv + r * W + (H + Hkv + g) * Dh;
        for (int64_t d = 0; d < Dh; ++d) dk[d] = dv[d] = 0.0f;
        for (int64_t h = g * group; h < (g + 1) * group; ++h) {
          const float* src = private_kv + ((b * H + h) * 2) * T * Dh + t * Dh;
#pragma omp simd
          for (int64_t d = 0; d < Dh; ++d) {
            dk[d] += src[d];
            dv[d] += src[T * Dh + d];
          }
        }
      }
    }
  }
}

}  // namespace zerotune::cpu
