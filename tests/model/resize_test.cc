#include "model/resize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "core/rng.h"

namespace zerotune {
namespace {

LlamaConfig small_config(bool tied, int64_t vocab = 50, int64_t dim = 16) {
  LlamaConfig c;
  c.vocab_size = vocab;
  c.hidden_size = dim;
  c.intermediate_size = 24;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = dim / 4;
  c.tie_word_embeddings = tied;
  return c;
}

bool same_bytes(const Tensor& a, const Tensor& b, int64_t nbytes) {
  return std::memcmp(a.data, b.data, static_cast<size_t>(nbytes)) == 0;
}

// Mean of the first `rows` rows of a [V, D] matrix, in double.
std::vector<double> mean_of(const Tensor& m, int64_t rows) {
  const int64_t d = m.dim(1);
  std::vector<double> mean(static_cast<size_t>(d), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = 0; k < d; ++k) mean[k] += m.f32()[r * d + k];
  }
  for (double& v : mean) v /= static_cast<double>(rows);
  return mean;
}

TEST(ResizeVocab, OldRowsAndOtherTensorsAreCopiedExactly) {
  for (bool tied : {false, true}) {
    LlamaParams params(small_config(tied));
    params.init_random(3);
    const LlamaParams grown = resize_vocab(params, 57, 11);
    EXPECT_EQ(grown.config().vocab_size, 57);
    EXPECT_EQ(grown.embedding().shape, (Shape{57, 16}));
    EXPECT_EQ(grown.head().shape, (Shape{57, 16}));
    EXPECT_EQ(tied, grown.head().data == grown.embedding().data);
    const auto before = params.named(), after = grown.named();
    ASSERT_EQ(before.size(), after.size());
    for (size_t i = 0; i < before.size(); ++i) {
      EXPECT_EQ(before[i].first, after[i].first);
      // Old rows are a prefix of the new [V, D] matrices; other tensors are whole copies.
      EXPECT_TRUE(same_bytes(before[i].second, after[i].second, before[i].second.nbytes()))
          << before[i].first;
    }
  }
}

TEST(ResizeVocab, NewRowsAreNearTheMeanAndDistinct) {
  LlamaParams params(small_config(false, 200));
  params.init_random(5);
  const int64_t old_vocab = 200, new_vocab = 210, d = 16;
  const LlamaParams grown = resize_vocab(params, new_vocab, 1);
  for (int which = 0; which < 2; ++which) {
    const Tensor old_m = which == 0 ? params.embedding() : params.head();
    const Tensor new_m = which == 0 ? grown.embedding() : grown.head();
    const std::vector<double> mean = mean_of(old_m, old_vocab);
    std::vector<double> variance(d, 0.0);
    for (int64_t r = 0; r < old_vocab; ++r) {
      for (int64_t k = 0; k < d; ++k) {
        const double x = old_m.f32()[r * d + k] - mean[k];
        variance[k] += x * x / old_vocab;
      }
    }
    bool any_off_mean = false;
    for (int64_t r = old_vocab; r < new_vocab; ++r) {
      for (int64_t k = 0; k < d; ++k) {
        const double deviation = new_m.f32()[r * d + k] - mean[k];
        // Six standard deviations of N(0, 1e-9 var), plus float rounding of the mean.
        EXPECT_LE(std::abs(deviation), 6 * std::sqrt(kResizeCovarianceScale * variance[k]) + 1e-7)
            << "row " << r << " dim " << k;
        any_off_mean = any_off_mean || std::abs(deviation) > 1e-7;
      }
    }
    EXPECT_TRUE(any_off_mean) << "new rows were not sampled";
    EXPECT_FALSE(same_bytes(new_m.rows(old_vocab, 1), new_m.rows(old_vocab + 1, 1), d * 4));
  }
}

TEST(ResizeVocab, SamplesHaveTheScaledCovariance) {
  // Correlated old rows: x = (a + 5, a + b/2, 3c, -a + b/4 + d/2) with a, b, c, d ~ N(0, 1);
  // ten new rows per old one.
  LlamaConfig c = small_config(true, 2000, 4);
  c.num_attention_heads = 2;
  c.num_key_value_heads = 2;
  c.head_dim = 2;
  LlamaParams params(c);
  Rng rng(9);
  float* e = params.embedding().f32();
  for (int64_t r = 0; r < 2000; ++r) {
    const float a = rng.normal(), b = rng.normal(), cc = rng.normal(), dd = rng.normal();
    const float row[4] = {a + 5.0f, a + 0.5f * b, 3.0f * cc, -a + 0.25f * b + 0.5f * dd};
    std::memcpy(e + r * 4, row, sizeof(row));
  }
  const int64_t added = 20000;
  const LlamaParams grown = resize_vocab(params, 2000 + added, 4);
  const std::vector<double> mean = mean_of(params.embedding(), 2000);
  double old_cov[4][4] = {}, new_cov[4][4] = {};
  for (int64_t r = 0; r < 2000; ++r) {
    for (int i = 0; i < 4; ++i) {
      for (int j = 0; j < 4; ++j) {
        old_cov[i][j] += (e[r * 4 + i] - mean[i]) * (e[r * 4 + j] - mean[j]) / 2000.0;
      }
    }
  }
  const float* g = grown.embedding().f32();
  for (int64_t r = 2000; r < 2000 + added; ++r) {
    for (int i = 0; i < 4; ++i) {
      for (int j = 0; j < 4; ++j) {
        new_cov[i][j] += (g[r * 4 + i] - mean[i]) * (g[r * 4 + j] - mean[j]) /
                         (static_cast<double>(added) * kResizeCovarianceScale);
      }
    }
  }
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) {
      // Sampling error ~ sqrt(2 / 20000) of the scale; float rounding of mean + 3e-5 adds a little.
      const double scale = std::sqrt(old_cov[i][i] * old_cov[j][j]);
      EXPECT_NEAR(new_cov[i][j], old_cov[i][j], 0.05 * scale) << i << "," << j;
    }
  }
}

