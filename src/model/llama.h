// The Llama decoder's explicit forward and backward on the CPU backend.
#pragma once

#include <vector>

#include "core/token_batch.h"
#include "kernels/cross_entropy.h"
#include "model/params.h"

namespace zerotune {

enum class Checkpointing : uint8_t { off, per_layer };

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
  struct LayerActivations {
    Buffer xn1, rstd1, qkv, attn, lse, x_mid, xn2, rstd2, gate_up, h;
  };
  void prepare(const TokenBatch& batch, bool backward);
  // The batch where the model computes (copied to the device when it is not the host).
  const TokenBatch& placed(const TokenBatch& batch);
  void layer_forward(int64_t l, const Tensor& x_in, const Tensor& x_out, LayerActivations& a,
                     const TokenBatch& batch);
  void layer_backward(int64_t l, const Tensor& x_in, const Tensor& dres, LayerActivations& a,
                      const TokenBatch& batch);
  CrossEntropyResult run(const TokenBatch& batch, float loss_scale, bool backward);

  LlamaConfig config_;
  Checkpointing checkpointing_;
  Placement placement_;
  GroupHooks* hooks_ = nullptr;
  TokenBatch device_batch_;
  LlamaParams params_;
  LlamaParams grads_;
  Buffer rope_cos_, rope_sin_;  // [P, Dh/2]

  // Activation memory: views of arena_ slots sized for the largest batch seen, bound to the last
  // (B, T); the batch's ids/targets/positions/segments on the device likewise in batch_storage_.
  std::vector<Buffer> arena_;
  Buffer batch_storage_;
  int64_t rows_ = 0, batch_rows_ = 0;
  bool gradient_buffers_ = false;
  Buffer residual_;  // [L+1, B*T, D] each layer's input and the last output ([2, ...] forward-only)
  std::vector<LayerActivations> acts_;  // L of them, or 1 reused when checkpointing
  Buffer final_xn_, final_rstd_, scratch_x_;
  Buffer d_res_, d_x_, d_h_, d_gate_up_, d_attn_, d_qkv_;
};

}  // namespace zerotune
