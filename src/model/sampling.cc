#include "model/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/check.h"
#include "kernels/element_math.h"

namespace zerotune {

namespace {

// The cuts keep a prefix of the tokens ranked by logit. Before ranking, tokens more than this
// many nats (times the temperature) below the top one are left out, each cutoff tried in turn
// until the tokens above it are enough for the cuts: with a peaked distribution a handful of a
// 32000-token vocabulary is ranked.
constexpr double kCutoffNats[] = {2.0, 8.0, 32.0, INFINITY};

// Sums over the vocabulary run in kLanes interleaved accumulators (t % kLanes), then the lanes
// in order: the same result every time, at the speed of vector adds rather than of one chain.
constexpr int64_t kLanes = 8;
// The draw without cuts walks blocks of this many tokens by their mass, then one block's tokens.
constexpr int64_t kDrawBlock = 512;

struct PrefixMass {
  int64_t count = 0;  // tokens with logit >= cut
  double mass = 0.0;  // their weight
};

PrefixMass mass_above(const float* logits, const float* weight, int64_t n, float cut) {
  double mass[kLanes] = {};
  int64_t count[kLanes] = {};
  int64_t t = 0;
  for (; t + kLanes <= n; t += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) {
      const bool above = logits[t + l] >= cut;
      mass[l] += above ? static_cast<double>(weight[t + l]) : 0.0;
      count[l] += above ? 1 : 0;
    }
  }
  for (int64_t l = 0; t < n; ++t, ++l) {
    const bool above = logits[t] >= cut;
    mass[l] += above ? static_cast<double>(weight[t]) : 0.0;
    count[l] += above ? 1 : 0;
  }
  PrefixMass result;
  for (int64_t l = 0; l < kLanes; ++l) {
    result.mass += mass[l];
    result.count += count[l];
  }
  return result;
}

// Uniform in [0, 1) with 53 random bits.
double uniform53(Rng& rng) {
  return static_cast<double>(rng.next_u64() >> 11) * 0x1.0p-53;
}

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
  // The maximum first (exact in any order, so it vectorises), then its first index: a single
  // compare-and-keep-the-index loop is one long dependency chain.
  float top = logits[0];
#pragma omp simd reduction(max : top)
  for (int64_t i = 1; i < vocab; ++i) top = logits[i] > top ? logits[i] : top;
  int64_t first = 0;
  while (first + 1 < vocab && !(logits[first] == top)) ++first;
  return static_cast<int32_t>(first);
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {
  validate_sampling_params(params);
}

int32_t Sampler::next(const float* logits, int64_t vocab) {
  ZT_CHECK(vocab > 0, "Sampler::next: empty vocabulary");
  if (params_.temperature == 0.0) return argmax_token(logits, vocab);
  for (int64_t t = 0; t < vocab; ++t) {
    ZT_CHECK(std::isfinite(logits[t]), "Sampler::next: the logit of token ", t, " is ", logits[t]);
  }
  weigh(logits, vocab);
  const int64_t k = params_.top_k == 0 ? vocab : std::min(params_.top_k, vocab);
  if (k == vocab && params_.top_p >= 1.0) return draw_any(logits, vocab);
  gather_candidates(logits, vocab, k);
  return draw_candidate(truncate(vocab, k));
}

void Sampler::weigh(const float* logits, int64_t vocab) {
  max_logit_ = logits[argmax_token(logits, vocab)];
  // Divided rather than multiplied by 1 / temperature, which is inf for a tiny temperature and
  // would make the top token's 0 * inf a NaN.
  const float temperature =
      std::max(static_cast<float>(params_.temperature), std::numeric_limits<float>::min());
  weight_.resize(static_cast<size_t>(vocab));
  float* weight = weight_.data();
  const float top = max_logit_;
  // Relative to the largest logit, so the largest weight is 1 and none overflows; fast_exp
  // (2 ulp) vectorises where std::exp would cost more than all the rest.
#pragma omp simd
  for (int64_t t = 0; t < vocab; ++t) weight[t] = fast_exp((logits[t] - top) / temperature);
  total_weight_ = mass_above(logits, weight, vocab, -INFINITY).mass;
}

void Sampler::gather_candidates(const float* logits, int64_t vocab, int64_t k) {
  const double target = params_.top_p * total_weight_;
  float cut = -INFINITY;
  for (const double nats : kCutoffNats) {
    cut =
        std::isinf(nats) ? -INFINITY : max_logit_ - static_cast<float>(nats * params_.temperature);
    const PrefixMass above = mass_above(logits, weight_.data(), vocab, cut);
    // Enough when the ranked prefix holds the top k, or (top-p alone) top_p of all the mass.
    if (k < vocab ? above.count >= k : above.mass >= target) break;
  }
  candidates_.clear();
  for (int64_t t = 0; t < vocab; ++t) {
    if (logits[t] < cut) continue;
    candidates_.push_back({logits[t], weight_[static_cast<size_t>(t)], static_cast<int32_t>(t)});
  }
}

// Selection rather than sorting: nth_element moves the top k to the front in O(n), and the
// nucleus is found by halving the candidates, each half's mass deciding which half holds its
// end, in O(k).
int64_t Sampler::truncate(int64_t vocab, int64_t k) {
  const auto begin = candidates_.begin();
  const int64_t count = std::min<int64_t>(k, static_cast<int64_t>(candidates_.size()));
  // Ranked for the cuts: the larger logit first, equal logits by id, so that the cuts, and hence
  // the draws, are the same on every run.
  const auto rank = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  if (count < static_cast<int64_t>(candidates_.size())) {
    std::nth_element(begin, begin + count, candidates_.end(), rank);
  }
  if (params_.top_p >= 1.0) return count;
  const auto mass = [&](int64_t from, int64_t to) {
    double sum = 0.0;
    for (int64_t i = from; i < to; ++i) sum += candidates_[static_cast<size_t>(i)].weight;
    return sum;
  };
  // Top-p over the top k renormalised (over everything when top_k is 0). Invariant:
  // candidates_[0, lo) are in the nucleus, which ends at an index in [lo, hi), and `need` is the
  // mass it still lacks.
  double need = params_.top_p * (k < vocab ? mass(0, count) : total_weight_);
  int64_t lo = 0, hi = count;
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    std::nth_element(begin + lo, begin + mid, begin + hi, rank);
    const double upper_mass = mass(lo, mid);
    if (upper_mass >= need) {
      hi = mid;
    } else {
      need -= upper_mass;
      lo = mid;
    }
  }
  return hi;
}

