#include "model/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/check.h"

namespace zerotune {

namespace {

// Tokens sorted in this order before the cuts: the larger logit first, equal logits by id, so
// that the cuts, and hence the draws, are the same on every run.
struct MoreLikely {
  const float* logits;
  bool operator()(int32_t a, int32_t b) const {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  }
};

// The first sort for top-p covers this many tokens, then four times more until the prefix holds
// top_p of the probability: the nucleus is usually a small part of a 32000-token vocabulary.
constexpr int64_t kFirstSortedPrefix = 64;

}  // namespace

void validate_sampling_params(const SamplingParams& params) {
  ZT_CHECK(std::isfinite(params.temperature) && params.temperature >= 0.0,
           "sampling: temperature must be a number >= 0 (0: greedy), got ", params.temperature);
  ZT_CHECK(std::isfinite(params.top_p) && params.top_p > 0.0 && params.top_p <= 1.0,
           "sampling: top_p must be in (0, 1], got ", params.top_p);
  ZT_CHECK(params.top_k >= 0, "sampling: top_k must be >= 0 (0: no limit), got ", params.top_k);
}

int32_t argmax_token(const float* logits, int64_t vocab) {
  ZT_CHECK(vocab > 0, "argmax_token: empty logits");
  int64_t best = 0;
  for (int64_t i = 1; i < vocab; ++i) {
    if (logits[i] > logits[best]) best = i;  // strict: the first of equal maxima wins
  }
  return static_cast<int32_t>(best);
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {
  validate_sampling_params(params);
}

int32_t Sampler::next(const float* logits, int64_t vocab) {
  ZT_CHECK(vocab > 0, "Sampler::next: empty vocabulary");
  const int32_t best = argmax_token(logits, vocab);
  if (params_.temperature == 0.0) return best;
  for (int64_t t = 0; t < vocab; ++t) {
    ZT_CHECK(std::isfinite(logits[t]), "Sampler::next: the logit of token ", t, " is ", logits[t]);
  }
  return draw(truncate(logits, vocab, logits[best]));
}

int64_t Sampler::truncate(const float* logits, int64_t vocab, float max_logit) {
  order_.resize(static_cast<size_t>(vocab));
  weight_.resize(static_cast<size_t>(vocab));
  std::iota(order_.begin(), order_.end(), 0);
  // Relative to the largest logit, so the largest weight is 1 and none overflows.
  const auto weight_of = [&](int32_t id) {
    return std::exp((static_cast<double>(logits[id]) - max_logit) / params_.temperature);
  };
  const int64_t k = params_.top_k == 0 ? vocab : std::min(params_.top_k, vocab);
  const bool nucleus = params_.top_p < 1.0;
  double kept_mass = 0.0;  // the top k's total weight
  int64_t sorted = 0;      // order_[0, sorted) holds the most likely tokens in order
  if (k < vocab) {
    std::partial_sort(order_.begin(), order_.begin() + k, order_.end(), MoreLikely{logits});
    sorted = k;
  }
  if (k < vocab || !nucleus) {
    const int64_t weighed = k < vocab ? k : vocab;  // with nothing cut: all, in id order
    for (int64_t i = 0; i < weighed; ++i) {
      weight_[static_cast<size_t>(i)] = weight_of(order_[static_cast<size_t>(i)]);
      kept_mass += weight_[static_cast<size_t>(i)];
    }
    if (!nucleus) return weighed;
  } else {
    for (int64_t t = 0; t < vocab; ++t) kept_mass += weight_of(static_cast<int32_t>(t));
  }
  // Top-p over the top k renormalised: the fewest most likely tokens whose mass reaches top_p.
  const double target = params_.top_p * kept_mass;
  double cumulative = 0.0;
  for (int64_t i = 0;;) {
    if (i == sorted) {  // sort a longer prefix; the tokens already in place stay where they are
      sorted = std::min(k, std::max(kFirstSortedPrefix, 4 * sorted));
      std::partial_sort(order_.begin(), order_.begin() + sorted, order_.end(), MoreLikely{logits});
      for (int64_t j = i; j < sorted; ++j) {
        weight_[static_cast<size_t>(j)] = weight_of(order_[static_cast<size_t>(j)]);
      }
    }
    cumulative += weight_[static_cast<size_t>(i)];
    ++i;
    if (cumulative >= target || i == k) return i;
  }
}

int32_t Sampler::draw(int64_t count) {
  double total = 0.0;
  for (int64_t i = 0; i < count; ++i) total += weight_[static_cast<size_t>(i)];
  // Uniform in [0, 1) with 53 random bits.
  const double u = static_cast<double>(rng_.next_u64() >> 11) * 0x1.0p-53;
  const double target = u * total;
  double cumulative = 0.0;
  for (int64_t i = 0; i < count; ++i) {
    cumulative += weight_[static_cast<size_t>(i)];
    if (target < cumulative) return order_[static_cast<size_t>(i)];
  }
  // u * total rounded up to the total: the last token that has any weight.
  int64_t last = count - 1;
  while (last > 0 && weight_[static_cast<size_t>(last)] == 0.0) --last;
  return order_[static_cast<size_t>(last)];
}

}  // namespace zerotune
