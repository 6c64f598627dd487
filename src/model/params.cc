#include "model/params.h"

namespace zerotune {

Tensor ParamGroup::view(const ParamView& v) const {
  return data.view().flat(v.offset, v.shape.numel()).reshape(v.shape);
}

LayerLayout::LayerLayout(const LlamaConfig& c) {
  const int64_t d = c.hidden_size, f = c.intermediate_size;
  input_norm = 0;
  qkv = input_norm + d;
  o = qkv + c.qkv_dim() * d;
  post_norm = o + d * c.q_dim();
  gate_up = post_norm + d;
  down = gate_up + 2 * f * d;
  total = down + d * f;
  qkv_bias = c.qkv_bias ? total : -1;
  if (c.qkv_bias) total += c.qkv_dim();
}

namespace {

int64_t views_extent(const std::vector<ParamView>& views) {
  int64_t total = 0;
  for (const ParamView& v : views) total = std::max(total, v.offset + v.shape.numel());
  return total;
}

struct Placement {
  Storage storage;
  DType dtype;
  Device device;
};

ParamGroup make_group(std::string name, std::vector<ParamView> views, const Placement& at) {
  const int64_t total = views_extent(views);
  ParamGroup g{
      std::move(name),
      at.storage == Storage::allocated ? Buffer(at.dtype, Shape{total}, at.device) : Buffer(),
      std::move(views), true};
  return g;
}

}  // namespace

LlamaParams::LlamaParams(const LlamaConfig& c, Storage storage_kind, DType dtype, Device device)
    : config_(c) {
  const Placement storage{storage_kind, dtype, device};
  const int64_t d = c.hidden_size, f = c.intermediate_size, v = c.vocab_size;
  groups_.push_back(make_group("embed", {{"model.embed_tokens.weight", 0, Shape{v, d}}}, storage));
  first_layer_group_ = 1;
  const LayerLayout lay(c);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = str("model.layers.", l, ".");
    std::vector<ParamView> views = {
        {p + "input_layernorm.weight", lay.input_norm, Shape{d}},
        {p + "self_attn.q_proj.weight", lay.qkv, Shape{c.q_dim(), d}},
        {p + "self_attn.k_proj.weight", lay.qkv + c.q_dim() * d, Shape{c.kv_dim(), d}},
        {p + "self_attn.v_proj.weight", lay.qkv + (c.q_dim() + c.kv_dim()) * d,
         Shape{c.kv_dim(), d}},
        {p + "self_attn.o_proj.weight", lay.o, Shape{d, c.q_dim()}},
        {p + "post_attention_layernorm.weight", lay.post_norm, Shape{d}},
        {p + "mlp.gate_proj.weight", lay.gate_up, Shape{f, d}},
        {p + "mlp.up_proj.weight", lay.gate_up + f * d, Shape{f, d}},
        {p + "mlp.down_proj.weight", lay.down, Shape{d, f}},
    };
    if (c.qkv_bias) {
      views.push_back({p + "self_attn.q_proj.bias", lay.qkv_bias, Shape{c.q_dim()}});
      views.push_back({p + "self_attn.k_proj.bias", lay.qkv_bias + c.q_dim(), Shape{c.kv_dim()}});
      views.push_back(
          {p + "self_attn.v_proj.bias", lay.qkv_bias + c.q_dim() + c.kv_dim(), Shape{c.kv_dim()}});
    }
    groups_.push_back(make_group(str("layer.", l), std::move(views), storage));
  }
  groups_.push_back(make_group("norm", {{"model.norm.weight", 0, Shape{d}}}, storage));
  if (!c.tie_word_embeddings) {
    groups_.push_back(make_group("head", {{"lm_head.weight", 0, Shape{v, d}}}, storage));
  }
}

int64_t LlamaParams::group_numel(size_t g) const {
  return views_extent(groups_.at(g).views);
}

Tensor LlamaParams::embedding() const {
  return groups_[0].view(groups_[0].views[0]);
}