TEST(ResizeVocab, DeterministicPerSeed) {
  LlamaParams params(small_config(false));
  params.init_random(3);
  const LlamaParams a = resize_vocab(params, 60, 7);
  const LlamaParams b = resize_vocab(params, 60, 7);
  const LlamaParams c = resize_vocab(params, 60, 8);
  EXPECT_TRUE(same_bytes(a.embedding(), b.embedding(), a.embedding().nbytes()));
  EXPECT_TRUE(same_bytes(a.head(), b.head(), a.head().nbytes()));
  EXPECT_FALSE(same_bytes(a.embedding(), c.embedding(), a.embedding().nbytes()));
}

TEST(ResizeVocab, NotPositiveDefiniteFallsBackToTheMean) {
  LlamaParams params(small_config(true));
  float* e = params.embedding().f32();
  for (int64_t r = 0; r < 50; ++r) {
    for (int64_t k = 0; k < 16; ++k) e[r * 16 + k] = 0.25f * static_cast<float>(k) - 1.0f;
  }
  const LlamaParams grown = resize_vocab(params, 53, 1);  // zero covariance
  for (int64_t r = 50; r < 53; ++r) {
    EXPECT_TRUE(same_bytes(grown.embedding().rows(r, 1), params.embedding().rows(0, 1), 64)) << r;
  }
}

TEST(ResizeVocab, WideModelUsesTheMean) {
  // D above kResizeMaxCovarianceDim: no D x D covariance, the mean alone.
  const int64_t d = kResizeMaxCovarianceDim + 8;
  LlamaConfig c = small_config(true, 10, d);
  c.num_key_value_heads = 1;
  c.intermediate_size = 8;
  c.num_hidden_layers = 1;
  LlamaParams params(c);
  Rng rng(4);
  float* e = params.embedding().f32();
  for (int64_t i = 0; i < 10 * d; ++i) e[i] = rng.normal();
  const LlamaParams grown = resize_vocab(params, 12, 1);
  const std::vector<double> mean = mean_of(params.embedding(), 10);
  for (int64_t r = 10; r < 12; ++r) {
    for (int64_t k = 0; k < d; ++k) {
      ASSERT_EQ(grown.embedding().f32()[r * d + k], static_cast<float>(mean[k])) << r << "," << k;
    }
  }
}

TEST(ResizeVocab, SameSizeIsACopyAndShrinkingIsAnError) {
  LlamaParams params(small_config(false));
  params.init_random(3);
  const LlamaParams same = resize_vocab(params, 50, 1);
  const auto before = params.named(), after = same.named();
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_TRUE(same_bytes(before[i].second, after[i].second, before[i].second.nbytes()));
  }
  try {
    resize_vocab(params, 49, 1);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot shrink"), std::string::npos) << e.what();
  }
}

TEST(Cholesky, FactorsASymmetricPositiveDefiniteMatrix) {
  const int64_t n = 150;  // above the size where columns go parallel
  std::vector<double> m(n * n), a(n * n, 0.0);
  Rng rng(2);
  for (double& v : m) v = rng.normal();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t k = 0; k < n; ++k) a[i * n + j] += m[i * n + k] * m[j * n + k];
    }
    a[i * n + i] += 1.0;
  }
  std::vector<double> l = a;
  ASSERT_TRUE(cholesky_in_place(l.data(), n));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      if (j > i) {
        EXPECT_EQ(l[i * n + j], 0.0);
      }
      double s = 0.0;
      for (int64_t k = 0; k < n; ++k) s += l[i * n + k] * l[j * n + k];
      ASSERT_NEAR(s, a[i * n + j], 1e-9 * std::abs(a[i * n + i])) << i << "," << j;
    }
  }
  std::vector<double> singular = {1, 2, 2, 4};
  EXPECT_FALSE(cholesky_in_place(singular.data(), 2));
  std::vector<double> indefinite = {1, 0, 0, -1};
  EXPECT_FALSE(cholesky_in_place(indefinite.data(), 2));
}

}  // namespace
}  // namespace zerotune
