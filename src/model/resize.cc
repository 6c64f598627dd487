#include "model/resize.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/rng.h"

namespace zerotune {

namespace {

// Rows centred per block: 64 x D f32 stays in L2 while every tile of C passes over it.
constexpr int64_t kCovarianceBlockRows = 64;
// f32 lanes of one vector register (GCC/Clang vector extension), so that a tile's accumulators
// stay in registers: 16 with AVX-512, else 8 (AVX; two SSE/NEON registers).
#ifdef __AVX512F__
constexpr int kLanes = 16;
#else
constexpr int kLanes = 8;
#endif
typedef float Lanes __attribute__((vector_size(kLanes * sizeof(float))));
constexpr int64_t kTileRows = 4, kTileCols = 2 * kLanes;

std::vector<double> row_mean(const float* rows, int64_t count, int64_t dim) {
  std::vector<double> mean(static_cast<size_t>(dim), 0.0);
  for (int64_t r = 0; r < count; ++r) {
    const float* row = rows + r * dim;
    for (int64_t d = 0; d < dim; ++d) mean[static_cast<size_t>(d)] += row[d];
  }
  for (double& m : mean) m /= static_cast<double>(count);
  return mean;
}

// C[i0..i0+4, j0..j0+kTileCols] += X[:, i0..]^T X[:, j0..] over the n rows of x [n, stride]:
// eight accumulator registers, two loads and four broadcasts per row. Every entry is one lane
// summed over rows in order (no reassociation), so the result does not depend on the thread count.
void gram_tile(const float* x, int64_t n, int64_t stride, int64_t i0, int64_t j0, double* c,
               int64_t ldc) {
  Lanes acc[kTileRows][2] = {};
  for (int64_t r = 0; r < n; ++r) {
    const float* row = x + r * stride;
    Lanes lo, hi;
    std::memcpy(&lo, row + j0, sizeof(lo));
    std::memcpy(&hi, row + j0 + kLanes, sizeof(hi));
    for (int64_t a = 0; a < kTileRows; ++a) {
      const float xa = row[i0 + a];
      acc[a][0] += xa * lo;
      acc[a][1] += xa * hi;
    }
  }
  for (int64_t a = 0; a < kTileRows; ++a) {
    double* out = c + (i0 + a) * ldc + j0;
    for (int b = 0; b < kLanes; ++b) {
      out[b] += acc[a][0][b];
      out[b + kLanes] += acc[a][1][b];
    }
  }
}

// The biased (1/N) covariance of the rows as transformers computes it (centred f32 rows,
// C = X^T X / N), lower triangle only, [Dp, Dp] with Dp = D rounded up to the tile width (the
// padding columns are zero). f32 within a block of rows, f64 across blocks; each entry is summed by
// one thread in a fixed order, which a BLAS GEMM does not promise.
std::vector<double> row_covariance(const float* rows, int64_t count, int64_t dim,
                                   const std::vector<double>& mean, int64_t padded) {
  std::vector<double> covariance(static_cast<size_t>(padded * padded), 0.0);
  const int64_t block = std::min(count, kCovarianceBlockRows);
  std::vector<float> centred(static_cast<size_t>(block * padded), 0.0f);  // [block, Dp]
  for (int64_t start = 0; start < count; start += block) {
    const int64_t n = std::min(block, count - start);
    for (int64_t r = 0; r < n; ++r) {
      const float* row = rows + (start + r) * dim;
      float* out = centred.data() + r * padded;
      for (int64_t d = 0; d < dim; ++d) {
        out[d] = row[d] - static_cast<float>(mean[static_cast<size_t>(d)]);
      }
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i0 = 0; i0 < padded; i0 += kTileRows) {
      for (int64_t j0 = 0; j0 < i0 + kTileRows; j0 += kTileCols) {
        gram_tile(centred.data(), n, padded, i0, j0, covariance.data(), padded);
      }
    }
  }
  for (double& v : covariance) v /= static_cast<double>(count);
  return covariance;
}

void log_mean_only(const char* tensor, const char* why) {
  std::fprintf(stderr,
               "zerotune: resize_vocab: %s: new rows set to the mean of the old rows (%s)\n",
               tensor, why);
}

// Copies the old rows of `src` [V_old, D] into `dst` [V_new, D] and fills the new ones.
}  // namespace

void resize_vocab_rows(const char* name, const Tensor& src, const Tensor& dst, Rng& rng) {
  const int64_t old_rows = src.dim(0), new_rows = dst.dim(0), dim = src.dim(1);
  const float* old_data = src.f32();
  float* new_data = dst.f32();
  std::memcpy(new_data, old_data, static_cast<size_t>(src.nbytes()));
  if (new_rows == old_rows) return;

  const std::vector<double> mean = row_mean(old_data, old_rows, dim);
  std::vector<double> factor;  // lower Cholesky factor of scale * covariance; empty: mean only
  if (dim > kResizeMaxCovarianceDim) {
    log_mean_only(name, "model dim above the covariance limit");
  } else {
    const int64_t padded = (dim + kTileCols - 1) / kTileCols * kTileCols;
    const std::vector<double> covariance = row_covariance(old_data, old_rows, dim, mean, padded);
    factor.assign(static_cast<size_t>(dim * dim), 0.0);
    for (int64_t i = 0; i < dim; ++i) {
      for (int64_t j = 0; j <= i; ++j) {
        factor[static_cast<size_t>(i * dim + j)] =
            kResizeCovarianceScale * covariance[static_cast<size_t>(i * padded + j)];
      }
    }
    if (!cholesky_in_place(factor.data(), dim)) {
      factor.clear();
      log_mean_only(name, "covariance not positive definite");
    }
  }
  std::vector<double> z(static_cast<size_t>(dim));
  for (int64_t r = old_rows; r < new_rows; ++r) {
    float* row = new_data + r * dim;
    if (factor.empty()) {
      for (int64_t d = 0; d < dim; ++d) row[d] = static_cast<float>(mean[static_cast<size_t>(d)]);
      continue;
    }
    for (double& v : z) v = rng.normal();
    // row = mean + L z: a draw from N(mean, L L^T).
    for (int64_t i = 0; i < dim; ++i) {
      const double* l_row = factor.data() + i * dim;
      double deviation = 0.0;
      for (int64_t j = 0; j <= i; ++j) deviation += l_row[j] * z[static_cast<size_t>(j)];
      row[i] = static_cast<float>(mean[static_cast<size_t>(i)] + deviation);
    }
  }
}

namespace {

bool is_vocab_matrix(const ParamView& view) {
  return view.name == "model.embed_tokens.weight" || view.name == "lm_head.weight";
}

}  // namespace

bool cholesky_in_place(double* a, int64_t n) {
  // Cholesky-Crout by columns: column j's entries below the diagonal are independent dot
  // products of row prefixes, so they run in parallel and each keeps a fixed summation order.
  for (int64_t j = 0; j < n; ++j) {
    double* row_j = a + j * n;
    double pivot = row_j[j];
    for (int64_t k = 0; k < j; ++k) pivot -= row_j[k] * row_j[k];
    if (!(pivot > 0.0) || !std::isfinite(pivot)) return false;
    const double diagonal = std::sqrt(pivot);
    row_j[j] = diagonal;
#pragma omp parallel for schedule(static) if (n - j > 128)
    for (int64_t i = j + 1; i < n; ++i) {
      double* row_i = a + i * n;
      double s = 0.0;
#pragma omp simd reduction(+ : s)
      for (int64_t k = 0; k < j; ++k) s += row_i[k] * row_j[k];
      row_i[j] = (row_i[j] - s) / diagonal;
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    std::fill(a + i * n + i + 1, a + (i + 1) * n, 0.0);
  }
  return true;
}

LlamaParams resize_vocab(const LlamaParams& params, int64_t new_vocab, uint64_t seed) {
  const LlamaConfig& old_config = params.config();
  ZT_CHECK(new_vocab >= old_config.vocab_size, "resize_vocab: cannot shrink the vocabulary from ",
           old_config.vocab_size, " to ", new_vocab, " (token ids in use would lose their rows)");
  LlamaConfig config = old_config;
  config.vocab_size = new_vocab;
  config.validate("resize_vocab");
  LlamaParams out(config);
  const std::vector<ParamGroup>& src_groups = params.groups();
  std::vector<ParamGroup>& dst_groups = out.groups();
  ZT_CHECK(src_groups.size() == dst_groups.size(), "resize_vocab: ", src_groups.size(),
           " parameter groups in, ", dst_groups.size(), " expected for ", config.summary());
  Rng rng(seed);  // one stream: the embedding's new rows first, then the head's
  for (size_t g = 0; g < src_groups.size(); ++g) {
    const ParamGroup& src = src_groups[g];
    const ParamGroup& dst = dst_groups[g];
    ZT_CHECK(src.views.size() == dst.views.size(), "resize_vocab: group ", src.name,
             " has a different layout");
    if (src.views.size() == 1 && is_vocab_matrix(src.views[0])) {
      resize_vocab_rows(src.views[0].name.c_str(), src.view(src.views[0]), dst.view(dst.views[0]),
                        rng);
      continue;
    }
    ZT_CHECK(src.data.numel() == dst.data.numel(), "resize_vocab: group ", src.name, " holds ",
             src.data.numel(), " elements, expected ", dst.data.numel());
    std::memcpy(dst.data.view().data, src.data.view().data,
                static_cast<size_t>(src.data.view().nbytes()));
  }
  return out;
}

}  // namespace zerotune
