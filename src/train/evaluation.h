// What the trainer runs after every epoch to judge the model. The loop knows only this interface:
// an accuracy evaluation (generation on a test set) plugs in beside the loss without new branches.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "data/tokenizer.h"
#include "distributed/communicator.h"
#include "distributed/zero/zero_engine.h"
#include "eval/gsm8k_eval.h"
#include "model/llama.h"
#include "model/lora.h"
#include "train/batching.h"
#include "train/keep_best.h"

namespace zerotune {

struct EvalReport {
  // The metrics row's fields in order (non-finite values are written as null).
  std::vector<std::pair<std::string, double>> fields;
  double rank_metric = 0.0;  // what checkpoints are ranked and --stop-perplexity judged by
  std::string summary;       // one line for the log

  // The value of the field `name`, or `fallback` when the report has none.
  double field(std::string_view name, double fallback) const {
    for (const auto& [key, value] : fields) {
      if (key == name) return value;
    }
    return fallback;
  }
};

class Evaluation {
 public:
  virtual ~Evaluation() = default;
  virtual MetricOrder order() const = 0;
  // Collective: every rank calls it after the same step. `step` names the step in errors.
  virtual EvalReport run(LlamaModel& model, int64_t step) = 0;
};

// The token-weighted mean loss over the test set and its perplexity, the test set split over the
// ranks as training batches are.
class LossEvaluation final : public Evaluation {
 public:
  LossEvaluation(const Examples& test, const RankBatching& batching, int64_t batch_size,
                 Communicator& comm)
      : test_(test), batching_(batching), batch_size_(batch_size), comm_(comm) {}
  MetricOrder order() const override { return MetricOrder::lower_is_better; }
  EvalReport run(LlamaModel& model, int64_t step) override;

 private:
  const Examples& test_;
  RankBatching batching_;
  int64_t batch_size_;
  Communicator& comm_;
};

// GSM8K exact-match accuracy (eval/gsm8k_eval.h, the seed protocol) of greedy completions of the
// first test rows: each rank decodes every world-th row from its rank on, and the counts are summed
// over the ranks. Decoding needs the whole model on every rank: each tensor is gathered from the
// engine's shards to rank 0 and broadcast, group by group, into a decode copy in the compute dtype
// on the compute device that lives for the evaluation (2 bytes per parameter per GPU in bf16; 4 on
// the CPU), whatever the ZeRO stage, plus one group in f32 on the host while it is assembled.
// Fields: accuracy, accuracy_examples (rows scored), accuracy_skipped.
class AccuracyEvaluation final : public Evaluation {
 public:
  AccuracyEvaluation(std::vector<EvalItem> items, const Tokenizer& tokenizer, ZeroEngine& engine,
                     const LlamaParams& layout, Placement placement, EvalSettings settings,
                     std::optional<LoraConfig> lora = std::nullopt)
      : items_(std::move(items)),
        tokenizer_(tokenizer),
        engine_(engine),
        layout_(layout),
        placement_(placement),
        settings_(settings),
        lora_(std::move(lora)) {}
  MetricOrder order() const override { return MetricOrder::higher_is_better; }
  EvalReport run(LlamaModel& model, int64_t step) override;

 private:
  std::vector<EvalItem> items_;
  const Tokenizer& tokenizer_;
  ZeroEngine& engine_;
  const LlamaParams& layout_;
  Placement placement_;
  EvalSettings settings_;
  std::optional<LoraConfig> lora_;  // a LoRA run: its adapters are merged before decoding
};

// Several evaluations as one: their fields in one row, their summaries on one line, ranked by the
// one at `ranked_by`.
class EvaluationSet final : public Evaluation {
 public:
  EvaluationSet(std::vector<std::unique_ptr<Evaluation>> parts, size_t ranked_by)
      : parts_(std::move(parts)), ranked_by_(ranked_by) {}
  MetricOrder order() const override { return parts_.at(ranked_by_)->order(); }
  EvalReport run(LlamaModel& model, int64_t step) override;

 private:
  std::vector<std::unique_ptr<Evaluation>> parts_;
  size_t ranked_by_;
};

}  // namespace zerotune
