#include "model/llama.h"

#include <cstring>

#include "core/profile.h"
#include "kernels/attention.h"
#include "kernels/bias.h"
#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "model/lora.h"

namespace zerotune {

#define ZT_PROFILED(region, call) \
  do {                            \
    ProfileScope scope_(region);  \
    call;                         \
  } while (0)

LlamaModel::LlamaModel(const LlamaConfig& config, Checkpointing checkpointing)
    : LlamaModel(LlamaParams(config), checkpointing) {}

LlamaModel::LlamaModel(LlamaParams params, Checkpointing checkpointing, GradStorage grads,
                       Placement placement)
    : config_(params.config()),
      checkpointing_(checkpointing),
      placement_(placement),
      params_(std::move(params)),
      grads_(params_.like(grads == GradStorage::owned ? Storage::allocated : Storage::none,
                          DType::f32, placement.device)) {
  for (const ParamGroup& g : params_.groups()) {
    ZT_CHECK(!g.data.view().data || (g.data.view().device == placement.device &&
                                     g.data.view().dtype == placement.dtype),
             "LlamaModel: parameter group ", g.name, " is ", describe(g.data.view()), " on ",
             g.data.view().device.name(), ", expected ", dtype_name(placement.dtype), " on ",
             placement.device.name());
  }
  const LlamaConfig& config = config_;
  const int64_t half = config.head_dim / 2;
  rope_cos_ = Buffer(DType::f32, Shape{config.max_position_embeddings, half});  // [P, Dh/2]
  rope_sin_ = Buffer(DType::f32, Shape{config.max_position_embeddings, half});  // [P, Dh/2]
  rope_tables(rope_cos_, rope_sin_, config.rope_theta, config.rope_scaling);
  if (!placement.device.is_cpu()) {
    for (Buffer* table : {&rope_cos_, &rope_sin_}) {
      Buffer on_device(DType::f32, table->view().shape, placement.device);  // [P, Dh/2] f32
      copy(on_device, *table);
      *table = std::move(on_device);
    }
  }
}

void LlamaModel::prepare(const TokenBatch& batch, bool backward) {
  ZT_CHECK(batch.seq_len <= config_.max_position_embeddings, "LlamaModel: sequence length ",
           batch.seq_len, " exceeds max_position_embeddings ", config_.max_position_embeddings);
  ZT_CHECK(config_.sliding_window == 0 || batch.seq_len <= config_.sliding_window,
           "LlamaModel: sequence length ", batch.seq_len, " exceeds the sliding window ",
           config_.sliding_window, ", which is not implemented");
  const int64_t n = batch.batch * batch.seq_len;
  // Backward without checkpointing keeps every layer's activations; a forward-only pass
  // (evaluation) and checkpointed training reuse one set, and evaluation needs no gradients.
  const size_t want_acts = backward && checkpointing_ == Checkpointing::off
                               ? static_cast<size_t>(config_.num_hidden_layers)
                               : size_t{1};
  if (n == rows_ && batch.batch == batch_rows_ && acts_.size() == want_acts &&
      backward == gradient_buffers_) {
    return;
  }
  rows_ = n;
  batch_rows_ = batch.batch;
  gradient_buffers_ = backward;
  const LlamaConfig& c = config_;
  const int64_t d = c.hidden_size, f = c.intermediate_size, L = c.num_hidden_layers;
  const DType dt = placement_.dtype;
  // Every buffer is a view of an arena slot that only grows: batches of another size (packed
  // rows vary, evaluation batches differ) reuse the memory, and a step allocates nothing once the
  // largest batch has been seen.
  size_t slot = 0;
  auto bind = [&](Buffer& named, DType dtype, Shape shape) {
    if (arena_.size() <= slot) arena_.resize(slot + 1);
    Buffer& storage = arena_[slot++];  // [>= numel of shape] flat, in `dtype`
    const int64_t count = shape.numel();
    if (!storage.view().data || storage.view().dtype != dtype || storage.numel() < count) {
      storage = Buffer();  // the old memory goes back before the larger piece is taken
      storage = Buffer(dtype, Shape{count}, placement_.device);
    }
    named = Buffer::borrow(storage.view().flat(0, count).reshape(shape));
  };
  // Each layer's input, kept for the backward; a forward-only pass alternates between two rows.
  bind(residual_, dt, Shape{backward ? L + 1 : std::min<int64_t>(L + 1, 2), n, d});
  acts_.resize(want_acts);
  for (LayerActivations& a : acts_) {
    bind(a.xn1, dt, Shape{n, d});
    bind(a.rstd1, DType::f32, Shape{n});
    bind(a.qkv, dt, Shape{n, c.qkv_dim()});
    bind(a.attn, dt, Shape{n, c.q_dim()});
    bind(a.lse, DType::f32, Shape{batch.batch, c.num_attention_heads, batch.seq_len});
    bind(a.x_mid, dt, Shape{n, d});
    bind(a.xn2, dt, Shape{n, d});
    bind(a.rstd2, DType::f32, Shape{n});
    bind(a.gate_up, dt, Shape{n, 2 * f});
    bind(a.h, dt, Shape{n, f});
  }
  bind(final_xn_, dt, Shape{n, d});
  bind(final_rstd_, DType::f32, Shape{n});
  if (!backward) return;  // the gradient buffers' slots stay allocated for the next training step
  bind(scratch_x_, dt, Shape{n, d});
  bind(d_res_, dt, Shape{n, d});
  bind(d_x_, dt, Shape{n, d});
  bind(d_h_, dt, Shape{n, f});
  bind(d_gate_up_, dt, Shape{n, 2 * f});
  bind(d_attn_, dt, Shape{n, c.q_dim()});
  bind(d_qkv_, dt, Shape{n, c.qkv_dim()});
}

static AttentionShape attention_shape(const LlamaConfig& c, const TokenBatch& b) {
  return AttentionShape{b.batch, b.seq_len, c.num_attention_heads, c.num_key_value_heads,
                        c.head_dim};
}

// x_out = x_mid + down(swiglu(gate_up(norm2(x_mid)))), x_mid = x_in +
// o(attn(rope(qkv(norm1(x_in))))).
void LlamaModel::layer_forward(int64_t l, const Tensor& x_in, const Tensor& x_out,
                               LayerActivations& a, const TokenBatch& batch) {
  const LayerTensors w = params_.layer(l);  // weights in the compute dtype
  const LlamaConfig& c = config_;
  ZT_PROFILED("rmsnorm_forward",
              rmsnorm_forward(a.xn1, a.rstd1, x_in, w.input_norm, c.rms_norm_eps));
  ZT_PROFILED("linear_forward", linear_forward(a.qkv, a.xn1, w.wqkv));
  if (c.qkv_bias) ZT_PROFILED("bias_forward", bias_forward(a.qkv, w.qkv_bias));
  lora_forward(static_cast<int>(LoraStack::qkv), l, a.xn1, a.qkv);
  ZT_PROFILED("rope", rope_apply(a.qkv, c.num_attention_heads + c.num_key_value_heads,
                                 batch.positions, rope_cos_, rope_sin_, RopeDirection::forward));
  ZT_PROFILED("attention_forward",
              attention_forward(a.attn, a.lse, a.qkv, batch.segments, attention_shape(c, batch)));
  copy(a.x_mid, x_in);
  ZT_PROFILED("linear_forward", linear_forward(a.x_mid, a.attn, w.wo, Accumulate::yes));
  lora_forward(static_cast<int>(LoraStack::o), l, a.attn, a.x_mid);
  ZT_PROFILED("rmsnorm_forward",
              rmsnorm_forward(a.xn2, a.rstd2, a.x_mid, w.post_norm, c.rms_norm_eps));
  ZT_PROFILED("linear_forward", linear_forward(a.gate_up, a.xn2, w.wgate_up));
  lora_forward(static_cast<int>(LoraStack::gate_up), l, a.xn2, a.gate_up);
  ZT_PROFILED("swiglu_forward", swiglu_forward(a.h, a.gate_up));
  copy(x_out, a.x_mid);
  ZT_PROFILED("linear_forward", linear_forward(x_out, a.h, w.wdown, Accumulate::yes));
  lora_forward(static_cast<int>(LoraStack::down), l, a.h, x_out);
}

// dres enters as dL/dx_out and leaves as dL/dx_in; both residual branches add into it.
void LlamaModel::layer_backward(int64_t l, const Tensor& x_in, const Tensor& dres,
                                LayerActivations& a, const TokenBatch& batch) {
  const LayerTensors w = params_.layer(l);  // weights in the compute dtype
  const LayerTensors g = layer_grads(l);    // their gradients, f32
  const LlamaConfig& c = config_;
  ZT_PROFILED("linear_backward", linear_backward(d_h_, g.wdown, dres, a.h, w.wdown));
  lora_backward(static_cast<int>(LoraStack::down), l, a.h, dres, d_h_);
  ZT_PROFILED("swiglu_backward", swiglu_backward(d_gate_up_, d_h_, a.gate_up));
  ZT_PROFILED("linear_backward", linear_backward(d_x_, g.wgate_up, d_gate_up_, a.xn2, w.wgate_up));
  lora_backward(static_cast<int>(LoraStack::gate_up), l, a.xn2, d_gate_up_, d_x_);
  ZT_PROFILED("rmsnorm_backward", rmsnorm_backward(dres, g.post_norm, d_x_, a.x_mid, w.post_norm,
                                                   a.rstd2, Accumulate::yes));
  ZT_PROFILED("linear_backward", linear_backward(d_attn_, g.wo, dres, a.attn, w.wo));
  lora_backward(static_cast<int>(LoraStack::o), l, a.attn, dres, d_attn_);
  ZT_PROFILED("attention_backward", attention_backward(d_qkv_, d_attn_, a.qkv, a.attn, a.lse,
                                                       batch.segments, attention_shape(c, batch)));
  ZT_PROFILED("rope", rope_apply(d_qkv_, c.num_attention_heads + c.num_key_value_heads,
                                 batch.positions, rope_cos_, rope_sin_, RopeDirection::backward));
  if (c.qkv_bias && g.qkv_bias.data) {  // a frozen base (LoRA) has no bias gradient
    ZT_PROFILED("bias_backward", bias_backward(g.qkv_bias, d_qkv_));
  }
  ZT_PROFILED("linear_backward", linear_backward(d_x_, g.wqkv, d_qkv_, a.xn1, w.wqkv));
  lora_backward(static_cast<int>(LoraStack::qkv), l, a.xn1, d_qkv_, d_x_);
  ZT_PROFILED("rmsnorm_backward", rmsnorm_backward(dres, g.input_norm, d_x_, x_in, w.input_norm,
                                                   a.rstd1, Accumulate::yes));
}

bool LlamaModel::trainable(int64_t group) const {
  return params_.groups()[static_cast<size_t>(group)].trainable;
}

Tensor LlamaModel::norm_grad(int64_t group, const Tensor& grad) {
  if (trainable(group)) return grad;
  if (!frozen_norm_grad_.view().data) {
    frozen_norm_grad_ = Buffer(DType::f32, Shape{config_.hidden_size}, placement_.device);
  }
  return frozen_norm_grad_;
}

LayerTensors LlamaModel::layer_grads(int64_t l) {
  const int64_t group = params_.layer_group(l);
  if (trainable(group)) return grads_.layer(l);
  LayerTensors frozen;  // matrices empty: linear_backward computes the input gradient only
  frozen.input_norm = norm_grad(group, Tensor());
  frozen.post_norm = frozen.input_norm;
  return frozen;
}

void LlamaModel::lora_forward(int stack, int64_t l, const Tensor& x, const Tensor& y) {
  if (!lora_) return;
  ProfileScope scope("lora_forward");
  const ParamGroup& adapters = params_.groups()[static_cast<size_t>(lora_->group(l))];
  lora_->forward(static_cast<LoraStack>(stack), l, adapters, x, y, training_);
}

void LlamaModel::lora_backward(int stack, int64_t l, const Tensor& x, const Tensor& dy,
                               const Tensor& dx) {
  if (!lora_) return;
  ProfileScope scope("lora_backward");
  const size_t g = static_cast<size_t>(lora_->group(l));
  lora_->backward(static_cast<LoraStack>(stack), l, params_.groups()[g], grads_.groups()[g], x, dy,
                  dx);
}

namespace {

// Without a sharding engine every group is always present.
class ResidentGroups final : public GroupHooks {
 public:
  void fetch_params(int64_t, int64_t) override {}
  void release_params(int64_t) override {}
  void begin_grads(int64_t) override {}
  void end_grads(int64_t) override {}
};

}  // namespace

const TokenBatch& LlamaModel::placed(const TokenBatch& batch) {
  if (placement_.device.is_cpu()) return batch;
  TokenBatch& b = device_batch_;
  const int64_t n = batch.batch * batch.seq_len;
  if (batch_storage_.numel() < 4 * n) {  // grows only: ids, targets, positions, segments
    batch_storage_ = Buffer();
    batch_storage_ = Buffer(DType::i32, Shape{4 * n}, placement_.device);
  }
  // The k-th [B*T] i32 quarter of batch_storage_.
  auto part = [&](int64_t k) { return Buffer::borrow(batch_storage_.view().flat(k * n, n)); };
  b.ids = part(0);
  b.targets = part(1);
  b.positions = part(2);
  b.batch = batch.batch;
  b.seq_len = batch.seq_len;
  copy(b.ids, batch.ids);
  copy(b.targets, batch.targets);
  copy(b.positions, batch.positions);
  if (batch.segments.view().data) {
    b.segments = part(3);
    copy(b.segments, batch.segments);
  } else {
    b.segments = Buffer();
  }
  return b;
}

CrossEntropyResult LlamaModel::run(const TokenBatch& host_batch, float loss_scale, bool backward) {
  prepare(host_batch, backward);
  const TokenBatch& batch = placed(host_batch);
  static ResidentGroups resident;
  GroupHooks& hooks = hooks_ ? *hooks_ : resident;
  const LlamaConfig& c = config_;
  const int64_t n = rows_, d = c.hidden_size, L = c.num_hidden_layers;
  const int64_t embed = params_.embed_group(), norm = params_.norm_group(),
                head = params_.head_group();
  const bool tied = head == embed;
  const Tensor& residual = residual_.view();  // [L+1 (or 2), B*T, D]
  auto layer_input = [&](int64_t l) {         // [B*T, D]
    return residual.rows(backward ? l : l % residual.dim(0), 1).reshape(Shape{n, d});
  };
  auto acts_for = [&](int64_t l) -> LayerActivations& {
    return acts_[acts_.size() == 1 ? 0 : static_cast<size_t>(l)];
  };
  auto layer_group = [&](int64_t l) { return params_.layer_group(l); };
  training_ = backward;
  // LoRA: layer l's adapter group is fetched (and its gradient bracketed) with the layer's.
  auto adapters = [&](int64_t l, void (GroupHooks::*call)(int64_t)) {
    if (lora_) (hooks.*call)(lora_->group(l));
  };

  hooks.fetch_params(embed, L > 0 ? layer_group(0) : norm);
  embedding_forward(layer_input(0), batch.ids, params_.embedding());
  hooks.release_params(embed);
  for (int64_t l = 0; l < L; ++l) {
    hooks.fetch_params(layer_group(l), l + 1 < L ? layer_group(l + 1) : norm);
    if (lora_) hooks.fetch_params(lora_->group(l), -1);
    layer_forward(l, layer_input(l), layer_input(l + 1), acts_for(l), batch);
    adapters(l, &GroupHooks::release_params);
    hooks.release_params(layer_group(l));
  }
  hooks.fetch_params(norm, head);
  rmsnorm_forward(final_xn_, final_rstd_, layer_input(L), params_.final_norm(), c.rms_norm_eps);
  hooks.fetch_params(head, backward && L > 0 ? layer_group(L - 1) : -1);
  if (!backward) {
    const CrossEntropyResult result =
        lm_head_cross_entropy(final_xn_, params_.head(), batch.targets, 0.0f, Tensor(), Tensor());
    hooks.release_params(head);
    hooks.release_params(norm);
    return result;
  }
  CrossEntropyResult result;
  hooks.begin_grads(head);
  ZT_PROFILED("lm_head_cross_entropy",
              result = lm_head_cross_entropy(final_xn_, params_.head(), batch.targets, loss_scale,
                                             d_x_, trainable(head) ? grads_.head() : Tensor()));
  if (!tied) hooks.end_grads(head);  // a tied head's gradient is complete after the embedding's
  hooks.release_params(head);
  hooks.begin_grads(norm);
  rmsnorm_backward(d_res_, norm_grad(norm, trainable(norm) ? grads_.final_norm() : Tensor()), d_x_,
                   layer_input(L), params_.final_norm(), final_rstd_, Accumulate::no);
  hooks.end_grads(norm);
  hooks.release_params(norm);
  for (int64_t l = L - 1; l >= 0; --l) {
    hooks.fetch_params(layer_group(l), l > 0 ? layer_group(l - 1) : -1);
    if (lora_) hooks.fetch_params(lora_->group(l), -1);
    hooks.begin_grads(layer_group(l));
    adapters(l, &GroupHooks::begin_grads);
    if (checkpointing_ == Checkpointing::per_layer) {
      // Recompute the layer from its saved input with the same kernels: bit-identical.
      layer_forward(l, layer_input(l), scratch_x_, acts_for(l), batch);
    }
    layer_backward(l, layer_input(l), d_res_, acts_for(l), batch);
    adapters(l, &GroupHooks::end_grads);
    hooks.end_grads(layer_group(l));
    adapters(l, &GroupHooks::release_params);
    hooks.release_params(layer_group(l));
  }
  if (!tied) hooks.begin_grads(embed);
  if (trainable(embed)) {
    ZT_PROFILED("embedding_backward", embedding_backward(grads_.embedding(), batch.ids, d_res_));
  }
  hooks.end_grads(embed);
  return result;
}

CrossEntropyResult LlamaModel::forward_backward(const TokenBatch& batch, float loss_scale) {
  return run(batch, loss_scale, true);
}

CrossEntropyResult LlamaModel::forward_loss(const TokenBatch& batch) {
  return run(batch, 0.0f, false);
}

}  // namespace zerotune