int32_t Sampler::draw_candidate(int64_t count) {
  double total = 0.0;
  for (int64_t i = 0; i < count; ++i) total += candidates_[static_cast<size_t>(i)].weight;
  const double target = uniform53(rng_) * total;
  double cumulative = 0.0;
  for (int64_t i = 0; i < count; ++i) {
    cumulative += candidates_[static_cast<size_t>(i)].weight;
    if (target < cumulative) return candidates_[static_cast<size_t>(i)].id;
  }
  return candidates_[static_cast<size_t>(count - 1)].id;  // u * total rounded up to the total
}

int32_t Sampler::draw_any(const float* logits, int64_t vocab) {
  const double target = uniform53(rng_) * total_weight_;
  const float* weight = weight_.data();
  double before = 0.0;  // the mass of the blocks passed
  for (int64_t start = 0; start < vocab; start += kDrawBlock) {
    const int64_t end = std::min(vocab, start + kDrawBlock);
    const double block = mass_above(logits + start, weight + start, end - start, -INFINITY).mass;
    if (target >= before + block && end < vocab) {
      before += block;
      continue;
    }
    double cumulative = before;
    for (int64_t t = start; t < end; ++t) {
      cumulative += weight[t];
      if (target < cumulative) return static_cast<int32_t>(t);
    }
    return static_cast<int32_t>(end - 1);  // the block's sum and the walk rounded differently
  }
  return static_cast<int32_t>(vocab - 1);
}

}  // namespace zerotune
