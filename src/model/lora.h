// LoRA (low-rank adaptation) as PEFT computes it: beside each targeted linear layer of a decoder
// layer, y = W x + scale * B A dropout(x) with A [r, in], B [out, r] and scale = alpha / r
// (alpha / sqrt(r) with rsLoRA). The base model is frozen; only A, B and modules_to_save train.
//
// The adapters of decoder layer l are one parameter group "lora.<l>" appended after the model's
// own groups (LlamaParams::add_group), so that the ZeRO engine shards, reduces, steps and saves
// them like any group. Their views carry PEFT's tensor names, e.g.
// "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"
#include "model/llama.h"

namespace zerotune {

// The seven linear layers of a decoder layer, named as in PEFT's target_modules.
enum class LoraModule : uint8_t { q, k, v, o, gate, up, down };
inline constexpr int kLoraModuleCount = 7;
const char* lora_module_name(LoraModule m);  // "q_proj"
std::string lora_module_path(LoraModule m);  // "self_attn.q_proj"

// The weights the model multiplies by (params.h): q/k/v are one stacked GEMM, gate/up another.
enum class LoraStack : uint8_t { qkv, o, gate_up, down };

// PEFT's LoraConfig keys that zerotune acts on; defaults are those of zerotune's `--lora` (the
// Python job's LoRA config), not PEFT's.
struct LoraConfig {
  int64_t r = 8;
  double alpha = 16.0;
  double dropout = 0.05;
  std::vector<std::string> target_modules = {"gate_proj", "up_proj", "down_proj"};
  bool use_rslora = false;
  std::vector<std::string> modules_to_save;  // "embed_tokens", "lm_head"
  // "true": A Kaiming-uniform, B zero; "gaussian": A normal(0, 1/r), B zero; "false": B
  // Kaiming-uniform as well (PEFT's nn.Linear default: the adapter starts away from the base).
  std::string init_lora_weights = "true";
  std::string base_model;  // base_model_name_or_path

  double scale() const;                         // alpha / r, or alpha / sqrt(r) with use_rslora
  bool targets(LoraModule m) const;             // after "all-linear" was expanded
  bool saves(const std::string& module) const;  // modules_to_save holds it
};

// Reads PEFT's LoraConfig keys from `j` (a --lora-config file or an adapter_config.json named
// `source`): unknown keys are warned about on stderr, wrong values refused naming the key. PEFT
// keys that zerotune does not implement are refused unless they hold PEFT's default.
LoraConfig parse_lora_config(const json::Value& j, const std::string& source);
LoraConfig read_lora_config_file(const std::string& path);
// adapter_config.json as PEFT writes it (peft_type LORA, task_type CAUSAL_LM, inference_mode).
json::Value lora_config_json(const LoraConfig& c);
// Checks the targets against the model: each target_modules entry must name one of its linear
// layers (the error lists them), modules_to_save only embed_tokens / lm_head.
void check_lora_targets(const LoraConfig& c);

// One adapted linear layer: rows [row_begin, row_begin + out) of its stack's output.
struct LoraSite {
  LoraModule module;
  LoraStack stack;
  int64_t in, out;             // the base weight is [out, in]
  int64_t row_begin;           // first output column of the stack the module writes
  int64_t stack_rows;          // the stack's output width
  int64_t a_offset, b_offset;  // in the layer's adapter group: A [r, in], B [out, r]
};
std::vector<LoraSite> lora_sites(const LlamaConfig& model, const LoraConfig& lora);
// PEFT's tensor names of layer l's site: "base_model.model.model.layers.<l>.<path>.lora_A.weight".
std::string lora_tensor_name(int64_t l, LoraModule m, char which);

// Appends one adapter group per decoder layer to `layout` and marks the base groups frozen,
// except those modules_to_save names (embed_tokens: the embedding group, lm_head: the head
// group; both when tied). Returns the first adapter group's index.
int64_t add_lora_groups(LlamaParams& layout, const LoraConfig& lora);
// The initial values of layer l's adapter group ([numel] f32), as init_lora_weights says, from a
// generator seeded by (seed, l).
void init_lora_group(const Tensor& values, const LlamaConfig& model, const LoraConfig& lora,
                     int64_t l, uint64_t seed);

// The adapters' arithmetic inside LlamaModel: after each stack's base GEMM, forward adds every
// targeted module's scale * B A dropout(x) into its rows; backward adds the adapters' input
// gradient into dx and accumulates dA, dB. Scratch is grow-only and lives on the model's device.
class LoraLayers {
 public:
  LoraLayers(const LlamaConfig& model, LoraConfig lora, int64_t first_group, uint64_t seed);

  const LoraConfig& config() const { return lora_; }
  int64_t first_group() const { return first_group_; }
  int64_t group(int64_t l) const { return first_group_ + l; }
  // The dropout masks of the next forward_backward (ignored in evaluation, which has none).
  void set_dropout_key(uint64_t key) { dropout_key_ = key; }
  // Mask seed of layer l's module m for the current key (exposed for the reference test).
  uint64_t dropout_seed(int64_t l, LoraModule m) const;

  // x: [N, in] the stack's input, y: [N, stack_rows] its output (+= adapters).
  void forward(LoraStack stack, int64_t l, const ParamGroup& adapters, const Tensor& x,
               const Tensor& y, bool training);
  // dy: [N, stack_rows], dx: [N, in] (+= adapters' input gradient); grads: layer l's adapter
  // gradient group (f32, accumulated).
  void backward(LoraStack stack, int64_t l, const ParamGroup& adapters, const ParamGroup& grads,
                const Tensor& x, const Tensor& dy, const Tensor& dx);

 private:
  // The site's scale * B ([out, r], compute dtype, in scratch).
  Tensor scaled_b(const LoraSite& s, const ParamGroup& adapters);
  // x or dropout(x) ([N, in] in scratch).
  Tensor dropped_input(const LoraSite& s, int64_t l, const Tensor& x, bool training);
  Tensor scratch(Buffer& slot, DType dtype, Shape shape, Device device);
  // dropout(x) A^T [N, r] of layer l's site, kept from the forward (grow-only).
  Buffer& saved_u(int64_t l, size_t site);

  LlamaConfig model_;
  LoraConfig lora_;
  std::vector<LoraSite> sites_;
  int64_t first_group_;
  uint64_t seed_;
  uint64_t dropout_key_ = 0;
  Buffer x_drop_, u_, du_, dx_part_, b_scaled_, db_part_;
  std::vector<Buffer> u_saved_;  // [L * sites] of [N, r]
};

}  // namespace zerotune
