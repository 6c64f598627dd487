// `zerotune init`: writes a randomly initialised Llama folder in Hugging Face layout (config,
// generation config, safetensors, tokenizer files): the offline default model of the main job.
#include <cstdio>
#include <filesystem>
#include <optional>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/presets.h"
#include "data/tokenizer.h"
#include "io/hf_checkpoint.h"

namespace zerotune {

const ModelPreset& model_preset(const std::string& name) {
  for (const ModelPreset& p : kModelPresets) {
    if (name == p.name) return p;
  }
  fail(str("unknown preset '", name, "' (tiny, small, gqa)"));
}

int cmd_init(int argc, char** argv, int first) {
  Args args("zerotune init",
            "Writes a randomly initialised Llama model folder in Hugging Face layout\n"
            "(normal(0, 0.02) matrices, unit norm weights), with the tokenizer's files when one\n"
            "is given; its vocabulary then sizes the embedding. Refuses to overwrite a folder.");
  args.option("--out", "DIR", "the model folder to create")
      .option("--preset", "tiny|small|gqa", "model shape", "tiny")
      .option("--dim", "D", "hidden size (overrides the preset)")
      .option("--n-layers", "L", "decoder layers (overrides the preset)")
      .option("--n-heads", "H", "attention heads (overrides the preset)")
      .option("--n-kv-heads", "K", "key/value heads (overrides the preset)")
      .option("--hidden", "F", "MLP hidden size (overrides the preset)")
      .option("--vocab", "V", "vocabulary size when no tokenizer is given (overrides the preset)")
      .option("--tokenizer", "FILE_OR_DIR", "tokenizer.model, or a folder holding one")
      .option("--special_token_path", "tokens.json", "special tokens to add to the tokenizer")
      .option("--max-positions", "P", "max_position_embeddings", "2048")
      .option("--rope-theta", "X", "rotary base", "10000")
      .option("--seed", "S", "initialisation seed", "0")
      .option("--save-dtype", "f32|bf16|f16", "weight dtype in the folder", "f32")
      .flag("--tie", "tie the LM head to the embedding");
  if (!args.parse(argc, argv, first)) return 0;
  const std::string out = args.require("--out");
  ZT_CHECK(!std::filesystem::exists(out), out,
           ": already exists; zerotune init never overwrites a folder");

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
  ZT_CHECK(c.num_attention_heads > 0 && c.hidden_size % c.num_attention_heads == 0,
           "zerotune init: --dim ", c.hidden_size, " is not a multiple of --n-heads ",
           c.num_attention_heads);
  c.head_dim = c.hidden_size / c.num_attention_heads;
  c.max_position_embeddings = args.get_int("--max-positions");
  c.rope_theta = static_cast<float>(args.get_double("--rope-theta"));
  c.tie_word_embeddings = args.has("--tie");

  std::optional<Tokenizer> tokenizer;
  if (args.has("--tokenizer")) {
    ZT_CHECK(!args.has("--vocab"), "zerotune init: give --vocab or --tokenizer, not both");
    tokenizer = Tokenizer::load(args.get("--tokenizer"));
    if (args.has("--special_token_path")) {
      tokenizer->add_special_tokens(read_special_tokens_json(args.get("--special_token_path")));
    }
    c.vocab_size = tokenizer->vocab_size();
    c.bos_token_id = tokenizer->bos_id();
    c.eos_token_id = tokenizer->eos_id();
  } else {
    ZT_CHECK(!args.has("--special_token_path"),
             "zerotune init: --special_token_path needs --tokenizer");
  }
  c.validate("zerotune init");

  DType save_dtype;
  ZT_CHECK(parse_dtype(args.get("--save-dtype"), &save_dtype) && save_dtype != DType::i32 &&
               save_dtype != DType::i64,
           "zerotune init: --save-dtype must be f32, bf16 or f16, got ", args.get("--save-dtype"));
  LlamaParams params(c);
  params.init_random(static_cast<uint64_t>(args.get_int("--seed")));
  HfCheckpointOptions options;
  options.save_dtype = save_dtype;
  const TokenizerFiles files = tokenizer ? tokenizer->files() : TokenizerFiles{};
  write_hf_checkpoint(out, params, json::Value(), tokenizer ? &files : nullptr, options);
  std::printf("{\"out\": %s, \"params\": %lld, \"vocab\": %lld, \"config\": %s}\n",
              json::quote(out).c_str(), static_cast<long long>(params.numel()),
              static_cast<long long>(c.vocab_size), json::quote(c.summary()).c_str());
  return 0;
}

}  // namespace zerotune
