// BatchedGenerator: a slot's logits are the same bits whichever slots step with it and in which
// order (batch invariance), slots are reused, capacity errors name their numbers, a greedy
// continuation among others equals generate_greedy's alone, and the logits agree with the
// model's full forward (LlamaModel::forward_loss over the whole sequence). Its matrix product,
// decode_linear, against a double-precision product over odd sizes, row by row invariant.
#include "model/batched_generator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>

#include "core/rng.h"
#include "kernels/decode_linear.h"
#include "model/generate.h"
#include "model/llama.h"
#include "support/errors.h"
#include "support/tiny_llama.h"

namespace zerotune {
namespace {

// Row widths that are not multiples of the SIMD width (D 40 and 72, Dh 8 and 20), so rows of a
// batch sit at differently aligned addresses and dot products have tails; MQA, GQA and tied.
// The last is Qwen2-like (q/k/v biases, tied) with llama3 rope scaling whose original context
// (8) the sequences pass.
std::vector<LlamaConfig> configs() {
  LlamaConfig qwen = tiny_llama_config({101, 48, 80, 2, 4, 2, 12, 64, true});
  qwen.architecture = "Qwen2ForCausalLM";
  qwen.qkv_bias = true;
  qwen.rope_scaling = {RopeScalingType::llama3, 8.0f, 1.0f, 4.0f, 8};
  return {tiny_llama_config({97, 40, 72, 2, 5, 1, 8, 64}),
          tiny_llama_config({131, 72, 200, 2, 4, 2, 20, 64, true}),
          tiny_llama_config({89, 64, 96, 3, 4, 4, 16, 64}), qwen};
}

using Logits = std::vector<float>;

bool same_bits(const Logits& a, const Logits& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// A sequence teacher-forced through its own generator with one slot: the logits after the prompt
// and after each forced token.
std::vector<Logits> alone(const LlamaParams& p, const std::vector<int32_t>& prompt,
                          const std::vector<int32_t>& forced, int64_t max_seq_len) {
  const int64_t V = p.config().vocab_size;
  BatchedGenerator gen(p, 1, max_seq_len);
  std::vector<Logits> out(forced.size() + 1, Logits(static_cast<size_t>(V)));
  const int64_t slot = gen.start(prompt, out[0].data());
  for (size_t k = 0; k < forced.size(); ++k) gen.step({slot}, {forced[k]}, out[k + 1].data());
  return out;
}

std::vector<float> random_values(Rng& rng, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = rng.normal();
  return v;
}

// Sizes around the SIMD width and the kernel's tiles (rows of 1-19, weight rows not a multiple
// of the tile, inputs with and without tails).
struct LinearShape {
  int64_t n, in, out;
};
const LinearShape kLinearShapes[] = {{1, 1, 1},   {2, 15, 3},  {3, 16, 5},    {5, 17, 7},
                                     {8, 33, 13}, {9, 64, 4},  {12, 100, 11}, {19, 47, 9},
                                     {7, 512, 6}, {4, 200, 97}};

TEST(DecodeLinear, MatchesADoubleProductForOddSizes) {
  Rng rng(30);
  for (const LinearShape& s : kLinearShapes) {
    const std::vector<float> x = random_values(rng, s.n * s.in),
                             w = random_values(rng, s.out * s.in);
    const std::vector<float> y0 = random_values(rng, s.n * s.out);
    for (const Accumulate acc : {Accumulate::no, Accumulate::yes}) {
      std::vector<float> y = y0;
      decode_linear(Tensor(y.data(), DType::f32, Shape{s.n, s.out}),
                    Tensor(const_cast<float*>(x.data()), DType::f32, Shape{s.n, s.in}),
                    Tensor(const_cast<float*>(w.data()), DType::f32, Shape{s.out, s.in}), acc);
      for (int64_t i = 0; i < s.n; ++i) {
        for (int64_t o = 0; o < s.out; ++o) {
          double want = acc == Accumulate::yes ? y0[size_t(i * s.out + o)] : 0.0, scale = 1.0;
          for (int64_t k = 0; k < s.in; ++k) {
            const double term = double(x[size_t(i * s.in + k)]) * w[size_t(o * s.in + k)];
            want += term;
            scale += std::fabs(term);
          }
          // Float rounding of a sum of `in` terms: far below in * 2^-24 of their magnitudes.
          EXPECT_NEAR(y[size_t(i * s.out + o)], want, 1e-6 * scale * double(s.in))
              << "n " << s.n << " in " << s.in << " out " << s.out << " at " << i << ", " << o;
        }
      }
    }
  }
}

TEST(DecodeLinear, EachRowIsTheSameBitsAloneOrAmongOthers) {
  Rng rng(31);
  for (const LinearShape& s : kLinearShapes) {
    const std::vector<float> x = random_values(rng, s.n * s.in),
                             w = random_values(rng, s.out * s.in);
    const Tensor w_t(const_cast<float*>(w.data()), DType::f32, Shape{s.out, s.in});
    std::vector<float> together(size_t(s.n * s.out));
    decode_linear(Tensor(together.data(), DType::f32, Shape{s.n, s.out}),
                  Tensor(const_cast<float*>(x.data()), DType::f32, Shape{s.n, s.in}), w_t);
    // The rows reversed, and each row alone.
    std::vector<float> reversed_x;
    for (int64_t i = s.n - 1; i >= 0; --i) {
      reversed_x.insert(reversed_x.end(), x.begin() + i * s.in, x.begin() + (i + 1) * s.in);
    }
    std::vector<float> reversed(size_t(s.n * s.out));
    decode_linear(Tensor(reversed.data(), DType::f32, Shape{s.n, s.out}),
                  Tensor(reversed_x.data(), DType::f32, Shape{s.n, s.in}), w_t);
    for (int64_t i = 0; i < s.n; ++i) {
      std::vector<float> alone(size_t(s.out));
      decode_linear(Tensor(alone.data(), DType::f32, Shape{1, s.out}),
                    Tensor(const_cast<float*>(x.data()) + i * s.in, DType::f32, Shape{1, s.in}),
                    w_t);
      const auto row = [&](const std::vector<float>& y, int64_t r) {
        return std::vector<float>(y.begin() + r * s.out, y.begin() + (r + 1) * s.out);
      };
      EXPECT_TRUE(same_bits(row(together, i), alone)) << "n " << s.n << " row " << i;
      EXPECT_TRUE(same_bits(row(reversed, s.n - 1 - i), alone)) << "n " << s.n << " row " << i;
    }
  }
}

TEST(BatchedGenerator, StepLogitsAreBitIdenticalForAnySubsetAndOrder) {
  for (const LlamaConfig& c : configs()) {
    SCOPED_TRACE(c.summary());
    const LlamaParams p = random_params(c, 5);
    const int64_t V = c.vocab_size, sequences = 6, steps = 12;
    Rng rng(9);
    std::vector<std::vector<int32_t>> prompts, forced;
    std::vector<std::vector<Logits>> reference;
    for (int64_t s = 0; s < sequences; ++s) {
      prompts.push_back(random_ids(rng, 1 + 3 * s, V));  // lengths 1 .. 16: contexts differ
      forced.push_back(random_ids(rng, steps, V));
      reference.push_back(alone(p, prompts.back(), forced.back(), 40));
    }
    BatchedGenerator gen(p, sequences, 40);
    std::vector<int64_t> slot_of(static_cast<size_t>(sequences)), done(size_t(sequences), 0);
    Logits first(static_cast<size_t>(V));
    for (int64_t s = 0; s < sequences; ++s) {
      slot_of[size_t(s)] = gen.start(prompts[size_t(s)], first.data());
      EXPECT_TRUE(same_bits(first, reference[size_t(s)][0])) << "prefill of sequence " << s;
    }
    // Random non-empty subsets of the unfinished sequences, shuffled: each sequence advances at
    // its own pace and meets different companions at different rows.
    int64_t compared = 0;
    for (int round = 0; round < 60; ++round) {
      std::vector<int64_t> chosen;
      for (int64_t s = 0; s < sequences; ++s) {
        if (done[size_t(s)] < steps && rng.below(2) == 0) chosen.push_back(s);
      }
      if (chosen.empty()) continue;
      for (size_t i = chosen.size() - 1; i > 0; --i) std::swap(chosen[i], chosen[rng.below(i + 1)]);
      std::vector<int64_t> slots;
      std::vector<int32_t> tokens;
      for (const int64_t s : chosen) {
        slots.push_back(slot_of[size_t(s)]);
        tokens.push_back(forced[size_t(s)][size_t(done[size_t(s)])]);
      }
      Logits rows(chosen.size() * size_t(V));
      gen.step(slots, tokens, rows.data());
      for (size_t i = 0; i < chosen.size(); ++i) {
        const int64_t s = chosen[i];
        const Logits row(rows.begin() + long(i) * V, rows.begin() + long(i + 1) * V);
        ++done[size_t(s)];
        EXPECT_TRUE(same_bits(row, reference[size_t(s)][size_t(done[size_t(s)])]))
            << "sequence " << s << " step " << done[size_t(s)] << " at row " << i << " of "
            << chosen.size();
        ++compared;
      }
    }
    EXPECT_GT(compared, sequences * steps / 2);
    for (int64_t s = 0; s < sequences; ++s) {
      EXPECT_EQ(gen.length(slot_of[size_t(s)]),
                int64_t(prompts[size_t(s)].size()) + done[size_t(s)]);
    }
  }
}

TEST(BatchedGenerator, StartAfterFinishReusesTheSlotWithoutStaleState) {
  const LlamaConfig c = configs()[1];
  const LlamaParams p = random_params(c, 6);
  const int64_t V = c.vocab_size;
  Rng rng(10);
  BatchedGenerator gen(p, 2, 32);
  EXPECT_EQ(gen.free_slots(), 2);
  Logits logits(static_cast<size_t>(V));
  const int64_t a = gen.start(random_ids(rng, 20, V), logits.data());
  const int64_t b = gen.start(random_ids(rng, 5, V), logits.data());
  EXPECT_NE(a, b);
  EXPECT_EQ(gen.free_slots(), 0);
  for (int k = 0; k < 4; ++k) gen.step({a, b}, {1, 2}, std::vector<float>(2 * size_t(V)).data());
  gen.finish(a);
  EXPECT_EQ(gen.free_slots(), 1);
  EXPECT_EQ(gen.length(a), 0);

  // A shorter sequence in the reused slot: the 24 positions the old one left must not be seen.
  const std::vector<int32_t> prompt = random_ids(rng, 3, V), forced = random_ids(rng, 6, V);
  const std::vector<Logits> want = alone(p, prompt, forced, 32);
  const int64_t reused = gen.start(prompt, logits.data());
  EXPECT_EQ(reused, a);
  EXPECT_EQ(gen.length(reused), 3);
  EXPECT_TRUE(same_bits(logits, want[0]));
  for (size_t k = 0; k < forced.size(); ++k) {
    gen.step({reused}, {forced[k]}, logits.data());
    EXPECT_TRUE(same_bits(logits, want[k + 1])) << "step " << k;
  }
  EXPECT_EQ(gen.length(b), 9);  // b was untouched by a's finish and restart
}

TEST(BatchedGenerator, CapacityErrorsNameTheNumbers) {
  const LlamaConfig c = configs()[0];
  const LlamaParams p = random_params(c, 7);
  expect_error([&] { BatchedGenerator(p, 2, 65); },
               "max_seq_len 65 must be in [1, max_position_embeddings = 64]");
  expect_error([&] { BatchedGenerator(p, 0, 8); }, "max_batch 0 must be in [1,");
  BatchedGenerator gen(p, 2, 16);
  Logits logits(3 * size_t(c.vocab_size));
  expect_error([&] { gen.start(std::vector<int32_t>(17, 1), logits.data()); },
               "the prompt's 17 tokens exceed max_seq_len 16");
  expect_error([&] { gen.start({}, logits.data()); }, "the prompt has no tokens");
  expect_error(
      [&] {
        gen.start({1, 97}, logits.data());
      },
      "token id 97 at index 1 is outside the vocabulary [0, 97)");
  EXPECT_EQ(gen.free_slots(), 2);  // failed starts take no slot

  const int64_t full = gen.start(std::vector<int32_t>(15, 3), logits.data());
  gen.step({full}, {4}, logits.data());
  EXPECT_EQ(gen.length(full), 16);
  expect_error([&] { gen.step({full}, {4}, logits.data()); },
               "slot " + std::to_string(full) + " already holds 16 positions, its max_seq_len 16");
  const int64_t other = gen.start({1, 2}, logits.data());
  expect_error([&] { gen.start({1}, logits.data()); }, "no free slot: all 2 slots");

  expect_error([&] { gen.step({other, other}, {1, 2}, logits.data()); }, "appears twice");
  expect_error([&] { gen.step({other}, {1, 2}, logits.data()); }, "1 slots but 2 tokens");
  expect_error([&] { gen.step({2}, {1}, logits.data()); }, "slot 2 is outside [0, max_batch = 2)");
  expect_error([&] { gen.step({other}, {-1}, logits.data()); }, "token id -1 at index 0");
  gen.finish(full);
  expect_error([&] { gen.step({full}, {1}, logits.data()); }, "holds no sequence");
  expect_error([&] { gen.finish(full); }, "holds no sequence");
  expect_error(
      [&] {
        gen.extend(other, {1, 2}, 3, logits.data());
      },
      "start_pos 3 must be in [0, 2]");
  expect_error([&] { gen.extend(other, std::vector<int32_t>(15, 1), 2, logits.data()); },
               "positions [2, 17) exceed max_seq_len 16");
  // The failures changed nothing: the other sequence steps on.
  EXPECT_EQ(gen.length(other), 2);
  gen.step({other}, {5}, logits.data());
  EXPECT_EQ(gen.length(other), 3);

  // Positions past a sliding window are refused, not silently attended.
  LlamaConfig windowed = c;
  windowed.sliding_window = 8;
  const LlamaParams wp = random_params(windowed, 8);
  BatchedGenerator wgen(wp, 1, 16);
  expect_error([&] { wgen.start(std::vector<int32_t>(9, 1), logits.data()); },
               "position 8 is beyond the sliding window 8");
  EXPECT_EQ(wgen.free_slots(), 1);
  const int64_t w = wgen.start(std::vector<int32_t>(8, 1), logits.data());
  expect_error([&] { wgen.step({w}, {1}, logits.data()); }, "beyond the sliding window 8");
  EXPECT_EQ(wgen.length(w), 8);
}

// Greedy decoding of several sequences stepping together, each token from its own row; the rows'
// order is reversed at every step.
std::vector<std::vector<int32_t>> greedy_together(const LlamaParams& p,
                                                  const std::vector<std::vector<int32_t>>& prompts,
                                                  int64_t new_tokens) {
  const int64_t V = p.config().vocab_size, n = int64_t(prompts.size());
  BatchedGenerator gen(p, n + 1, 64);  // one slot more than needed: slot ids are not 0..n-1 alone
  Logits spare(static_cast<size_t>(V));
  const int64_t unused = gen.start({0}, spare.data());
  std::vector<int64_t> slots;
  std::vector<size_t> sequence_of_row;
  std::vector<std::vector<int32_t>> out(prompts.size());
  Logits rows(static_cast<size_t>(n * V));
  for (int64_t s = 0; s < n; ++s) {
    slots.push_back(gen.start(prompts[size_t(s)], rows.data() + s * V));
    sequence_of_row.push_back(size_t(s));
  }
  gen.finish(unused);
  for (int64_t k = 0;; ++k) {
    std::vector<int32_t> tokens;
    for (int64_t r = 0; r < n; ++r) {
      tokens.push_back(argmax_token(rows.data() + r * V, V));
      out[sequence_of_row[size_t(r)]].push_back(tokens.back());
    }
    if (k + 1 == new_tokens) return out;
    std::reverse(slots.begin(), slots.end());
    std::reverse(tokens.begin(), tokens.end());
    std::reverse(sequence_of_row.begin(), sequence_of_row.end());
    gen.step(slots, tokens, rows.data());
  }
}

TEST(BatchedGenerator, GreedyAmongOthersEqualsGenerateGreedyAlone) {
  for (const LlamaConfig& c : configs()) {
    SCOPED_TRACE(c.summary());
    const LlamaParams p = random_params(c, 8);
    Rng rng(11);
    std::vector<std::vector<int32_t>> prompts;
    for (int s = 0; s < 5; ++s) prompts.push_back(random_ids(rng, 2 + 4 * s, c.vocab_size));
    const int64_t new_tokens = 20;
    const std::vector<std::vector<int32_t>> together = greedy_together(p, prompts, new_tokens);
    LlamaGenerator single(p, 48);
    GenerateOptions options;
    options.max_new_tokens = new_tokens;
    for (size_t s = 0; s < prompts.size(); ++s) {
      EXPECT_EQ(together[s], generate_greedy(single, prompts[s], options).new_tokens)
          << "sequence " << s;
    }
  }
}

// -log softmax(logits)[target] in double.
double nll(const Logits& logits, int32_t target) {
  const double top = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (const float z : logits) sum += std::exp(double(z) - top);
  return top + std::log(sum) - logits[size_t(target)];
}

// The model's loss of predicting `target` after seq[0, t]: a forward over seq[0, t] + target
// with every label but the last ignored (position t predicts label t + 1).
double model_nll(LlamaModel& model, const std::vector<int32_t>& seq, size_t t, int32_t target) {
  std::vector<int32_t> ids(seq.begin(), seq.begin() + long(t) + 1);
  ids.push_back(target);
  std::vector<int32_t> labels(ids.size(), kIgnoreIndex);
  labels.back() = target;
  return model.forward_loss(TokenBatch::from_rows({ids}, {labels})).loss_sum;
}

TEST(BatchedGenerator, LogitsAgreeWithTheModelsFullForward) {
  for (const LlamaConfig& c : configs()) {
    SCOPED_TRACE(c.summary());
    const LlamaParams p = random_params(c, 9);
    LlamaParams copy(c);
    for (size_t g = 0; g < p.groups().size(); ++g) {
      zerotune::copy(copy.groups()[g].data, p.groups()[g].data);
    }
    LlamaModel model(std::move(copy), Checkpointing::off);
    Rng rng(12);
    const std::vector<int32_t> prompt = random_ids(rng, 6, c.vocab_size);
    const std::vector<int32_t> forced = random_ids(rng, 10, c.vocab_size);
    // Stepping among two other sequences, so the rows checked are batched ones.
    BatchedGenerator gen(p, 3, 32);
    Logits rows(3 * size_t(c.vocab_size)), logits(size_t(c.vocab_size));
    std::vector<int64_t> slots = {gen.start(random_ids(rng, 9, c.vocab_size), rows.data()),
                                  gen.start(prompt, logits.data()),
                                  gen.start(random_ids(rng, 2, c.vocab_size), rows.data())};
    std::vector<int32_t> seq = prompt;
    for (size_t k = 0;; ++k) {
      const size_t t = seq.size() - 1;  // logits holds position t's prediction
      const int32_t least =
          int32_t(std::min_element(logits.begin(), logits.end()) - logits.begin());
      for (const int32_t target :
           {argmax_token(logits), least, int32_t(rng.below(uint64_t(c.vocab_size)))}) {
        const double want = model_nll(model, seq, t, target);
        EXPECT_NEAR(nll(logits, target), want, 2e-5 * std::max(1.0, want))
            << "position " << t << " target " << target;
      }
      if (k == forced.size()) break;
      gen.step(slots, {7, forced[k], 8}, rows.data());
      logits.assign(rows.begin() + c.vocab_size, rows.begin() + 2 * c.vocab_size);
      seq.push_back(forced[k]);
    }
  }
}

// A prompt fed in pieces, and a rewind, in one slot while another holds its own sequence.
TEST(BatchedGenerator, ExtendFeedsPiecesAndRewindsOneSlotOnly) {
  const LlamaConfig c = configs()[2];
  const LlamaParams p = random_params(c, 10);
  const int64_t V = c.vocab_size;
  Rng rng(13);
  const std::vector<int32_t> prompt = random_ids(rng, 12, V), other = random_ids(rng, 7, V);
  const std::vector<int32_t> forced = random_ids(rng, 3, V);
  const std::vector<Logits> other_alone = alone(p, other, forced, 32);
  BatchedGenerator whole_gen(p, 1, 32);
  Logits whole(static_cast<size_t>(V)), pieces(static_cast<size_t>(V));
  whole_gen.start(prompt, whole.data());

  BatchedGenerator gen(p, 2, 32);
  const int64_t b = gen.start(other, pieces.data());
  const int64_t a = gen.start({prompt.begin(), prompt.begin() + 5}, pieces.data());
  gen.extend(a, {prompt.begin() + 5, prompt.end()}, 5, pieces.data());
  EXPECT_EQ(gen.length(a), 12);
  double diff = 0.0;
  for (size_t i = 0; i < whole.size(); ++i)
    diff = std::max(diff, double(std::fabs(whole[i] - pieces[i])));
  EXPECT_LT(diff, 1e-4);  // the same math in other GEMM shapes: equal to rounding

  gen.extend(a, {prompt.begin() + 9, prompt.end()}, 9, pieces.data());  // rewind to 9, same ids
  EXPECT_EQ(gen.length(a), 12);
  diff = 0.0;
  for (size_t i = 0; i < whole.size(); ++i)
    diff = std::max(diff, double(std::fabs(whole[i] - pieces[i])));
  EXPECT_LT(diff, 1e-4);

  Logits rows(2 * size_t(V));
  for (size_t k = 0; k < forced.size(); ++k) {
    gen.step({b, a}, {forced[k], 1}, rows.data());
    EXPECT_TRUE(same_bits(Logits(rows.begin(), rows.begin() + V), other_alone[k + 1])) << k;
  }
}

}  // namespace
}  // namespace zerotune
