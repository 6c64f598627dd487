#include "model/lora.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/rng.h"
#include "kernels/adamw.h"
#include "kernels/matmul.h"
#include "kernels/scaled_dropout.h"

namespace zerotune {

namespace {

constexpr LoraModule kModules[kLoraModuleCount] = {
    LoraModule::q,    LoraModule::k,  LoraModule::v,   LoraModule::o,
    LoraModule::gate, LoraModule::up, LoraModule::down};

// PEFT keys zerotune does not implement: accepted only with PEFT's default (null, false, {} or
// []), so that an adapter_config.json PEFT wrote reads back.
bool is_default_peft_value(const json::Value& v) {
  return v.is_null() || (v.is_bool() && !v.as_bool("")) ||
         ((v.is_object() || v.is_array()) && v.size() == 0);
}

const std::vector<std::string>& ignored_peft_keys() {
  static const std::vector<std::string> keys = {"peft_type",
                                                "task_type",
                                                "inference_mode",
                                                "base_model_name_or_path",
                                                "revision",
                                                "auto_mapping",
                                                "fan_in_fan_out",
                                                "layers_to_transform",
                                                "layers_pattern",
                                                "rank_pattern",
                                                "alpha_pattern",
                                                "megatron_config",
                                                "megatron_core",
                                                "loftq_config",
                                                "use_dora",
                                                "layer_replication",
                                                "runtime_config",
                                                "eva_config",
                                                "exclude_modules",
                                                "lora_bias",
                                                "target_parameters",
                                                "trainable_token_indices",
                                                "corda_config",
                                                "qalora_group_size",
                                                "use_qalora",
                                                "peft_version",
                                                "modules_to_save_config",
                                                "alora_invocation_tokens",
                                                "arrow_config",
                                                "ensure_weight_tying"};
  return keys;
}

std::vector<std::string> string_list(const json::Value& v, const std::string& what) {
  std::vector<std::string> out;
  if (v.is_null()) return out;
  if (v.is_string()) return {v.as_string(what)};
  for (const json::Value& item : v.as_array(what)) out.push_back(item.as_string(what));
  return out;
}

void read_init(LoraConfig& c, const json::Value& v, const std::string& what) {
  if (v.is_bool()) {
    c.init_lora_weights = v.as_bool(what) ? "true" : "false";
    return;
  }
  const std::string& s = v.as_string(what);
  ZT_CHECK(s == "gaussian", what, " must be true, false or \"gaussian\", got \"", s,
           "\" (PiSSA, OLoRA, LoftQ, EVA and CorDA initialisations are not implemented)");
  c.init_lora_weights = s;
}

// One key of a LoRA config; false when zerotune does not know it.
bool read_key(LoraConfig& c, const std::string& key, const json::Value& v,
              const std::string& what) {
  if (key == "r") {
    c.r = v.as_int64(what);
    ZT_CHECK(c.r > 0, what, " must be a positive rank, got ", c.r);
  } else if (key == "lora_alpha") {
    c.alpha = v.as_double(what);
    ZT_CHECK(std::isfinite(c.alpha) && c.alpha > 0.0, what, " must be positive, got ", c.alpha);
  } else if (key == "lora_dropout") {
    c.dropout = v.as_double(what);
    ZT_CHECK(c.dropout >= 0.0 && c.dropout < 1.0, what, " must be in [0, 1), got ", c.dropout);
  } else if (key == "target_modules") {
    c.target_modules = string_list(v, what);
    ZT_CHECK(!c.target_modules.empty(), what, " names no module");
  } else if (key == "use_rslora") {
    c.use_rslora = v.as_bool(what);
  } else if (key == "bias") {
    const std::string& b = v.as_string(what);
    ZT_CHECK(b == "none", what, " must be \"none\", got \"", b,
             "\" (training the base model's biases is not implemented)");
  } else if (key == "modules_to_save") {
    c.modules_to_save = string_list(v, what);
  } else if (key == "init_lora_weights") {
    read_init(c, v, what);
  } else if (key == "base_model_name_or_path") {
    if (!v.is_null()) c.base_model = v.as_string(what);
  } else {
    return false;
  }
  return true;
}

}  // namespace

const char* lora_module_name(LoraModule m) {
  static const char* const names[] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                      "gate_proj", "up_proj", "down_proj"};
  return names[static_cast<int>(m)];
}

std::string lora_module_path(LoraModule m) {
  const bool attention =
      m == LoraModule::q || m == LoraModule::k || m == LoraModule::v || m == LoraModule::o;
  return str(attention ? "self_attn." : "mlp.", lora_module_name(m));
}

