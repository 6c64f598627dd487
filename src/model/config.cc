#include "model/config.h"

#include <fstream>
#include <sstream>

#include "core/check.h"
#include "core/json.h"

namespace zerotune {

namespace {

int64_t get_int(const json::Value& root, const std::string& source, const char* key,
                int64_t fallback, bool required) {
  const json::Value* v = root.find(key);
  if (!v || v->is_null()) {
    ZT_CHECK(!required, source, ": missing required field \"", key, "\"");
    return fallback;
  }
  return v->as_int64(str(source, ": \"", key, "\""));
}

float get_float(const json::Value& root, const std::string& source, const char* key,
                float fallback) {
  const json::Value* v = root.find(key);
  if (!v || v->is_null()) return fallback;
  return static_cast<float>(v->as_double(str(source, ": \"", key, "\"")));
}

}  // namespace

namespace {

const char* const kArchitectures[] = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"};
const char* const kModelTypes[] = {"llama", "mistral", "qwen2"};

std::string parse_architecture(const json::Value& root, const std::string& source) {
  const json::Value* archs = root.find("architectures");
  std::string name;
  if (archs && !archs->is_null()) {
    ZT_CHECK(archs->is_array() && archs->items().size() == 1, source,
             ": \"architectures\" must be a list of one name");
    name = archs->items()[0].as_string(str(source, ": \"architectures\"[0]"));
  } else {
    const json::Value* model_type = root.find("model_type");
    const std::string type = model_type ? model_type->as_string(source + ": \"model_type\"") : "";
    for (size_t i = 0; i < std::size(kModelTypes); ++i) {
      if (type == kModelTypes[i]) name = kArchitectures[i];
    }
    ZT_CHECK(!name.empty(), source, ": no \"architectures\" and \"model_type\" is \"", type,
             "\"; expected llama, mistral or qwen2");
  }
  bool known = false;
  for (const char* a : kArchitectures) known = known || name == a;
  ZT_CHECK(known, source, ": architecture \"", name,
           "\" is not supported (expected LlamaForCausalLM, MistralForCausalLM or "
           "Qwen2ForCausalLM)");
  return name;
}

float scaling_float(const json::Value& scaling, const std::string& source, const char* key,
                    const std::string& type) {
  const json::Value* v = scaling.find(key);
  ZT_CHECK(v && !v->is_null(), source, ": \"rope_scaling\" of type ", type, " needs \"", key, "\"");
  return static_cast<float>(v->as_double(str(source, ": rope_scaling.", key)));
}

}  // namespace

RopeScaling parse_rope_scaling(const json::Value& root, const std::string& source) {
  RopeScaling r;
  const json::Value* scaling = root.find("rope_scaling");
  if (!scaling || scaling->is_null()) return r;
  ZT_CHECK(scaling->is_object(), source, ": \"rope_scaling\" must be null or an object");
  const json::Value* type = scaling->find("rope_type");
  if (!type) type = scaling->find("type");
  const std::string name = type ? type->as_string(source + ": \"rope_scaling\".type") : "";
  if (name == "default") return r;
  if (name == "linear" || name == "dynamic" || name == "llama3") {
    r.factor = scaling_float(*scaling, source, "factor", name);
    ZT_CHECK(r.factor >= 1.0f, source, ": rope_scaling.factor is ", r.factor,
             ", expected at least 1");
  }
  if (name == "linear") {
    r.type = RopeScalingType::linear;
  } else if (name == "dynamic") {
    r.type = RopeScalingType::dynamic;
  } else if (name == "llama3") {
    r.type = RopeScalingType::llama3;
    r.low_freq_factor = scaling_float(*scaling, source, "low_freq_factor", name);
    r.high_freq_factor = scaling_float(*scaling, source, "high_freq_factor", name);
    const json::Value* original = scaling->find("original_max_position_embeddings");
    ZT_CHECK(original && !original->is_null(), source,
             ": \"rope_scaling\" of type llama3 needs \"original_max_position_embeddings\"");
    r.original_max_position_embeddings =
        original->as_int64(source + ": rope_scaling.original_max_position_embeddings");
    ZT_CHECK(r.low_freq_factor > 0.0f && r.high_freq_factor > r.low_freq_factor &&
                 r.original_max_position_embeddings > 0,
             source,
             ": rope_scaling llama3 needs 0 < low_freq_factor < high_freq_factor and a "
             "positive original_max_position_embeddings");
  } else {
    fail(str(source, ": rope_scaling type '", name,
             "' is not supported; supported: linear, dynamic, llama3"));
  }
  return r;
}

namespace {

// An integer or (Llama-3.1-Instruct) a list of integers.
void parse_eos(const json::Value& root, const std::string& source, LlamaConfig& c) {
  const json::Value* eos = root.find("eos_token_id");
  if (!eos || eos->is_null() || !eos->is_array()) {
    c.eos_token_id = get_int(root, source, "eos_token_id", 2, false);
    return;
  }
  ZT_CHECK(!eos->items().empty(), source, ": \"eos_token_id\" is an empty list");
  for (size_t i = 0; i < eos->items().size(); ++i) {
    c.eos_token_ids.push_back(eos->items()[i].as_int64(str(source, ": \"eos_token_id\"[", i, "]")));
  }
  c.eos_token_id = c.eos_token_ids.front();
}

// Llama's attention_bias would also put a bias on o_proj; Qwen2 has q/k/v biases and no flag.
void parse_biases(const json::Value& root, const std::string& source, LlamaConfig& c) {
  c.qkv_bias = c.architecture == "Qwen2ForCausalLM";
  for (const char* key : {"attention_bias", "mlp_bias"}) {
    if (c.qkv_bias && std::string(key) == "attention_bias") continue;
    if (const json::Value* b = root.find(key); b && !b->is_null()) {
      ZT_CHECK(!b->as_bool(str(source, ": \"", key, "\"")), source, ": \"", key,
               "\" is true but Llama projections without bias are the only ones supported");
    }
  }
}

void parse_sliding_window(const json::Value& root, const std::string& source, LlamaConfig& c) {
  if (c.architecture == "MistralForCausalLM") {
    c.sliding_window = get_int(root, source, "sliding_window", 0, false);
  } else if (c.architecture == "Qwen2ForCausalLM") {
    // Qwen2 keeps a "sliding_window" value that applies only when use_sliding_window is true.
    const json::Value* use = root.find("use_sliding_window");
    const bool on = use && !use->is_null() && use->as_bool(source + ": \"use_sliding_window\"");
    c.sliding_window = on ? get_int(root, source, "sliding_window", 0, false) : 0;
  }
}

}  // namespace

LlamaConfig parse_llama_config(const json::Value& root, const std::string& source) {
  ZT_CHECK(root.is_object(), source, ": expected a JSON object");
  LlamaConfig c;
  c.architecture = parse_architecture(root, source);
  c.vocab_size = get_int(root, source, "vocab_size", 0, true);
  c.hidden_size = get_int(root, source, "hidden_size", 0, true);
  c.intermediate_size = get_int(root, source, "intermediate_size", 0, true);
  c.num_hidden_layers = get_int(root, source, "num_hidden_layers", 0, true);
  c.num_attention_heads = get_int(root, source, "num_attention_heads", 0, true);
  c.num_key_value_heads =
      get_int(root, source, "num_key_value_heads", c.num_attention_heads, false);
  ZT_CHECK(c.num_attention_heads > 0, source, ": \"num_attention_heads\" must be positive");
  c.head_dim = get_int(root, source, "head_dim", c.hidden_size / c.num_attention_heads, false);
  c.max_position_embeddings = get_int(root, source, "max_position_embeddings", 2048, false);
  c.rms_norm_eps = get_float(root, source, "rms_norm_eps", 1e-6f);
  c.rope_theta = get_float(root, source, "rope_theta", 10000.0f);
  // null: the model has no BOS (Qwen2.5's tokenizer adds none); absent: Llama's 1.
  const json::Value* bos = root.find("bos_token_id");
  c.bos_token_id = bos && bos->is_null() ? -1 : get_int(root, source, "bos_token_id", 1, false);
  parse_eos(root, source, c);
  if (const json::Value* t = root.find("tie_word_embeddings"); t && !t->is_null()) {
    c.tie_word_embeddings = t->as_bool(source + ": \"tie_word_embeddings\"");
  }
  if (const json::Value* t = root.find("torch_dtype"); t && !t->is_null()) {
    c.torch_dtype = t->as_string(source + ": \"torch_dtype\"");
  }
  if (const json::Value* act = root.find("hidden_act"); act && !act->is_null()) {
    const std::string& name = act->as_string(source + ": \"hidden_act\"");
    ZT_CHECK(name == "silu", source, ": \"hidden_act\" is \"", name,
             "\" but only \"silu\" (SwiGLU) is supported");
  }
  parse_biases(root, source, c);
  c.rope_scaling = parse_rope_scaling(root, source);
  parse_sliding_window(root, source, c);
  c.validate(source);
  return c;
}

void LlamaConfig::validate(const std::string& source) const {
  ZT_CHECK(vocab_size > 0 && hidden_size > 0 && intermediate_size > 0 && num_hidden_layers > 0 &&
               num_key_value_heads > 0 && head_dim > 0,
           source, ": sizes must be positive (", summary(), ")");
  ZT_CHECK(num_attention_heads % num_key_value_heads == 0, source, ": num_attention_heads ",
           num_attention_heads, " is not a multiple of num_key_value_heads ", num_key_value_heads);
  ZT_CHECK(head_dim % 2 == 0, source, ": head_dim ", head_dim,
           " must be even for rotary embedding");
  ZT_CHECK(rms_norm_eps > 0.0f, source, ": rms_norm_eps must be positive");
  ZT_CHECK(rope_theta > 0.0f && rope_scaling.factor > 0.0f, source,
           ": rope_theta and the rope scaling factor must be positive");
  ZT_CHECK(max_position_embeddings > 0, source, ": max_position_embeddings must be positive");
  ZT_CHECK(vocab_size < (int64_t{1} << 31), source, ": vocab_size ", vocab_size,
           " does not fit 32-bit token ids");
}

std::string LlamaConfig::summary() const {
  return str(architecture, " V=", vocab_size, " D=", hidden_size, " F=", intermediate_size,
             " L=", num_hidden_layers, " H=", num_attention_heads, " Hkv=", num_key_value_heads,
             " Dh=", head_dim, tie_word_embeddings ? " tied" : "", qkv_bias ? " qkv-bias" : "",
             rope_scaling.type == RopeScalingType::none
                 ? ""
                 : str(" rope=", rope_scaling_name(rope_scaling.type), "x", rope_scaling.factor));
}

LlamaConfig load_llama_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ZT_CHECK(in, path, ": cannot open (expected a Hugging Face config.json)");
  std::ostringstream text;
  text << in.rdbuf();
  const std::string content = text.str();
  ZT_CHECK(content.size() < (size_t{16} << 20), path, ": ", content.size(),
           " bytes is too large for a config.json");
  return parse_llama_config(json::parse(content, path), path);
}

}  // namespace zerotune
