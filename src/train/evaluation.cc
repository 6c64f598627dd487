#include "train/evaluation.h"

#include <cmath>
#include <cstdio>
#include <optional>

#include "core/check.h"
#include "io/peft_adapter.h"

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

namespace zerotune {
namespace {

// Every parameter of the model, whole, on every rank, f32 in host memory (collective). Trainable
// groups come from the engine's f32 master values (gathered to rank 0 one tensor at a time and
// broadcast); a frozen group (LoRA's base) has only its compute copy, fetched as the model fetches
// it before use. A LoRA run's adapter groups (after the model's own) are merged into the base
// weights, W + scale B A, so decoding sees the fine-tuned model.
LlamaParams gather_full_params(ZeroEngine& engine, const LlamaParams& model_params,
                               const std::optional<LoraConfig>& lora) {
  Communicator& comm = engine.comm();
  auto gather = [&](const ParamView& view, float* values) {
    engine.gather_tensor(view.name, values);
    comm.broadcast(values, view.shape.numel() * 4, 0);
  };
  LlamaParams full(model_params.config());
  for (size_t g = 0; g < full.groups().size(); ++g) {
    ParamGroup& group = full.groups()[g];
    const ParamGroup& source = model_params.groups()[g];
    if (source.trainable) {
      for (const ParamView& view : group.views) gather(view, group.data.f32() + view.offset);
      continue;
    }
    engine.fetch_params(static_cast<int64_t>(g), -1);
    convert_copy(group.data.view(), source.data.view().flat(0, group.data.numel()));
    engine.release_params(static_cast<int64_t>(g));
  }
  if (!lora) return full;
  PeftAdapter adapter;
  adapter.config = *lora;
  adapter.config.modules_to_save.clear();  // trained in place: gathered above with the base
  for (size_t g = full.groups().size(); g < model_params.groups().size(); ++g) {
    for (const ParamView& view : model_params.groups()[g].views) {
      Buffer values(DType::f32, view.shape);  // [r, in] or [out, r]
      gather(view, values.f32());
      adapter.tensors.emplace(view.name, std::move(values));
    }
  }
  merge_adapter(full, adapter);
  return full;
}

}  // namespace

EvalReport AccuracyEvaluation::run(LlamaModel& model, int64_t /*step*/) {
  Communicator& comm = engine_.comm();
  std::vector<EvalItem> mine;
  for (size_t i = static_cast<size_t>(comm.rank()); i < items_.size();
       i += static_cast<size_t>(comm.size())) {
    mine.push_back(items_[i]);
  }
  double counts[3] = {0.0, 0.0, 0.0};  // scored, correct, skipped
  {
    LlamaParams full = gather_full_params(engine_, model.params(), lora_);
    std::optional<LlamaParams> placed;
    if (!placement_.device.is_cpu())
      placed.emplace(full.placed(placement_.dtype, placement_.device));
    const EvalOutcome outcome =
        evaluate_items(placed ? *placed : full, tokenizer_, mine, settings_);
    counts[0] = static_cast<double>(outcome.counts.scored);
    counts[1] = static_cast<double>(outcome.counts.correct.at(0));
    counts[2] = static_cast<double>(outcome.counts.skipped);
  }
  comm.all_reduce(counts, 3, DType::f64);
  const double accuracy = counts[0] > 0 ? counts[1] / counts[0] : std::nan("");
  EvalReport report;
  report.fields = {
      {"accuracy", accuracy}, {"accuracy_examples", counts[0]}, {"accuracy_skipped", counts[2]}};
  report.rank_metric = accuracy;
  char line[128];
  std::snprintf(line, sizeof(line), "accuracy %.4f (%.0f/%.0f correct%s)", accuracy, counts[1],
                counts[0], counts[2] > 0 ? str(", ", counts[2], " skipped").c_str() : "");
  report.summary = line;
  return report;
}

EvalReport EvaluationSet::run(LlamaModel& model, int64_t step) {
  EvalReport all;
  for (size_t i = 0; i < parts_.size(); ++i) {
    EvalReport one = parts_[i]->run(model, step);
    all.fields.insert(all.fields.end(), one.fields.begin(), one.fields.end());
    all.summary += (all.summary.empty() ? "" : ", ") + one.summary;
    if (i == ranked_by_) all.rank_metric = one.rank_metric;
  }
  return all;
}

}  // namespace zerotune
