#include "train/evaluation.h"

#include <cmath>
#include <cstdio>

#include "core/check.h"

namespace zerotune {

EvalReport LossEvaluation::run(LlamaModel& model, int64_t step) {
  const int64_t n = static_cast<int64_t>(test_.rows.size());
  const std::vector<int64_t> order = epoch_order(n, false, 0, 0);
  double sums[2] = {0.0, 0.0};  // loss, counted tokens
  for (const TokenBatch& batch : batching_.micro_batches(test_, order, 0, n, batch_size_, 0)) {
    const CrossEntropyResult r = model.forward_loss(batch);
    sums[0] += r.loss_sum;
    sums[1] += static_cast<double>(r.count);
  }
  comm_.all_reduce(sums, 2, DType::f64);
  const double loss = sums[1] > 0 ? sums[0] / sums[1] : 0.0;
  ZT_CHECK(std::isfinite(loss), "evaluation after step ", step, ": the eval loss is ", loss,
           "; training diverged (try a lower --lr or --grad-clip)");
  const double perplexity = std::exp(loss);  // +inf past loss 709: written as null
  EvalReport report;
  report.fields = {{"eval_loss", loss}, {"perplexity", perplexity}};
  report.rank_metric = perplexity;
  char line[96];
  std::snprintf(line, sizeof(line), "eval loss %.4f perplexity %.4f", loss, perplexity);
  report.summary = line;
  return report;
}

}  // namespace zerotune
