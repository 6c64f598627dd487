// The training step every command shares, against the plain model + reference AdamW written out
// by hand (micro-batch accumulation, the global token weighting, clip_grad_norm_), and the loss
// evaluation against the model's own forward.
#include "train/train_step.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/check.h"
#include "core/rng.h"
#include "support/adamw_reference.h"
#include "support/tiny_llama.h"
#include "train/evaluation.h"

namespace zerotune {
namespace {

LlamaConfig config() {
  return tiny_llama_config({47, 24, 40, 2, 4, 2, 6, 32});
}

// Rows of random ids with the last `ignored` labels of each row ignored: micro-batches with
// different token counts, so that the global weighting matters.
TokenBatch random_batch(uint64_t seed, int64_t rows, int64_t len, int64_t ignored) {
  Rng rng(seed);
  std::vector<std::vector<int32_t>> ids(static_cast<size_t>(rows)), labels;
  for (auto& row : ids) {
    for (int64_t t = 0; t < len; ++t) row.push_back(static_cast<int32_t>(rng.below(47)));
  }
  labels = ids;
  for (auto& row : labels) {
    for (int64_t t = len - ignored; t < len; ++t) row[static_cast<size_t>(t)] = kIgnoreIndex;
  }
  return TokenBatch::from_rows(ids, labels);
}

LlamaParams copy_of(const LlamaParams& from) {
  LlamaParams to(from.config());
  for (size_t g = 0; g < from.groups().size(); ++g) {
    std::memcpy(to.groups()[g].data.f32(), from.groups()[g].data.f32(),
                static_cast<size_t>(from.groups()[g].data.view().nbytes()));
  }
  return to;
}

std::vector<float> engine_tensor(ZeroEngine& engine, const std::string& name, int64_t numel) {
  std::vector<float> out(static_cast<size_t>(numel));
  engine.gather_tensor(name, out.data());
  return out;
}

TEST(TrainStep, EqualsAccumulationClippingAndAdamWWrittenOut) {
  LlamaParams init(config());
  init.init_random(5);
  std::vector<TokenBatch> micro;
  micro.push_back(random_batch(1, 3, 11, 2));
  micro.push_back(random_batch(2, 2, 11, 7));
  const int64_t tokens = micro[0].count_targets() + micro[1].count_targets();

  // The reference: plain model, both micro-batches scaled by the step's token count.
  LlamaModel plain(copy_of(init), Checkpointing::off);
  AdamWOptimizer reference(plain.params(), AdamWConfig{});
  plain.grads().zero();
  double loss_sum = 0.0;
  for (const TokenBatch& b : micro) {
    loss_sum += plain.forward_backward(b, 1.0f / static_cast<float>(tokens)).loss_sum;
  }
  const double norm = global_grad_norm(plain.grads());
  const double clip = 0.05;
  ASSERT_LT(clip, norm) << "the test must clip";
  scale_grads(plain.grads(), static_cast<float>(clip / (norm + 1e-6)));
  reference.step(plain.params(), plain.grads(), 1e-3);

  SingleRankTraining t = single_rank_training(init, Checkpointing::per_layer, ZeroOptions{});
  const StepResult r = train_step(*t.model, *t.engine, micro, {1e-3, clip, 1});
  EXPECT_EQ(r.tokens, tokens);
  EXPECT_DOUBLE_EQ(r.loss, loss_sum / static_cast<double>(tokens));
  EXPECT_NEAR(r.grad_norm, norm, 1e-6 * norm);  // before clipping
  for (const auto& [name, want] : plain.params().named()) {
    const std::vector<float> got = engine_tensor(*t.engine, name, want.numel());
    const float* w = want.f32();
    for (int64_t i = 0; i < want.numel(); ++i) {
      ASSERT_NEAR(got[static_cast<size_t>(i)], w[i], 1e-6f + 1e-5f * std::fabs(w[i]))
          << name << "[" << i << "]";
    }
  }
}

TEST(TrainStep, ADivergedStepStopsBeforeTheWeightsChange) {
  LlamaParams init(config());
  init.init_random(6);
  const std::string layer = "model.layers.0.self_attn.q_proj.weight";
  const std::vector<std::pair<std::string, Tensor>> named = init.named();
  for (const auto& [name, tensor] : named) {
    if (name == "model.norm.weight") tensor.f32()[0] = NAN;
  }
  SingleRankTraining t = single_rank_training(init, Checkpointing::off, ZeroOptions{});
  std::vector<TokenBatch> micro;
  micro.push_back(random_batch(3, 2, 9, 0));
  try {
    train_step(*t.model, *t.engine, micro, {1e-3, 1.0, 7});
    FAIL() << "expected the step to stop";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("training step 7: the gradient norm is"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(t.engine->optimizer_steps(), 0);
  for (const auto& [name, before] : named) {
    if (name != layer) continue;
    const std::vector<float> after = engine_tensor(*t.engine, name, before.numel());
    EXPECT_EQ(std::memcmp(after.data(), before.f32(), static_cast<size_t>(before.nbytes())), 0);
  }
}

TEST(LossEvaluation, TokenWeightedMeanOverTheTestSetAndItsPerplexity) {
  LlamaParams init(config());
  init.init_random(7);
  LlamaModel model(copy_of(init), Checkpointing::off);
  Examples test;
  Rng rng(9);
  for (int e = 0; e < 5; ++e) {
    std::vector<int32_t> row = {1};
    for (int t = 0; t < 3 + 2 * e; ++t) row.push_back(static_cast<int32_t>(rng.below(47)));
    test.rows.push_back(row);
  }
  double loss_sum = 0.0, count = 0.0;
  for (const std::vector<int32_t>& row : test.rows) {
    const CrossEntropyResult r = model.forward_loss(TokenBatch::from_rows({row}, {row}));
    loss_sum += r.loss_sum;
    count += static_cast<double>(r.count);
  }
  auto comm = make_single_communicator();
  const RankBatching batching{0, 1, 2, 16, Layout::padded, PadMode::to_longest};
  LossEvaluation evaluation(test, batching, 2, *comm);
  const EvalReport report = evaluation.run(model, 3);
  ASSERT_EQ(report.fields.size(), 2u);
  EXPECT_EQ(report.fields[0].first, "eval_loss");
  EXPECT_NEAR(report.fields[0].second, loss_sum / count, 1e-6);
  EXPECT_NEAR(report.rank_metric, std::exp(loss_sum / count), 1e-5);
  EXPECT_EQ(evaluation.order(), MetricOrder::lower_is_better);
}

}  // namespace
}  // namespace zerotune
