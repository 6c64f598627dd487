#include "train/evaluation.h"

#include <unistd.h>

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

// A LoRA run's adapter tensors, gathered from the adapter groups after the model's own (f32, on
// every rank). modules_to_save are left out: they trained in place and are gathered as groups.
PeftAdapter gather_adapter(ZeroEngine& engine, const LlamaParams& model_params, int64_t first_group,
                           const LoraConfig& lora) {
  PeftAdapter adapter;
  adapter.config = lora;
  adapter.config.modules_to_save.clear();
  for (size_t g = static_cast<size_t>(first_group); g < model_params.groups().size(); ++g) {
    for (const ParamView& view : model_params.groups()[g].views) {
      Buffer values(DType::f32, view.shape);  // [r, in] or [out, r]
      engine.gather_tensor(view.name, values.f32());
      engine.comm().broadcast(values.f32(), view.shape.numel() * 4, 0);
      adapter.tensors.emplace(view.name, std::move(values));
    }
  }
  return adapter;
}

// Group g of the model in f32 into `values` ([numel] host), on every rank. A trainable group comes
// from the engine's f32 master values (gathered to rank 0 a tensor at a time and broadcast); a
// frozen group (LoRA's base) has only its compute copy, fetched as the model fetches it.
void gather_group_f32(ZeroEngine& engine, const LlamaParams& model_params, size_t g,
                      const ParamGroup& layout, float* values) {
  const ParamGroup& source = model_params.groups()[g];
  if (source.trainable) {
    for (const ParamView& view : layout.views) {
      engine.gather_tensor(view.name, values + view.offset);
      engine.comm().broadcast(values + view.offset, view.shape.numel() * 4, 0);
    }
    return;
  }
  const int64_t numel = model_params.group_numel(g);
  engine.fetch_params(static_cast<int64_t>(g), -1);
  convert_copy(Tensor(values, DType::f32, Shape{numel}, Device::cpu()),
               source.data.view().flat(0, numel));
  engine.release_params(static_cast<int64_t>(g));
}

// The whole model for decoding on every rank, in the compute dtype on the compute device
// (collective), with a LoRA run's adapters merged (W + scale B A). It is assembled a group at a
// time through one f32 host group, so a rank holds the decode copy (a 7B model in bf16 on a GPU:
// 13.5 GB there) and at most one group in f32 on the host, never a second whole model.
LlamaParams gather_decode_params(ZeroEngine& engine, const LlamaParams& model_params,
                                 const std::optional<LoraConfig>& lora, Placement placement) {
  LlamaParams staging(model_params.config(), Storage::none);  // the model's own groups
  LlamaParams decode(model_params.config(), Storage::allocated, placement.dtype, placement.device);
  std::optional<PeftAdapter> adapter;
  if (lora) {
    adapter = gather_adapter(engine, model_params,
                             static_cast<int64_t>(staging.groups().size()), *lora);
  }
  const int64_t first_layer = staging.layer_group(0);
  const int64_t layers = staging.config().num_hidden_layers;
  for (size_t g = 0; g < staging.groups().size(); ++g) {
    ParamGroup& group = staging.groups()[g];
    group.data = Buffer(DType::f32, Shape{staging.group_numel(g)});
    gather_group_f32(engine, model_params, g, group, group.data.f32());
    const int64_t l = static_cast<int64_t>(g) - first_layer;
    if (adapter && l >= 0 && l < layers) merge_adapter_layer(staging, *adapter, l);
    convert_copy(decode.groups()[g].data, group.data);
    group.data = Buffer();
  }
  return decode;
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
    const LlamaParams decode = gather_decode_params(engine_, model.params(), lora_, placement_);
    // Rank 0's share, on a terminal only: logs keep one summary line per epoch.
    const Timer timer;
    const bool show = comm.rank() == 0 && isatty(2);
    const EvalOutcome outcome =
        evaluate_items(decode, tokenizer_, mine, settings_,
                       show ? eval_progress_line(static_cast<int64_t>(mine.size()), timer)
                            : OnProgress());
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
