#include "cli/presets.h"

#include "core/check.h"

namespace zerotune {

const ModelPreset& model_preset(const std::string& name) {
  for (const ModelPreset& p : kModelPresets) {
    if (name == p.name) return p;
  }
  fail(str("unknown preset '", name, "' (tiny, small, gqa)"));
}

void add_shape_flags(Args& args) {
  args.option("--preset", "tiny|small|gqa", "model shape", "tiny")
      .option("--dim", "D", "hidden size (overrides the preset)")
      .option("--n-layers", "L", "decoder layers (overrides the preset)")
      .option("--n-heads", "H", "attention heads (overrides the preset)")
      .option("--n-kv-heads", "K", "key/value heads (overrides the preset)")
      .option("--hidden", "F", "MLP hidden size (overrides the preset)")
      .option("--vocab", "V", "vocabulary size (overrides the preset)");
}

LlamaConfig shape_config(const Args& args, const char* cmd) {
  const ModelPreset& p = model_preset(args.get("--preset"));
  auto pick = [&](const char* flag, int64_t preset_value) {
    return args.has(flag) ? args.get_int(flag) : preset_value;
  };
  LlamaConfig c;
  c.hidden_size = pick("--dim", p.dim);
  c.num_hidden_layers = pick("--n-layers", p.layers);
  c.num_attention_heads = pick("--n-heads", p.heads);
  c.num_key_value_heads = pick("--n-kv-heads", p.kv_heads);
  c.intermediate_size = pick("--hidden", p.hidden);
  c.vocab_size = pick("--vocab", p.vocab);
  ZT_CHECK(c.num_attention_heads > 0 && c.hidden_size % c.num_attention_heads == 0, cmd, ": --dim ",
           c.hidden_size, " is not a multiple of --n-heads ", c.num_attention_heads);
  c.head_dim = c.hidden_size / c.num_attention_heads;
  return c;
}

}  // namespace zerotune
