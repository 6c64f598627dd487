#include "kernels/cross_entropy.h"

#include "backends/cpu/scratch.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/element_math.h"
#include "kernels/matmul.h"

namespace zerotune::cpu {
namespace {

// Rows per chunk: enough for efficient GEMMs, few enough that a chunk of fp32 logits stays
// near 128 MiB whatever the vocabulary.
int64_t default_chunk_rows(int64_t v) {
  const int64_t budget = (int64_t{128} << 20) / (4 * v);
  return std::clamp<int64_t>(budget, 16, 1024);
}

// In place: logits row -> scale * (softmax - onehot(target)); returns -log softmax[target].
// The exponentials are summed in double: over 32k-128k terms a float sum loses ~1e-5.
float softmax_xent_row(float* row, int64_t v, int32_t target, float scale, bool want_grad) {
  float max_logit = -INFINITY;
#pragma omp simd reduction(max : max_logit)
  for (int64_t j = 0; j < v; ++j) max_logit = row[j] > max_logit ? row[j] : max_logit;
  const float target_logit = row[target];
  double sum = 0.0;
  if (want_grad) {
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < v; ++j) {
      row[j] = fast_exp(row[j] - max_logit);
      sum += row[j];
    }
    const float factor = static_cast<float>(scale / sum);
#pragma omp simd
    for (int64_t j = 0; j < v; ++j) row[j] *= factor;
    row[target] -= scale;
  } else {
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < v; ++j) sum += fast_exp(row[j] - max_logit);
  }
  return max_logit + static_cast<float>(std::log(sum)) - target_logit;
}

}  // namespace

CrossEntropyResult lm_head_cross_entropy(const float* x, const float* w, const int32_t* targets,
                                         int64_t n, int64_t d, int64_t v, float scale, float* dx,
                                         float* dw, int64_t chunk_rows) {
  const bool want_grad = dx != nullptr;
  std::vector<int64_t> counted;  // rows whose target counts; the others cost nothing
  counted.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (targets[i] != kIgnoreIndex) counted.push_back(i);
  }
  if (want_grad) std::memset(dx, 0, static_cast<size_t>(n * d) * sizeof(float));
  CrossEntropyResult result;
  result.count = static_cast<int64_t>(counted.size());
  if (counted.empty()) return result;

  const int64_t chunk = chunk_rows > 0 ? chunk_rows : default_chunk_rows(v);
  const int64_t cap = std::min<int64_t>(chunk, result.count);
  float* xc = scratch_floats(Scratch::lm_head_rows, cap * d);        // [C, D]
  float* logits = scratch_floats(Scratch::lm_head_logits, cap * v);  // [C, V]
  float* dxc = want_grad ? scratch_floats(Scratch::lm_head_grad_rows, cap * d) : nullptr;
  float* row_loss = scratch_floats(Scratch::lm_head_row_loss, cap);  // [C]
  for (int64_t c0 = 0; c0 < result.count; c0 += chunk) {
    const int64_t rows = std::min(chunk, result.count - c0);
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(xc + r * d, x + counted[static_cast<size_t>(c0 + r)] * d,
                  static_cast<size_t>(d) * sizeof(float));
    }
    gemm(false, true, rows, v, d, 1.0f, xc, d, w, d, 0.0f, logits, v);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int32_t target = targets[counted[static_cast<size_t>(c0 + r)]];
      row_loss[r] = softmax_xent_row(logits + r * v, v, target, scale, want_grad);
    }
    for (int64_t r = 0; r < rows; ++r) result.loss_sum += row_loss[r];
    if (!want_grad) continue;
    gemm(false, false, rows, d, v, 1.0f, logits, v, w, d, 0.0f, dxc, d);
    if (dw) gemm(true, false, v, d, rows, 1.0f, logits, v, xc, d, 1.0f, dw, d);
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(dx + counted[static_cast<size_t>(c0 + r)] * d, dxc + r * d,
                  static_cast<size_t>(d) * sizeof(float));
    }
  }
  return result;
}

}  // namespace zerotune::cpu
