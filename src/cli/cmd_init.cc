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

int cmd_init(int argc, char** argv, int first) {
  Args args("zerotune init",
            "Writes a randomly initialised Llama model folder in Hugging Face layout\n"
            "(normal(0, 0.02) matrices, unit norm weights), with the tokenizer's files when one\n"
            "is given; its vocabulary then sizes the embedding. Refuses to overwrite a folder.");
  args.option("--out", "DIR", "the model folder to create");
  add_shape_flags(args);
  args.option("--tokenizer", "FILE_OR_DIR", "tokenizer.model, or a folder holding one")
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

  LlamaConfig c = shape_config(args, "zerotune init");
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
  ZT_CHECK(parse_dtype(args.get("--save-dtype"), &save_dtype) && (save_dtype == DType::f32 ||
                                                    save_dtype == DType::bf16 ||
                                                    save_dtype == DType::f16),
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
