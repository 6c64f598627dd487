// `zerotune merge`: a PEFT LoRA adapter folded into its base model, W + scale * B A for every
// adapted weight and the modules_to_save replaced, written as a full Hugging Face folder.
#include <cstdio>
#include <filesystem>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "io/hf_checkpoint.h"
#include "io/peft_adapter.h"
#include "io/storage/model_source.h"

namespace zerotune {

namespace fs = std::filesystem;

int cmd_merge(int argc, char** argv, int first) {
  Args args("zerotune merge",
            "Writes the base model with a LoRA adapter merged in (W + scale B A; modules_to_save\n"
            "replace their module) as a Hugging Face folder whose logits equal the adapter\n"
            "model's. The tokenizer files come from the adapter folder when it has them (tokens\n"
            "added in training), else from the base.");
  args.option("--base", "DIR|s3://B/P|OWNER/NAME", "the base model the adapter was trained on")
      .option("--adapter", "DIR|s3://B/P|OWNER/NAME", "PEFT adapter folder")
      .option("--out", "DIR", "the merged model's folder")
      .option("--save-dtype", "f32|bf16|f16", "dtype of the written weights",
              "the base config's torch_dtype");
  if (!args.parse(argc, argv, first)) return 0;
  const std::string out = args.require("--out");
  const std::string base_dir = storage::resolve_model_source(args.require("--base"));
  const std::string adapter_dir = storage::resolve_adapter_source(args.require("--adapter"));
  LoadedHfFolder base = read_hf_folder(base_dir);
  apply_adapter(base.params, adapter_dir);
  HfCheckpointOptions options;
  const std::string& torch_dtype = base.config.torch_dtype;
  options.save_dtype = torch_dtype == "bfloat16"  ? DType::bf16
                       : torch_dtype == "float16" ? DType::f16
                                                  : DType::f32;
  if (args.has("--save-dtype")) {
    const std::string d = args.get("--save-dtype");
    ZT_CHECK(d == "f32" || d == "bf16" || d == "f16",
             "zerotune merge: --save-dtype must be f32, bf16 or f16, got \"", d, "\"");
    options.save_dtype = d == "f32" ? DType::f32 : d == "bf16" ? DType::bf16 : DType::f16;
  }
  std::optional<TokenizerFiles> tokenizer = base.tokenizer;
  if (fs::exists(fs::path(adapter_dir) / "tokenizer.model")) {
    tokenizer = read_tokenizer_files(adapter_dir);
  }
  write_hf_checkpoint(out, base.params, base.raw_config, tokenizer ? &*tokenizer : nullptr,
                      options);
  std::fprintf(stderr, "zerotune merge: wrote %s (%s)\n", out.c_str(),
               dtype_name(options.save_dtype));
  return 0;
}

}  // namespace zerotune
