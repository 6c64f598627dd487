// Whole-model properties that need no reference implementation: micro-batch accumulation,
// checkpointing and reruns bit for bit, packed sequences, and a model that learns.
// (Agreement with PyTorch is tests/reference/check_model.py.)
#include "model/llama.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/rng.h"
#include "support/adamw_reference.h"
#include "support/tiny_llama.h"

namespace zerotune {
namespace {

LlamaConfig small_config(bool tied = false) {
  return tiny_llama_config({61, 48, 100, 2, 6, 2, 8, 256, tied});
}

std::vector<std::vector<int32_t>> random_rows(Rng& rng, int64_t rows, int64_t len, int64_t vocab) {
  std::vector<std::vector<int32_t>> out(static_cast<size_t>(rows));
  for (auto& row : out) {
    for (int64_t t = 0; t < len; ++t)
      row.push_back(static_cast<int32_t>(rng.below(static_cast<uint64_t>(vocab))));
  }
  return out;
}

double rel_diff(const LlamaParams& a, const LlamaParams& b) {
  double diff = 0.0, norm = 0.0;
  for (size_t g = 0; g < a.groups().size(); ++g) {
    const float* x = a.groups()[g].data.f32();
    const float* y = b.groups()[g].data.f32();
    for (int64_t i = 0; i < a.groups()[g].data.numel(); ++i) {
      diff += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
      norm += double(y[i]) * y[i];
    }
  }
  return std::sqrt(diff / norm);
}

bool bitwise_equal(const LlamaParams& a, const LlamaParams& b) {
  for (size_t g = 0; g < a.groups().size(); ++g) {
    const Buffer& x = a.groups()[g].data;
    if (std::memcmp(x.f32(), b.groups()[g].data.f32(), static_cast<size_t>(x.view().nbytes()))) {
      return false;
    }
  }
  return true;
}

TEST(Llama, MicroBatchAccumulationEqualsOneBatch) {
  const LlamaConfig c = small_config();
  Rng rng(1);
  auto rows = random_rows(rng, 4, 70, c.vocab_size);
  auto labels = rows;
  labels[1][30] = labels[2][5] = kIgnoreIndex;
  for (int t = 50; t < 70; ++t) labels[3][static_cast<size_t>(t)] = kIgnoreIndex;  // padded tail

  LlamaModel whole(c, Checkpointing::off), parts(c, Checkpointing::off);
  whole.params().init_random(5);
  parts.params().init_random(5);
  const TokenBatch all = TokenBatch::from_rows(rows, labels);
  const TokenBatch first = TokenBatch::from_rows({rows[0], rows[1]}, {labels[0], labels[1]});
  const TokenBatch second = TokenBatch::from_rows({rows[2], rows[3]}, {labels[2], labels[3]});
  const int64_t tokens = all.count_targets();
  ASSERT_EQ(tokens, first.count_targets() + second.count_targets());

  const CrossEntropyResult r = whole.forward_backward(all, 1.0f / float(tokens));
  const CrossEntropyResult r1 = parts.forward_backward(first, 1.0f / float(tokens));
  const CrossEntropyResult r2 = parts.forward_backward(second, 1.0f / float(tokens));
  EXPECT_EQ(r.count, r1.count + r2.count);
  EXPECT_NEAR(r.loss_sum, r1.loss_sum + r2.loss_sum, 1e-5 * r.loss_sum);
  EXPECT_LT(rel_diff(parts.grads(), whole.grads()), 1e-5);
}

TEST(Llama, CheckpointingAndRerunsAreBitIdentical) {
  for (bool tied : {false, true}) {
    const LlamaConfig c = small_config(tied);
    Rng rng(2);
    const auto rows = random_rows(rng, 3, 130, c.vocab_size);
    const TokenBatch batch = TokenBatch::from_rows(rows, rows);
    const float scale = 1.0f / float(batch.count_targets());
    LlamaModel plain(c, Checkpointing::off), ckpt(c, Checkpointing::per_layer);
    plain.params().init_random(9);
    ckpt.params().init_random(9);
    const CrossEntropyResult a = plain.forward_backward(batch, scale);
    const CrossEntropyResult b = ckpt.forward_backward(batch, scale);
    EXPECT_EQ(a.loss_sum, b.loss_sum);
    EXPECT_TRUE(bitwise_equal(plain.grads(), ckpt.grads())) << "tied=" << tied;

    ckpt.grads().zero();
    const CrossEntropyResult again = ckpt.forward_backward(batch, scale);
    EXPECT_EQ(a.loss_sum, again.loss_sum);
    EXPECT_TRUE(bitwise_equal(plain.grads(), ckpt.grads())) << "rerun, tied=" << tied;
  }
}

// Two examples packed in one row, with positions restarting and attention kept inside each
// example, give the same loss and gradients as the two examples in separate rows.
TEST(Llama, PackedSequencesEqualSeparateRows) {
  const LlamaConfig c = small_config();
  Rng rng(3);
  const auto a = random_rows(rng, 1, 45, c.vocab_size)[0];
  const auto b = random_rows(rng, 1, 90, c.vocab_size)[0];
  // Separate: right-padded to 90 with ignored labels.
  auto a_padded = a, a_labels = a;
  a_padded.resize(90, 0);
  a_labels.resize(90, kIgnoreIndex);
  const TokenBatch separate = TokenBatch::from_rows({a_padded, b}, {a_labels, b});

  TokenBatch packed;
  packed.batch = 1;
  packed.seq_len = 135;
  packed.ids = Buffer(DType::i32, Shape{135});
  packed.targets = Buffer(DType::i32, Shape{135});
  packed.positions = Buffer(DType::i32, Shape{135});
  packed.segments = Buffer(DType::i32, Shape{135});
  int32_t* ids = packed.ids.view().ptr<int32_t>();
  int32_t* targets = packed.targets.view().ptr<int32_t>();
  int32_t* pos = packed.positions.view().ptr<int32_t>();
  int32_t* seg = packed.segments.view().ptr<int32_t>();
  for (int i = 0; i < 135; ++i) {
    const bool first = i < 45;
    const auto& ex = first ? a : b;
    const int t = first ? i : i - 45;
    ids[i] = ex[size_t(t)];
    targets[i] = t + 1 < int(ex.size()) ? ex[size_t(t + 1)] : kIgnoreIndex;
    pos[i] = t;
    seg[i] = first ? 0 : 1;
  }
  ASSERT_EQ(packed.count_targets(), separate.count_targets());
  const float scale = 1.0f / float(packed.count_targets());
  LlamaModel m1(c, Checkpointing::off), m2(c, Checkpointing::off);
  m1.params().init_random(4);
  m2.params().init_random(4);
  const CrossEntropyResult r1 = m1.forward_backward(separate, scale);
  const CrossEntropyResult r2 = m2.forward_backward(packed, scale);
  EXPECT_NEAR(r1.loss_sum, r2.loss_sum, 1e-5 * r1.loss_sum);
  EXPECT_LT(rel_diff(m2.grads(), m1.grads()), 1e-5);
}

// A tiny model must learn to reverse 6 tokens (loss on the answer half only) with AdamW.
TEST(Llama, LearnsToReverseSequences) {
  LlamaConfig c = small_config();
  c.vocab_size = 12;  // 10 symbols, separator 10, pad 11
  c.hidden_size = 64;
  c.intermediate_size = 128;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  LlamaModel model(c, Checkpointing::off);
  model.params().init_random(11);
  AdamWConfig adam;
  AdamWOptimizer opt(model.params(), adam);
  Rng rng(12);
  double loss = 0.0;
  int step = 0;
  for (; step < 600; ++step) {
    std::vector<std::vector<int32_t>> rows, labels;
    for (int b = 0; b < 32; ++b) {
      std::vector<int32_t> seq, lab;
      for (int i = 0; i < 6; ++i) seq.push_back(int32_t(rng.below(10)));
      seq.push_back(10);
      for (int i = 5; i >= 0; --i) seq.push_back(seq[size_t(i)]);
      lab = seq;
      for (int i = 0; i <= 6; ++i) lab[size_t(i)] = kIgnoreIndex;
      rows.push_back(seq);
      labels.push_back(lab);
    }
    const TokenBatch batch = TokenBatch::from_rows(rows, labels);
    model.grads().zero();
    const CrossEntropyResult r = model.forward_backward(batch, 1.0f / float(batch.count_targets()));
    loss = r.loss_sum / double(r.count);
    if (loss < 0.02) break;
    opt.step(model.params(), model.grads(), 3e-3);
  }
  EXPECT_LT(loss, 0.02) << "after " << step << " steps";
}

TEST(Llama, RejectsSequencesLongerThanThePositionTable) {
  LlamaConfig c = small_config();
  c.max_position_embeddings = 16;
  LlamaModel model(c, Checkpointing::off);
  Rng rng(1);
  const auto rows = random_rows(rng, 1, 17, c.vocab_size);
  EXPECT_THROW(model.forward_backward(TokenBatch::from_rows(rows, rows), 1.0f), Error);
}

TEST(Llama, RejectsTokenIdsOutsideTheVocabulary) {
  const LlamaConfig c = small_config();
  LlamaModel model(c, Checkpointing::off);
  std::vector<std::vector<int32_t>> rows = {{1, 2, 61}};
  try {
    model.forward_backward(TokenBatch::from_rows(rows, rows), 1.0f);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("token id 61"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace zerotune
