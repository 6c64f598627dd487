// Sampler: greedy at temperature 0, reproducible draws per seed, top-k and top-p cuts, and draw
// frequencies that match the renormalised probabilities (a chi-square bound that a wrong
// distribution exceeds), against a reference written here from the definitions.
#include "model/sampling.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <string>

#include "core/check.h"

namespace zerotune {
namespace {

std::vector<float> random_logits(uint64_t seed, int64_t vocab, float scale) {
  Rng rng(seed);
  std::vector<float> logits(static_cast<size_t>(vocab));
  for (float& z : logits) z = scale * rng.normal();
  return logits;
}

std::vector<int32_t> draws(const SamplingParams& params, const std::vector<float>& logits, int n) {
  Sampler sampler(params);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) out.push_back(sampler.next(logits.data(), int64_t(logits.size())));
  return out;
}

// The distribution the parameters define, from the definitions (HF's warpers in order:
// temperature, top-k, top-p; vLLM likewise): p = softmax(z / T); keep the k largest; renormalise;
// keep the most likely tokens until their mass reaches top_p; renormalise.
std::vector<double> reference_distribution(const std::vector<float>& logits,
                                           const SamplingParams& params) {
  const size_t V = logits.size();
  std::vector<double> p(V);
  const double top = *std::max_element(logits.begin(), logits.end());
  for (size_t i = 0; i < V; ++i) p[i] = std::exp((logits[i] - top) / params.temperature);
  std::vector<size_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
  const size_t k = params.top_k == 0 ? V : std::min(V, size_t(params.top_k));
  double kept = 0.0;
  for (size_t r = 0; r < k; ++r) kept += p[order[r]];
  std::vector<double> out(V, 0.0);
  double cumulative = 0.0;
  for (size_t r = 0; r < k && (r == 0 || cumulative < params.top_p); ++r) {
    out[order[r]] = p[order[r]] / kept;
    cumulative += out[order[r]];
  }
  for (double& q : out) q /= cumulative;
  return out;
}

struct ChiSquare {
  double statistic = 0.0;
  int64_t categories = 0;  // tokens with probability > 0
  int64_t impossible = 0;  // draws of tokens with probability 0
};

ChiSquare chi_square(const std::vector<int64_t>& counts, const std::vector<double>& probs,
                     int64_t n) {
  ChiSquare result;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] == 0.0) {
      result.impossible += counts[i];
      continue;
    }
    const double expected = probs[i] * double(n);
    result.statistic += (double(counts[i]) - expected) * (double(counts[i]) - expected) / expected;
    ++result.categories;
  }
  return result;
}

// Far in the tail of chi-square with df degrees of freedom: mean df, sd sqrt(2 df); 8 sd (and
// at least 40) is beyond 1e-8 for these df, yet a wrong distribution lands far above it.
double bound(int64_t categories) {
  const double df = double(categories - 1);
  return std::max(40.0, df + 8.0 * std::sqrt(2.0 * df));
}

std::vector<int64_t> count_draws(const SamplingParams& params, const std::vector<float>& logits,
                                 int64_t n) {
  std::vector<int64_t> counts(logits.size(), 0);
  for (const int32_t t : draws(params, logits, int(n))) ++counts[size_t(t)];
  return counts;
}

TEST(Sampler, TemperatureZeroIsGreedyWithTiesToTheLowestId) {
  const std::vector<float> logits = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f};
  SamplingParams greedy;
  greedy.top_k = 2;  // ignored at temperature 0
  greedy.seed = 7;
  for (const int32_t t : draws(greedy, logits, 20)) EXPECT_EQ(t, 1);
  const std::vector<float> random = random_logits(3, 1000, 2.0f);
  Sampler sampler{SamplingParams{}};
  EXPECT_EQ(sampler.next(random.data(), 1000), argmax_token(random.data(), 1000));
  EXPECT_EQ(int64_t(std::max_element(random.begin(), random.end()) - random.begin()),
            argmax_token(random.data(), 1000));
}

TEST(Sampler, TheSameSeedGivesTheSameDraws) {
  const std::vector<float> logits = random_logits(4, 500, 1.0f);
  for (const SamplingParams& params :
       {SamplingParams{1.0, 1.0, 0, 42}, SamplingParams{0.7, 0.9, 0, 42},
        SamplingParams{1.3, 1.0, 50, 42}, SamplingParams{0.8, 0.5, 20, 42}}) {
    const std::vector<int32_t> a = draws(params, logits, 200), b = draws(params, logits, 200);
    EXPECT_EQ(a, b);
    SamplingParams other = params;
    other.seed = 43;
    EXPECT_NE(a, draws(other, logits, 200));
    EXPECT_GT(std::set<int32_t>(a.begin(), a.end()).size(), 3u);  // they are draws, not argmax
  }
}

