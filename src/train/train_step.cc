#include "train/train_step.h"

#include <cmath>

#include "core/check.h"
#include "core/profile.h"

namespace zerotune {
namespace {

void check_finite(double value, const char* what, int64_t step) {
  ZT_CHECK(std::isfinite(value), "training step ", step, ": ", what, " is ", value,
           "; training diverged (try a lower --lr or --grad-clip)");
}

}  // namespace

StepResult train_step(LlamaModel& model, ZeroEngine& engine,
                      const std::vector<TokenBatch>& micro_batches, const StepSettings& settings) {
  Communicator& comm = engine.comm();
  int64_t local_tokens = 0;
  for (const TokenBatch& micro : micro_batches) local_tokens += micro.count_targets();
  StepResult result;
  result.tokens = static_cast<int64_t>(comm.all_reduce_sum(static_cast<double>(local_tokens)));
  // Each micro-batch's loss is scaled by the global batch's token count, so the accumulated
  // gradient is that of the mean over the global batch.
  const float loss_scale = result.tokens ? 1.0f / static_cast<float>(result.tokens) : 0.0f;
  engine.zero_grads();
  double loss_sum = 0.0;
  for (size_t i = 0; i < micro_batches.size(); ++i) {
    const TokenBatch& micro = micro_batches[i];
    if (model.lora())
      model.lora()->set_dropout_key(lora_dropout_key(settings.step, comm.rank(), i));
    if (settings.observer) settings.observer->micro_batch_begin();
    loss_sum += model.forward_backward(micro, loss_scale).loss_sum;
    if (settings.observer) settings.observer->micro_batch_end();
  }
  loss_sum = comm.all_reduce_sum(loss_sum);
  result.loss = result.tokens ? loss_sum / static_cast<double>(result.tokens) : 0.0;
  result.grad_norm = engine.reduce_gradients();
  check_finite(result.grad_norm, "the gradient norm", settings.step);
  check_finite(result.loss, "the loss", settings.step);
  if (settings.grad_clip > 0.0) {
    // clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1.
    const double coef = settings.grad_clip / (result.grad_norm + 1e-6);
    if (coef < 1.0) engine.scale_gradients(static_cast<float>(coef));
  }
  ProfileScope scope("optimizer_step");
  engine.optimizer_step(settings.lr);
  return result;
}

SingleRankTraining single_rank_training(const LlamaParams& params, Checkpointing checkpointing,
                                        const ZeroOptions& options) {
  SingleRankTraining t;
  t.comm = make_single_communicator();
  const LlamaParams layout(params.config(), Storage::none);
  t.engine = std::make_unique<ZeroEngine>(layout, *t.comm, options);
  for (size_t g = 0; g < params.groups().size(); ++g) {
    t.engine->set_group_params(g, params.groups()[g].data);
  }
  t.model = std::make_unique<LlamaModel>(LlamaParams(params.config(), Storage::none), checkpointing,
                                         GradStorage::external, options.compute);
  t.engine->attach(*t.model);
  return t;
}

}  // namespace zerotune

namespace zerotune {

uint64_t lora_dropout_key(int64_t step, int rank, size_t micro) {
  return (static_cast<uint64_t>(step) << 32) ^ (static_cast<uint64_t>(rank) << 16) ^ micro;
}

SingleRankTraining single_rank_lora_training(const LlamaParams& params, const LoraConfig& lora,
                                             const AdapterValues& adapter_values, uint64_t seed,
                                             Checkpointing checkpointing,
                                             const ZeroOptions& options) {
  SingleRankTraining t;
  t.comm = make_single_communicator();
  LlamaParams layout(params.config(), Storage::none);
  const int64_t first = add_lora_groups(layout, lora);
  t.engine = std::make_unique<ZeroEngine>(layout, *t.comm, options);
  for (size_t g = 0; g < params.groups().size(); ++g) {
    t.engine->set_group_params(g, params.groups()[g].data);
  }
  for (int64_t l = 0; l < params.config().num_hidden_layers; ++l) {
    const size_t g = static_cast<size_t>(first + l);
    Buffer values(DType::f32, Shape{layout.group_numel(g)});  // [numel] f32
    adapter_values(l, layout.groups()[g], values);
    t.engine->set_group_params(g, values);
  }
  t.lora = std::make_unique<LoraLayers>(params.config(), lora, first, seed);
  t.model = std::make_unique<LlamaModel>(layout.like(Storage::none), checkpointing,
                                         GradStorage::external, options.compute);
  t.model->set_lora(t.lora.get());
  t.engine->attach(*t.model);
  return t;
}

}  // namespace zerotune
