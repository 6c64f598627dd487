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

LlamaConfig parse_llama_config(const json::Value& root, const std::string& source) {
  ZT_CHECK(root.is_object(), source, ": expected a JSON object");
  LlamaConfig c;
  const json::Value* archs = root.find("architectures");
  if (archs && !archs->is_null()) {
    ZT_CHECK(archs->is_array() && archs->items().size() == 1, source,
             ": \"architectures\" must be a list of one name");
    c.architecture = archs->items()[0].as_string(str(source, ": \"architectures\"[0]"));
  } else {
    const json::Value* model_type = root.find("model_type");
    const std::string type = model_type ? model_type->as_string(source + ": \"model_type\"") : "";
    ZT_CHECK(type == "llama" || type == "mistral", source,
             ": no \"architectures\" and \"model_type\" is \"", type,
             "\"; expected LlamaForCausalLM or MistralForCausalLM");
    c.architecture = type == "llama" ? "LlamaForCausalLM" : "MistralForCausalLM";
  }
  ZT_CHECK(c.architecture == "LlamaForCausalLM" || c.architecture == "MistralForCausalLM", source,
           ": architecture \"", c.architecture,
           "\" is not supported (expected LlamaForCausalLM or MistralForCausalLM)");

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
  c.bos_token_id = get_int(root, source, "bos_token_id", 1, false);
  c.eos_token_id = get_int(root, source, "eos_token_id", 2, false);
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
  for (const char* key : {"attention_bias", "mlp_bias"}) {
    if (const json::Value* b = root.find(key); b && !b->is_null()) {
      ZT_CHECK(!b->as_bool(str(source, ": \"", key, "\"")), source, ": \"", key,
               "\" is true but Llama projections without bias are the only ones supported");
    }
  }
  if (const json::Value* scaling = root.find("rope_scaling"); scaling && !scaling->is_null()) {
    ZT_CHECK(scaling->is_object(), source, ": \"rope_scaling\" must be null or an object");
    const json::Value* type = scaling->find("rope_type");
    if (!type) type = scaling->find("type");
    const std::string name = type ? type->as_string(source + ": \"rope_scaling\".type") : "";
    if (name == "linear") {
      const json::Value* factor = scaling->find("factor");
      ZT_CHECK(factor, source, ": \"rope_scaling\" of type linear needs a \"factor\"");
      c.rope_linear_factor =
          static_cast<float>(factor->as_double(source + ": rope_scaling.factor"));
    } else if (name != "default") {
      fail(str(source, ": \"rope_scaling\" type \"", name,
               "\" is not supported (supported: none, \"default\", \"linear\")"));
    }
  }
  if (c.architecture == "MistralForCausalLM") {
    c.sliding_window = get_int(root, source, "sliding_window", 0, false);
  }
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
  ZT_CHECK(rope_theta > 0.0f && rope_linear_factor > 0.0f, source,
           ": rope_theta and the rope scaling factor must be positive");
  ZT_CHECK(max_position_embeddings > 0, source, ": max_position_embeddings must be positive");
  ZT_CHECK(vocab_size < (int64_t{1} << 31), source, ": vocab_size ", vocab_size,
           " does not fit 32-bit token ids");
}

std::string LlamaConfig::summary() const {
  return str(architecture, " V=", vocab_size, " D=", hidden_size, " F=", intermediate_size,
             " L=", num_hidden_layers, " H=", num_attention_heads, " Hkv=", num_key_value_heads,
             " Dh=", head_dim, tie_word_embeddings ? " tied" : "");
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