double LoraConfig::scale() const {
  const double rank = static_cast<double>(r);
  return alpha / (use_rslora ? std::sqrt(rank) : rank);
}

bool LoraConfig::targets(LoraModule m) const {
  for (const std::string& t : target_modules) {
    if (t == "all-linear" || t == lora_module_name(m)) return true;
  }
  return false;
}

bool LoraConfig::saves(const std::string& module) const {
  return std::find(modules_to_save.begin(), modules_to_save.end(), module) != modules_to_save.end();
}

LoraConfig parse_lora_config(const json::Value& j, const std::string& source) {
  ZT_CHECK(j.is_object(), source, ": a LoRA config must be a JSON object");
  LoraConfig c;
  if (const json::Value* type = j.find("peft_type"); type && !type->is_null()) {
    const std::string& t = type->as_string(str(source, ": \"peft_type\""));
    ZT_CHECK(t == "LORA", source, ": \"peft_type\" is \"", t, "\", expected \"LORA\"");
  }
  if (const json::Value* task = j.find("task_type"); task && !task->is_null()) {
    const std::string& t = task->as_string(str(source, ": \"task_type\""));
    ZT_CHECK(t == "CAUSAL_LM", source, ": \"task_type\" is \"", t, "\", expected \"CAUSAL_LM\"");
  }
  for (const auto& [key, value] : j.members()) {
    const std::string what = str(source, ": \"", key, "\"");
    if (read_key(c, key, value, what)) continue;
    const auto& ignored = ignored_peft_keys();
    if (std::find(ignored.begin(), ignored.end(), key) != ignored.end()) {
      const bool informational = key == "peft_type" || key == "task_type" ||
                                 key == "inference_mode" || key == "revision" ||
                                 key == "auto_mapping" || key == "peft_version";
      ZT_CHECK(informational || is_default_peft_value(value), what,
               " is not implemented by zerotune (only its default is accepted), got ",
               value.dump());
      continue;
    }
    std::fprintf(stderr, "zerotune: warning: %s: unknown LoRA config key \"%s\" ignored\n",
                 source.c_str(), key.c_str());
  }
  check_lora_targets(c);
  return c;
}

LoraConfig read_lora_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ZT_CHECK(in.good(), path, ": cannot read the LoRA config");
  std::stringstream text;
  text << in.rdbuf();
  return parse_lora_config(json::parse(text.str(), path), path);
}

json::Value lora_config_json(const LoraConfig& c) {
  json::Value j = json::Value::object();
  j.set("peft_type", "LORA");
  j.set("task_type", "CAUSAL_LM");
  j.set("base_model_name_or_path", c.base_model);
  j.set("r", c.r);
  j.set("lora_alpha", c.alpha);
  j.set("lora_dropout", c.dropout);
  json::Value targets = json::Value::array();
  for (const std::string& t : c.target_modules) targets.push_back(t);
  j.set("target_modules", std::move(targets));
  j.set("use_rslora", c.use_rslora);
  j.set("bias", "none");
  json::Value saved = json::Value();
  if (!c.modules_to_save.empty()) {
    saved = json::Value::array();
    for (const std::string& m : c.modules_to_save) saved.push_back(m);
  }
  j.set("modules_to_save", std::move(saved));
  j.set("init_lora_weights", c.init_lora_weights == "gaussian"
                                 ? json::Value("gaussian")
                                 : json::Value(c.init_lora_weights == "true"));
  j.set("fan_in_fan_out", false);
  j.set("inference_mode", true);
  return j;
}

void check_lora_targets(const LoraConfig& c) {
  std::string linear;
  for (LoraModule m : kModules) linear += str(linear.empty() ? "" : ", ", lora_module_name(m));
  for (const std::string& t : c.target_modules) {
    bool known = t == "all-linear";
    for (LoraModule m : kModules) known = known || t == lora_module_name(m);
    ZT_CHECK(known, "LoRA config: target_modules \"", t,
             "\" matches no linear layer of the model; its linear layers are ", linear,
             " (or \"all-linear\")");
  }
  for (const std::string& m : c.modules_to_save) {
    ZT_CHECK(m == "embed_tokens" || m == "lm_head", "LoRA config: modules_to_save \"", m,
             "\" is not a module zerotune can train in full; use embed_tokens or lm_head");
  }
}

