// What the trainer runs after every epoch to judge the model. The loop knows only this interface:
// an accuracy evaluation (generation on a test set) plugs in beside the loss without new branches.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "distributed/communicator.h"
#include "model/llama.h"
#include "train/batching.h"
#include "train/keep_best.h"

namespace zerotune {

struct EvalReport {
  // The metrics row's fields in order (non-finite values are written as null).
  std::vector<std::pair<std::string, double>> fields;
  double rank_metric = 0.0;  // what checkpoints are ranked and --stop-perplexity judged by
  std::string summary;       // one line for the log
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

}  // namespace zerotune
