// complete_greedy: many prompts completed together equal a loop of generate() over them, token for
// token (batch invariance), whatever the batch size; stop ids end a sequence as generate's do, and
// stop strings cut the text before them.
#include "eval/greedy_decoder.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/rng.h"
#include "model/generate.h"
#include "support/errors.h"
#include "support/tiny_llama.h"

namespace zerotune {
namespace {

// Odd sizes (D 40, Dh 8, MQA 5:1) so that SIMD tails and unaligned rows are exercised.
LlamaConfig config() {
  return tiny_llama_config({97, 40, 72, 2, 5, 1, 8, 96});
}

// A text for ids that needs no tokenizer: one letter per id.
std::string letters(const std::vector<int32_t>& ids) {
  std::string text;
  for (const int32_t id : ids) text += static_cast<char>('a' + id % 26);
  return text;
}

std::vector<std::vector<int32_t>> prompts(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<std::vector<int32_t>> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(random_ids(rng, 3 + (i * 7) % 13, 97));
  return out;
}

std::vector<GenerateResult> generate_each(const LlamaParams& p,
                                          const std::vector<std::vector<int32_t>>& ps,
                                          const GenerateOptions& o) {
  std::vector<GenerateResult> out;
  for (const auto& prompt : ps) {
    LlamaGenerator gen(p, static_cast<int64_t>(prompt.size()) + o.max_new_tokens);
    out.push_back(generate_greedy(gen, prompt, o));
  }
  return out;
}

TEST(GreedyDecoder, BatchedEqualsGenerateLoopTokenForToken) {
  const LlamaParams p = random_params(config(), 11);
  const auto ps = prompts(11, 3);
  GenerateOptions g;
  g.max_new_tokens = 20;
  const std::vector<GenerateResult> want = generate_each(p, ps, g);
  for (const int64_t batch : {1, 3, 8, 16}) {
    GreedyOptions o;
    o.max_new_tokens = 20;
    o.batch_size = batch;
    std::vector<size_t> order;
    const auto got = complete_greedy(p, ps, o, letters,
                                     [&](size_t i, const Completion&) { order.push_back(i); });
    ASSERT_EQ(got.size(), ps.size());
    EXPECT_EQ(order.size(), ps.size());
    for (size_t i = 0; i < ps.size(); ++i) {
      EXPECT_EQ(got[i].tokens, want[i].new_tokens) << "batch " << batch << " prompt " << i;
      EXPECT_EQ(got[i].stopped, StopReason::length);
      EXPECT_EQ(got[i].text, letters(want[i].new_tokens));
    }
  }
}

TEST(GreedyDecoder, StopIdsEndSequencesAsGenerateDoes) {
  const LlamaParams p = random_params(config(), 12);
  const auto ps = prompts(9, 4);
  GenerateOptions g;
  g.max_new_tokens = 24;
  // Ids that the continuations do produce: the 4th token of the first and of the third.
  const std::vector<GenerateResult> free_run = generate_each(p, ps, g);
  g.eos_id = free_run[0].new_tokens[3];
  g.stop_id = free_run[2].new_tokens[3];
  ASSERT_NE(g.eos_id, g.stop_id);
  const std::vector<GenerateResult> want = generate_each(p, ps, g);
  GreedyOptions o;
  o.max_new_tokens = 24;
  o.batch_size = 4;
  o.eos_id = g.eos_id;
  o.stop_ids = {g.stop_id};
  const auto got = complete_greedy(p, ps, o, letters);
  int ended_early = 0;
  for (size_t i = 0; i < ps.size(); ++i) {
    EXPECT_EQ(got[i].tokens, want[i].new_tokens) << "prompt " << i;
    EXPECT_EQ(got[i].stopped, want[i].stopped) << "prompt " << i;
    const bool by_id = want[i].stopped != StopReason::length;
    ended_early += by_id;
    // The text leaves the final stop id out.
    std::vector<int32_t> shown = want[i].new_tokens;
    if (by_id) shown.pop_back();
    EXPECT_EQ(got[i].text, letters(shown));
  }
  EXPECT_GE(ended_early, 2);
}

TEST(GreedyDecoder, StopStringsCutTheText) {
  const LlamaParams p = random_params(config(), 13);
  const auto ps = prompts(5, 5);
  GreedyOptions o;
  o.max_new_tokens = 16;
  const auto free_run = complete_greedy(p, ps, o, letters);
  // A stop string made of the 5th and 6th letters of the first continuation.
  const std::string stop = free_run[0].text.substr(4, 2);
  o.stop_strings = {"never-generated", stop};
  const auto got = complete_greedy(p, ps, o, letters);
  for (size_t i = 0; i < ps.size(); ++i) {
    const std::string& full = free_run[i].text;
    const size_t at = full.find(stop);
    if (at == std::string::npos) {
      EXPECT_EQ(got[i].text, full);
      EXPECT_EQ(got[i].stopped, StopReason::length);
      continue;
    }
    EXPECT_EQ(got[i].text, full.substr(0, at)) << "prompt " << i;
    EXPECT_EQ(got[i].stopped, StopReason::stop);
    // Decoding ended with the token that completed the stop string.
    EXPECT_EQ(got[i].tokens.size(), at + stop.size());
  }
  EXPECT_EQ(got[0].text, free_run[0].text.substr(0, free_run[0].text.find(stop)));
}

TEST(GreedyDecoder, RefusesPromptsBeyondTheModelsPositions) {
  const LlamaParams p = random_params(config(), 14);
  std::vector<std::vector<int32_t>> ps = prompts(2, 6);
  ps.push_back(std::vector<int32_t>(90, 1));
  GreedyOptions o;
  o.max_new_tokens = 10;
  expect_error([&] { complete_greedy(p, ps, o, letters); },
               "prompt 2 has 90 tokens; with 10 new tokens that is 100 positions, beyond the "
               "model's max_position_embeddings 96");
}

}  // namespace
}  // namespace zerotune