std::vector<LoraSite> lora_sites(const LlamaConfig& model, const LoraConfig& lora) {
  const int64_t d = model.hidden_size, f = model.intermediate_size;
  const int64_t q = model.q_dim(), kv = model.kv_dim(), qkv = model.qkv_dim();
  std::vector<LoraSite> sites;
  int64_t offset = 0;
  auto add = [&](LoraModule m, LoraStack stack, int64_t in, int64_t out, int64_t row_begin,
                 int64_t stack_rows) {
    if (!lora.targets(m)) return;
    const int64_t a = offset, b = a + lora.r * in;
    offset = b + out * lora.r;
    sites.push_back({m, stack, in, out, row_begin, stack_rows, a, b});
  };
  add(LoraModule::q, LoraStack::qkv, d, q, 0, qkv);
  add(LoraModule::k, LoraStack::qkv, d, kv, q, qkv);
  add(LoraModule::v, LoraStack::qkv, d, kv, q + kv, qkv);
  add(LoraModule::o, LoraStack::o, q, d, 0, d);
  add(LoraModule::gate, LoraStack::gate_up, d, f, 0, 2 * f);
  add(LoraModule::up, LoraStack::gate_up, d, f, f, 2 * f);
  add(LoraModule::down, LoraStack::down, f, d, 0, d);
  return sites;
}

std::string lora_tensor_name(int64_t l, LoraModule m, char which) {
  return str("base_model.model.model.layers.", l, ".", lora_module_path(m), ".lora_", which,
             ".weight");
}

int64_t add_lora_groups(LlamaParams& layout, const LoraConfig& lora) {
  const LlamaConfig& c = layout.config();
  const std::vector<LoraSite> sites = lora_sites(c, lora);
  for (size_t g = 0; g < layout.groups().size(); ++g) {
    const bool embed = static_cast<int64_t>(g) == layout.embed_group();
    const bool head = static_cast<int64_t>(g) == layout.head_group();
    layout.groups()[g].trainable =
        (embed && lora.saves("embed_tokens")) || (head && lora.saves("lm_head"));
  }
  int64_t first = -1;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    ParamGroup group{str("lora.", l), Buffer(), {}, true};
    for (const LoraSite& s : sites) {
      group.views.push_back({lora_tensor_name(l, s.module, 'A'), s.a_offset, Shape{lora.r, s.in}});
      group.views.push_back({lora_tensor_name(l, s.module, 'B'), s.b_offset, Shape{s.out, lora.r}});
    }
    const int64_t index = layout.add_group(std::move(group));
    if (first < 0) first = index;
  }
  return first;
}

void init_lora_group(const Tensor& values, const LlamaConfig& model, const LoraConfig& lora,
                     int64_t l, uint64_t seed) {
  Rng rng(seed ^ (0x4C6F5241ull + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(l + 1)));
  float* p = values.f32();
  // nn.init.kaiming_uniform_(a=sqrt(5)) on [rows, fan_in]: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  auto kaiming = [&](float* w, int64_t n, int64_t fan_in) {
    const float bound = 1.0f / std::sqrt(static_cast<float>(fan_in));
    for (int64_t i = 0; i < n; ++i) w[i] = (2.0f * rng.uniform() - 1.0f) * bound;
  };
  for (const LoraSite& s : lora_sites(model, lora)) {
    float* a = p + s.a_offset;
    float* b = p + s.b_offset;
    if (lora.init_lora_weights == "gaussian") {
      const float std = 1.0f / static_cast<float>(lora.r);
      for (int64_t i = 0; i < lora.r * s.in; ++i) a[i] = std * rng.normal();
    } else {
      kaiming(a, lora.r * s.in, s.in);
    }
    if (lora.init_lora_weights == "false") {
      kaiming(b, s.out * lora.r, lora.r);
    } else {
      std::fill(b, b + s.out * lora.r, 0.0f);
    }
  }
}

LoraLayers::LoraLayers(const LlamaConfig& model, LoraConfig lora, int64_t first_group,
                       uint64_t seed)
    : model_(model),
      lora_(std::move(lora)),
      sites_(lora_sites(model, lora_)),
      first_group_(first_group),
      seed_(seed) {}

uint64_t LoraLayers::dropout_seed(int64_t l, LoraModule m) const {
  // Distinct streams per (run seed, key, layer, module): SplitMix64 steps over their mix.
  uint64_t z = seed_ * 0x9E3779B97F4A7C15ull + dropout_key_;
  z = z * 0xBF58476D1CE4E5B9ull + static_cast<uint64_t>(l * kLoraModuleCount + static_cast<int>(m));
  z ^= z >> 31;
  return z * 0x94D049BB133111EBull;
}

Buffer& LoraLayers::saved_u(int64_t l, size_t site) {
  const size_t k = static_cast<size_t>(l) * sites_.size() + site;
  if (u_saved_.size() <= k) {
    u_saved_.resize(sites_.size() * static_cast<size_t>(model_.num_hidden_layers));
  }
  return u_saved_[k];
}

