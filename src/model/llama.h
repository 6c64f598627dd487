// The Llama decoder's explicit forward and backward on the CPU backend.
#pragma once

#include <vector>

#include "core/token_batch.h"
#include "kernels/cross_entropy.h"
#include "model/params.h"

namespace zerotune {

enum class Checkpointing : uint8_t { off, per_layer };

class LoraLayers;  // model/lora.h

// Called around every use of a parameter group (indices into LlamaParams::groups()), so that a
// sharding engine can gather a group's weights just before they are used and reduce its gradient
// as soon as it is complete. Between fetch_params and release_params the model reads
// params().groups()[g].data; between begin_grads and end_grads it accumulates into
// grads().groups()[g].data. `next` is the group the model will fetch after this one (-1: none),
// for prefetching.
class GroupHooks {
 public:
  virtual ~GroupHooks() = default;
  virtual void fetch_params(int64_t group, int64_t next) = 0;
  virtual void release_params(int64_t group) = 0;
  virtual void begin_grads(int64_t group) = 0;
  virtual void end_grads(int64_t group) = 0;
};

// Whether the model allocates its own gradient buffers or a sharding engine provides them.
enum class GradStorage : uint8_t { owned, external };

// Where the model computes: activations and parameters in `dtype` (f32, or bf16 on CUDA) on
// `device`; parameter gradients, norms' rstd and attention's lse stay f32.
struct Placement {
  Device device = Device::cpu();
  DType dtype = DType::f32;
};

class LlamaModel {
 public:
  LlamaModel(const LlamaConfig& config, Checkpointing checkpointing);  // zero weights
  // Takes ownership of loaded weights (no second copy of the model in memory). With
  // GradStorage::external the gradient groups start empty and `hooks` binds them.
  LlamaModel(LlamaParams params, Checkpointing checkpointing,
             GradStorage grads = GradStorage::owned, Placement placement = {});
  void set_hooks(GroupHooks* hooks) { hooks_ = hooks; }
  // LoRA adapters over the frozen groups (model/lora.h); their groups are among params(). Not
  // owned; null: full fine-tuning.
  void set_lora(LoraLayers* lora) { lora_ = lora; }
  LoraLayers* lora() const { return lora_; }

  const LlamaConfig& config() const { return config_; }
  LlamaParams& params() { return params_; }
  const LlamaParams& params() const { return params_; }
  LlamaParams& grads() { return grads_; }
  void set_checkpointing(Checkpointing c) { checkpointing_ = c; }

  // Forward and backward of one micro-batch. Parameter gradients accumulate (+=) the gradient of
  // loss_scale * (sum of token losses); returns the unscaled loss sum and the counted tokens.
  CrossEntropyResult forward_backward(const TokenBatch& batch, float loss_scale);
  // Forward only (evaluation).
  CrossEntropyResult forward_loss(const TokenBatch& batch);

 private:
  // One decoder layer's saved activations, in the compute dtype unless marked f32.
  struct LayerActivations {
    Buffer xn1;      // [B*T, D] input_layernorm(x_in)
    Buffer rstd1;    // [B*T] f32, its 1/rms per row
    Buffer qkv;      // [B*T, (H + 2*Hkv)*Dh] q | k | v per row; q and k rotated in place
    Buffer attn;     // [B*T, H*Dh] attention output before o_proj
    Buffer lse;      // [B, H, T] f32, log-sum-exp of each score row
    Buffer x_mid;    // [B*T, D] x_in + o_proj(attn)
    Buffer xn2;      // [B*T, D] post_attention_layernorm(x_mid)
    Buffer rstd2;    // [B*T] f32
    Buffer gate_up;  // [B*T, 2F] gate | up per row
    Buffer h;        // [B*T, F] silu(gate) * up
  };
  void prepare(const TokenBatch& batch, bool backward);
  // The batch where the model computes (copied to the device when it is not the host).
  const TokenBatch& placed(const TokenBatch& batch);
  // x_in, x_out, dres: [B*T, D] in the compute dtype.
  void layer_forward(int64_t l, const Tensor& x_in, const Tensor& x_out, LayerActivations& a,
                     const TokenBatch& batch);
  void layer_backward(int64_t l, const Tensor& x_in, const Tensor& dres, LayerActivations& a,
                      const TokenBatch& batch);
  CrossEntropyResult run(const TokenBatch& batch, float loss_scale, bool backward);
  // LoRA hooks: the adapters of stack `stack` of layer l after its base GEMM, and their backward.
  void lora_forward(int stack, int64_t l, const Tensor& x, const Tensor& y);
  void lora_backward(int stack, int64_t l, const Tensor& x, const Tensor& dy, const Tensor& dx);
  // Whether group g computes a gradient (LoRA freezes the base model's groups).
  bool trainable(int64_t group) const;
  // A layer's gradient views; for a frozen layer its matrices are empty (only input gradients are
  // computed) and its norms write into frozen_norm_grad_.
  LayerTensors layer_grads(int64_t l);
  Tensor norm_grad(int64_t group, const Tensor& grad);

  LlamaConfig config_;
  Checkpointing checkpointing_;
  Placement placement_;
  GroupHooks* hooks_ = nullptr;
  LoraLayers* lora_ = nullptr;
  bool training_ = false;    // in forward_backward: LoRA's dropout applies
  Buffer frozen_norm_grad_;  // [D] f32: where a frozen norm's unused weight gradient goes
  TokenBatch device_batch_;  // ids, targets, positions, segments: each [B*T] i32 on the device
  LlamaParams params_;       // every group in the compute dtype on the device
  LlamaParams grads_;        // the same groups, always f32
  Buffer rope_cos_;          // [P, Dh/2] f32, P = max_position_embeddings
  Buffer rope_sin_;          // [P, Dh/2] f32

  // Activation memory: views of arena_ slots sized for the largest batch seen, bound to the last
  // (B, T); the batch's ids/targets/positions/segments on the device likewise in batch_storage_.
  std::vector<Buffer> arena_;  // one flat [numel] slot per bound buffer, in that buffer's dtype
  Buffer batch_storage_;       // [4*B*T] i32: ids | targets | positions | segments
  int64_t rows_ = 0, batch_rows_ = 0;
  bool gradient_buffers_ = false;
  // Compute dtype unless marked f32.
  Buffer residual_;  // [L+1, B*T, D] each layer's input and the last output ([2, ...] forward-only)
  std::vector<LayerActivations> acts_;  // L of them, or 1 reused when checkpointing
  Buffer final_xn_;                     // [B*T, D] norm(last layer's output), the LM head's input
  Buffer final_rstd_;                   // [B*T] f32
  Buffer scratch_x_;                    // [B*T, D] a recomputed layer's output, not needed again
  // Gradients of the activations (backward only); parameter gradients go to grads_.
  Buffer d_res_;      // [B*T, D] dL/d(residual stream) at the current layer boundary
  Buffer d_x_;        // [B*T, D] dL/d(a norm's output): final norm, post- and input norm
  Buffer d_h_;        // [B*T, F]
  Buffer d_gate_up_;  // [B*T, 2F]
  Buffer d_attn_;     // [B*T, H*Dh]
  Buffer d_qkv_;      // [B*T, (H + 2*Hkv)*Dh]
};

}  // namespace zerotune
