// Model parameters as flat buffers, one per group: the embedding, each decoder layer, the final
// norm and (untied) the LM head. Each group holds named views with Hugging Face's tensor names and
// layouts. Gradients and optimizer state use the same structure, so the sharding engine can
// partition a group's flat buffer without knowing what is inside.
#pragma once

#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "model/config.h"

namespace zerotune {

struct ParamView {
  std::string name;  // HF name, e.g. "model.layers.3.self_attn.q_proj.weight"
  int64_t offset;    // elements from the start of the group's buffer
  Shape shape;       // HF's, e.g. [H*Dh, D] for q_proj, [V, D] for embed_tokens
};

struct ParamGroup {
  std::string name;  // "embed", "layer.3", "norm", "head"
  Buffer data;       // [numel] flat, in LlamaParams' dtype (f32, or bf16 for a compute copy)
  std::vector<ParamView> views;
  // False for a frozen group (LoRA's base): no gradient, no master copy, no AdamW state.
  bool trainable = true;

  Tensor view(const ParamView& v) const;
};

// Offsets of a decoder layer's tensors in its flat buffer. q, k, v are adjacent (one [qkv, D]
// GEMM) and so are gate and up (one [2F, D] GEMM). Qwen2's q/k/v biases are one stacked [qkv]
// vector after the weights (qkv_bias = -1 without them).
struct LayerLayout {
  int64_t input_norm, qkv, o, post_norm, gate_up, down, qkv_bias, total;
  explicit LayerLayout(const LlamaConfig& c);
};

// Typed views of one layer's buffer (weights or their gradients alike), in the group's dtype.
struct LayerTensors {
  Tensor input_norm;  // [D]
  Tensor wqkv;        // [(H + 2*Hkv)*Dh, D] q_proj, k_proj, v_proj stacked
  Tensor wo;          // [D, H*Dh]
  Tensor post_norm;   // [D]
  Tensor wgate_up;    // [2F, D] gate_proj, up_proj stacked
  Tensor wdown;       // [D, F]
  Tensor qkv_bias;    // [(H + 2*Hkv)*Dh] q, k, v biases stacked; empty (no data) without them
};

enum class Storage : uint8_t { allocated, none };

class LlamaParams {
 public:
  LlamaParams() = default;
  // All zeros; with Storage::none the groups have their views but no memory (a sharding engine
  // binds each group's buffer while it is in use).
  explicit LlamaParams(const LlamaConfig& config, Storage storage = Storage::allocated,
                       DType dtype = DType::f32, Device device = Device::cpu());

  // Appends a group after the model's own (LoRA adapters, model/lora.h); returns its index.
  int64_t add_group(ParamGroup group);
  // The same groups (names, views, trainable), with memory of `dtype` on `device` or none.
  LlamaParams like(Storage storage, DType dtype = DType::f32, Device device = Device::cpu()) const;

  // Group indices, for GroupHooks.
  int64_t embed_group() const { return 0; }
  int64_t layer_group(int64_t l) const { return first_layer_group_ + l; }
  int64_t norm_group() const { return first_layer_group_ + config_.num_hidden_layers; }
  int64_t head_group() const {
    return config_.tie_word_embeddings ? 0 : first_layer_group_ + config_.num_hidden_layers + 1;
  }
  // Elements of group g (its views' extent), whether or not memory is bound.
  int64_t group_numel(size_t g) const;

  const LlamaConfig& config() const { return config_; }
  std::vector<ParamGroup>& groups() { return groups_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }

  Tensor embedding() const;   // [V, D]
  Tensor final_norm() const;  // [D]
  Tensor head() const;        // [V, D]; the embedding when tied
  LayerTensors layer(int64_t l) const;

  // Every named tensor (for tied models the head is not listed separately).
  std::vector<std::pair<std::string, Tensor>> named() const;
  const ParamView* find(const std::string& name, const ParamGroup** group) const;
  int64_t numel() const;
  // A copy of every group in `dtype` on `device` (e.g. a bf16 compute copy on a GPU).
  LlamaParams placed(DType dtype, Device device) const;
  void zero();
  // Normal(0, std) for matrices, ones for norm weights (what `init` writes).
  void init_random(uint64_t seed, float std = 0.02f);

 private:
  LlamaConfig config_;
  std::vector<ParamGroup> groups_;
  int64_t first_layer_group_ = 1;
};

}  // namespace zerotune