Tensor LoraLayers::scratch(Buffer& slot, DType dtype, Shape shape, Device device) {
  const int64_t n = shape.numel();
  if (!slot.view().data || slot.numel() < n || slot.view().dtype != dtype ||
      !(slot.view().device == device)) {
    slot = Buffer();
    slot = Buffer(dtype, Shape{std::max<int64_t>(n, 1)}, device);
  }
  return slot.view().flat(0, n).reshape(shape);
}

Tensor LoraLayers::scaled_b(const LoraSite& s, const ParamGroup& adapters) {
  const Tensor& flat = adapters.data.view();
  const Tensor b = flat.flat(s.b_offset, s.out * lora_.r).reshape(Shape{s.out, lora_.r});
  const Tensor scaled = scratch(b_scaled_, flat.dtype, b.shape, flat.device);  // [out, r]
  scaled_dropout(scaled, b, static_cast<float>(lora_.scale()), 0.0f, 0);
  return scaled;
}

Tensor LoraLayers::dropped_input(const LoraSite& s, int64_t l, const Tensor& x, bool training) {
  if (!training || lora_.dropout == 0.0) return x;
  const Tensor xd = scratch(x_drop_, x.dtype, x.shape, x.device);
  scaled_dropout(xd, x, 1.0f, static_cast<float>(lora_.dropout), dropout_seed(l, s.module));
  return xd;
}

void LoraLayers::forward(LoraStack stack, int64_t l, const ParamGroup& adapters, const Tensor& x,
                         const Tensor& y, bool training) {
  const int64_t n = x.dim(0);
  for (size_t i = 0; i < sites_.size(); ++i) {
    const LoraSite& s = sites_[i];
    if (s.stack != stack) continue;
    const Tensor a = adapters.view({"", s.a_offset, Shape{lora_.r, s.in}});  // [r, in]
    const Tensor xd = dropped_input(s, l, x, training);                      // [N, in]
    // [N, r]; in training kept per layer and site for the backward
    const Tensor u = scratch(training ? saved_u(l, i) : u_, x.dtype, Shape{n, lora_.r}, x.device);
    linear_forward(u, xd, a);
    // y[:, row_begin, row_begin + out) += u (scale B)^T
    linear_forward_block(y, s.row_begin, u, scaled_b(s, adapters), Accumulate::yes);
  }
}

void LoraLayers::backward(LoraStack stack, int64_t l, const ParamGroup& adapters,
                          const ParamGroup& grads, const Tensor& x, const Tensor& dy,
                          const Tensor& dx) {
  const int64_t n = x.dim(0), r = lora_.r;
  const bool dropout = lora_.dropout > 0.0;
  for (size_t i = 0; i < sites_.size(); ++i) {
    const LoraSite& s = sites_[i];
    if (s.stack != stack) continue;
    const Tensor a = adapters.view({"", s.a_offset, Shape{r, s.in}});  // [r, in]
    const Tensor da = grads.view({"", s.a_offset, Shape{r, s.in}});    // [r, in] f32
    const Tensor db = grads.view({"", s.b_offset, Shape{s.out, r}});   // [out, r] f32
    const Tensor xd = dropped_input(s, l, x, true);                    // [N, in]
    // [N, r] as the forward (or its checkpointed recomputation) left it
    const Tensor u = saved_u(l, i).view().flat(0, n * r).reshape(Shape{n, r});
    // du = dy_block (scale B) [N, r]; db_part = dy_block^T u [out, r], then scaled into dB.
    const Tensor db_part = scratch(db_part_, DType::f32, Shape{s.out, r}, x.device);
    Buffer::borrow(db_part).zero();
    const Tensor du = scratch(du_, x.dtype, Shape{n, r}, x.device);
    linear_backward_block(du, db_part, dy, s.row_begin, u, scaled_b(s, adapters));
    scale_in_place(db_part, static_cast<float>(lora_.scale()));
    add_in_place(db, db_part);
    // dA += du^T xd; dx += mask * (du A) / (1 - p).
    if (!dropout) {
      linear_backward(dx, da, du, xd, a, Accumulate::yes);
      continue;
    }
    const Tensor part = scratch(dx_part_, x.dtype, x.shape, x.device);  // [N, in]
    linear_backward(part, da, du, xd, a);
    scaled_dropout(dx, part, 1.0f, static_cast<float>(lora_.dropout), dropout_seed(l, s.module),
                   Accumulate::yes);
  }
}

}  // namespace zerotune