Tensor LlamaParams::final_norm() const {
  const ParamGroup& g =
      groups_[static_cast<size_t>(first_layer_group_ + config_.num_hidden_layers)];
  return g.view(g.views[0]);
}

Tensor LlamaParams::head() const {
  if (config_.tie_word_embeddings) return embedding();
  const ParamGroup& g = groups_[static_cast<size_t>(head_group())];
  return g.view(g.views[0]);
}

LayerTensors LlamaParams::layer(int64_t l) const {
  ZT_CHECK(l >= 0 && l < config_.num_hidden_layers, "LlamaParams::layer: ", l, " out of ",
           config_.num_hidden_layers, " layers");
  const ParamGroup& g = groups_[static_cast<size_t>(first_layer_group_ + l)];
  const LayerLayout lay(config_);
  const int64_t d = config_.hidden_size, f = config_.intermediate_size;
  const Tensor& flat = g.data.view();
  LayerTensors t;
  t.input_norm = flat.flat(lay.input_norm, d);
  t.wqkv = flat.flat(lay.qkv, config_.qkv_dim() * d).reshape(Shape{config_.qkv_dim(), d});
  t.wo = flat.flat(lay.o, d * config_.q_dim()).reshape(Shape{d, config_.q_dim()});
  t.post_norm = flat.flat(lay.post_norm, d);
  t.wgate_up = flat.flat(lay.gate_up, 2 * f * d).reshape(Shape{2 * f, d});
  t.wdown = flat.flat(lay.down, d * f).reshape(Shape{d, f});
  if (lay.qkv_bias >= 0) t.qkv_bias = flat.flat(lay.qkv_bias, config_.qkv_dim());
  return t;
}

std::vector<std::pair<std::string, Tensor>> LlamaParams::named() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const ParamGroup& g : groups_) {
    for (const ParamView& v : g.views) out.emplace_back(v.name, g.view(v));
  }
  return out;
}

const ParamView* LlamaParams::find(const std::string& name, const ParamGroup** group) const {
  for (const ParamGroup& g : groups_) {
    for (const ParamView& v : g.views) {
      if (v.name == name) {
        if (group) *group = &g;
        return &v;
      }
    }
  }
  return nullptr;
}

int64_t LlamaParams::numel() const {
  int64_t n = 0;
  for (const ParamGroup& g : groups_) n += g.data.numel();
  return n;
}

int64_t LlamaParams::add_group(ParamGroup group) {
  groups_.push_back(std::move(group));
  return static_cast<int64_t>(groups_.size()) - 1;
}

LlamaParams LlamaParams::like(Storage storage, DType dtype, Device device) const {
  LlamaParams out;
  out.config_ = config_;
  out.first_layer_group_ = first_layer_group_;
  for (const ParamGroup& g : groups_) {
    ParamGroup copy = make_group(g.name, g.views, {storage, dtype, device});
    copy.trainable = g.trainable;
    out.groups_.push_back(std::move(copy));
  }
  return out;
}

LlamaParams LlamaParams::placed(DType dtype, Device device) const {
  LlamaParams out = like(Storage::allocated, dtype, device);
  for (size_t g = 0; g < groups_.size(); ++g) convert_copy(out.groups_[g].data, groups_[g].data);
  return out;
}

void LlamaParams::zero() {
  for (ParamGroup& g : groups_) g.data.zero();
}

void LlamaParams::init_random(uint64_t seed, float std) {
  Rng rng(seed);
  for (ParamGroup& g : groups_) {
    for (const ParamView& v : g.views) {
      float* p = g.view(v).f32();
      // Biases are drawn like matrices (HF starts them at zero; a test model needs them nonzero).
      const bool is_norm = v.shape.ndim() == 1 && !v.name.ends_with(".bias");
      for (int64_t i = 0; i < v.shape.numel(); ++i) p[i] = is_norm ? 1.0f : std * rng.normal();
    }
  }
}

}  // namespace zerotune