TEST(Sampler, TopKOneIsGreedy) {
  for (uint64_t seed = 0; seed < 5; ++seed) {
    std::vector<float> logits = random_logits(seed, 300, 1.0f);
    logits[17] = logits[250] = *std::max_element(logits.begin(), logits.end()) + 0.5f;  // a tie
    for (const int32_t t : draws({1.5, 1.0, 1, seed}, logits, 50)) EXPECT_EQ(t, 17);
    for (const int32_t t : draws({1.5, 0.95, 1, seed}, logits, 50)) EXPECT_EQ(t, 17);
  }
}

TEST(Sampler, TinyTopPOrTemperatureKeepsOnlyTheTopToken) {
  const std::vector<float> logits = random_logits(5, 32000, 1.0f);
  const int32_t top = argmax_token(logits.data(), int64_t(logits.size()));
  for (const int32_t t : draws({2.0, 1e-9, 0, 3}, logits, 100)) EXPECT_EQ(t, top);
  for (const int32_t t : draws({2.0, 1e-9, 500, 3}, logits, 100)) EXPECT_EQ(t, top);
  for (const int32_t t : draws({1e-30, 1.0, 0, 3}, logits, 100)) EXPECT_EQ(t, top);  // T -> 0
}

// Frequencies over many draws against the reference distribution; the same counts against a
// wrong distribution (what a sampler that forgot a step would draw from) must fail the bound.
void expect_frequencies_match(const std::vector<float>& logits, const SamplingParams& params,
                              const SamplingParams& wrong, int64_t n) {
  const std::vector<int64_t> counts = count_draws(params, logits, n);
  const ChiSquare right = chi_square(counts, reference_distribution(logits, params), n);
  EXPECT_EQ(right.impossible, 0) << "draws outside the kept tokens";
  EXPECT_GT(right.categories, 1);
  EXPECT_LT(right.statistic, bound(right.categories)) << right.categories << " tokens kept";
  const ChiSquare other = chi_square(counts, reference_distribution(logits, wrong), n);
  EXPECT_TRUE(other.impossible > 0 || other.statistic > bound(other.categories))
      << "the bound cannot tell the wrong distribution: " << other.statistic;
}

TEST(Sampler, FrequenciesMatchTheRenormalisedProbabilities) {
  const std::vector<float> logits = {2.0f, 1.5f, 1.4f, 0.3f, -0.5f, 1.0f, -2.0f, 0.9f};
  const int64_t n = 200000;
  // Temperature alone (the wrong one: temperature forgotten).
  expect_frequencies_match(logits, {0.7, 1.0, 0, 1}, {1.0, 1.0, 0, 1}, n);
  // Top-k renormalised (wrong: no cut, so the other tokens would appear).
  expect_frequencies_match(logits, {1.0, 1.0, 4, 2}, {1.0, 1.0, 0, 2}, n);
  // Top-p after top-k: mass 0.8 of the top 6 (wrong: top-p over all tokens).
  expect_frequencies_match(logits, {1.2, 0.8, 6, 3}, {1.2, 0.8, 0, 3}, n);
}

TEST(Sampler, NucleusOfALargeVocabularyMatches) {
  // A nucleus of many tokens, past the first cutoffs tried before ranking (2 and 8 nats).
  const std::vector<float> logits = random_logits(6, 2000, 2.0f);
  const SamplingParams params{1.0, 0.9, 0, 4};
  const std::vector<double> probs = reference_distribution(logits, params);
  const int64_t kept = std::count_if(probs.begin(), probs.end(), [](double q) { return q > 0; });
  const double top = *std::max_element(logits.begin(), logits.end());
  const int64_t within_2_nats =
      std::count_if(logits.begin(), logits.end(), [&](float z) { return z >= top - 2.0; });
  EXPECT_GT(kept, 2 * within_2_nats);
  EXPECT_GT(kept, 64);
  // Wrong: the nucleus cut at 0.8 instead.
  expect_frequencies_match(logits, params, {1.0, 0.8, 0, 4}, 100000);
}

void expect_error(const SamplingParams& params, const std::string& needle) {
  try {
    Sampler sampler(params);
    ADD_FAILURE() << "no error; expected one containing: " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Sampler, BadParametersNameTheField) {
  expect_error({-0.5, 1.0, 0, 0}, "temperature must be a number >= 0 (0: greedy), got -0.5");
  expect_error({NAN, 1.0, 0, 0}, "temperature");
  expect_error({1.0, 0.0, 0, 0}, "top_p must be in (0, 1], got 0");
  expect_error({1.0, 1.5, 0, 0}, "top_p must be in (0, 1], got 1.5");
  expect_error({1.0, -0.1, 0, 0}, "top_p");
  expect_error({1.0, 1.0, -3, 0}, "top_k must be >= 0 (0: no limit), got -3");
  Sampler sampler({1.0, 1.0, 0, 0});
  const std::vector<float> bad = {0.0f, NAN, 1.0f};
  EXPECT_THROW(sampler.next(bad.data(), 3), Error);
  EXPECT_THROW(sampler.next(bad.data(), 0), Error);
}

}  // namespace
}  // namespace zerotune
