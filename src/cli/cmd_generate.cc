// `zerotune generate`: decoding with a key/value cache from a Hugging Face folder (greedy, or
// sampled with a seed), to see what a (fine-tuned) checkpoint answers. The continuation goes to
// stdout, a JSON summary line to stderr, so that scripts can capture either alone.
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/json.h"
#include "data/tokenizer.h"
#include "io/hf_checkpoint.h"
#include "io/peft_adapter.h"
#include "io/storage/model_source.h"
#include "model/generate.h"

namespace zerotune {

namespace {

std::string ids_json(const std::vector<int32_t>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? ", " : "") + std::to_string(ids[i]);
  return out + "]";
}

// --temperature, --top-p, --top-k and --seed, each checked with its flag's name.
SamplingParams sampling_flags(const Args& args) {
  SamplingParams sampling;
  sampling.temperature = args.get_double("--temperature");
  sampling.top_p = args.get_double("--top-p");
  sampling.top_k = args.get_int("--top-k");
  const int64_t seed = args.get_int("--seed");
  ZT_CHECK(std::isfinite(sampling.temperature) && sampling.temperature >= 0.0,
           "zerotune generate: --temperature must be a number >= 0 (0: greedy), got ",
           args.get("--temperature"));
  ZT_CHECK(std::isfinite(sampling.top_p) && sampling.top_p > 0.0 && sampling.top_p <= 1.0,
           "zerotune generate: --top-p must be in (0, 1], got ", args.get("--top-p"));
  ZT_CHECK(sampling.top_k >= 0, "zerotune generate: --top-k must be >= 0 (0: no limit), got ",
           sampling.top_k);
  ZT_CHECK(seed >= 0, "zerotune generate: --seed must be >= 0, got ", seed);
  sampling.seed = static_cast<uint64_t>(seed);
  return sampling;
}

// The stop token's id (-1 without --stop), checked against the tokenizer and the model.
int32_t stop_flag(const Args& args, const Tokenizer& tokenizer, const LlamaConfig& c,
                  const std::string& dir) {
  if (!args.has("--stop")) return -1;
  const std::string stop = args.get("--stop");
  const int32_t stop_id = tokenizer.piece_to_id(stop);
  ZT_CHECK(stop_id >= 0, "zerotune generate: --stop ", json::quote(stop), " is not a token of ",
           dir, "'s tokenizer (nor of --special_token_path)");
  ZT_CHECK(stop_id < c.vocab_size, "zerotune generate: --stop ", json::quote(stop), " has id ",
           stop_id, ", beyond the model's vocabulary of ", c.vocab_size,
           ", so it can never be generated");
  return stop_id;
}

// BOS (where the model has one) + the prompt's tokens, every id within the model's vocabulary.
std::vector<int32_t> encode_prompt(const Tokenizer& tokenizer, const std::string& text,
                                   const LlamaConfig& c) {
  // BOS as the tokenizer's post-processor adds it (none for Qwen2.5).
  const std::vector<int32_t> prompt = tokenizer.encode_with_special_tokens(text);
  for (const int32_t id : prompt) {
    ZT_CHECK(id < c.vocab_size, "zerotune generate: the prompt encodes to token id ", id,
             " but the model's vocabulary has ", c.vocab_size, " ids (tokenizer has ",
             tokenizer.vocab_size(), "; pass the --special_token_path the model was resized for)");
  }
  return prompt;
}

// The continuation on stdout, the statistics line on stderr.
void print_result(const Tokenizer& tokenizer, const std::vector<int32_t>& prompt,
                  const GenerateResult& result, bool print_ids) {
  const std::string text = tokenizer.decode(result.new_tokens, BosEos::skip);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  const int64_t new_tokens = static_cast<int64_t>(result.new_tokens.size());
  const double tokens_per_s =
      result.seconds > 0.0 ? static_cast<double>(new_tokens) / result.seconds : 0.0;
  std::string summary =
      str("{\"prompt_tokens\": ", prompt.size(), ", \"new_tokens\": ", new_tokens,
          ", \"stopped\": \"", stop_reason_name(result.stopped), "\", \"tokens_per_s\": ");
  char rate[32];
  std::snprintf(rate, sizeof(rate), "%.2f", tokens_per_s);
  summary += rate;
  if (print_ids) {
    summary +=
        ", \"prompt_ids\": " + ids_json(prompt) + ", \"ids\": " + ids_json(result.new_tokens);
  }
  summary += "}\n";
  std::fputs(summary.c_str(), stderr);
}

}  // namespace

int cmd_generate(int argc, char** argv, int first) {
  Args args("zerotune generate",
            "Decoding with a key/value cache from a Hugging Face Llama folder: greedy by default,\n"
            "sampled with --temperature > 0 (then --top-k, then --top-p, drawn with --seed: the\n"
            "same seed gives the same text). The prompt is encoded as <s> + its tokens;\n"
            "decoding stops at </s>, at --stop, or after --max-new-tokens. stdout holds the\n"
            "continuation alone (special tokens as text, the stop token included, </s> left\n"
            "out) and a newline; the statistics go to stderr as one JSON line: prompt_tokens,\n"
            "new_tokens, stopped (eos|stop|length) and tokens_per_s (new tokens over the wall\n"
            "time of prefill and decoding).");
  args.option("--model", "DIR", "Hugging Face model folder with tokenizer.model")
      .option("--prompt", "TEXT", "the text to continue")
      .option("--max-new-tokens|--max_new_tokens", "N", "most tokens to generate", "128")
      .option("--special_token_path|--special-token-path", "tokens.json",
              "special tokens to add to the tokenizer (tokens already known keep their ids)")
      .option("--stop", "TOKEN", "also stop after generating this token (e.g. <END_A>)")
      .option("--temperature", "T", "0: greedy; else sample from softmax(logits / T)", "0")
      .option("--top-k|--top_k", "K", "sample among the K most likely tokens (0: all)", "0")
      .option("--top-p|--top_p", "P",
              "then among the fewest most likely tokens whose probability reaches P", "1")
      .option("--seed", "S", "seed of the sampling draws", "0")
      .option("--threads", "N", "OpenMP/BLAS threads (0 = OpenMP's default)", "0")
      .option("--adapter", "DIR|s3://B/P|OWNER/NAME",
              "a PEFT LoRA adapter of --model, merged in before decoding")
      .flag("--print-ids", "add prompt_ids and ids (the new tokens) to the JSON line");
  if (!args.parse(argc, argv, first)) return 0;
  const std::string dir = args.require("--model");
  const std::string prompt_text = args.require("--prompt");
  GenerateOptions options;
  options.max_new_tokens = args.get_int("--max-new-tokens");
  ZT_CHECK(options.max_new_tokens >= 0, "zerotune generate: --max-new-tokens must be >= 0, got ",
           options.max_new_tokens);
  options.sampling = sampling_flags(args);
  if (const int64_t threads = args.get_int("--threads"); threads > 0) {
    omp_set_num_threads(static_cast<int>(threads));
  }

  LoadedHfFolder model = read_hf_folder(dir);
  if (args.has("--adapter")) {
    apply_adapter(model.params, storage::resolve_adapter_source(args.get("--adapter")));
    model.config = model.params.config();  // the vocabulary grows for an adapter's added tokens
  }
  ZT_CHECK(model.tokenizer.has_value(), "zerotune generate: ", dir,
           " has no tokenizer.model; generate needs the folder's tokenizer");
  Tokenizer tokenizer = Tokenizer::from_files(*model.tokenizer);
  if (args.has("--special_token_path")) {
    tokenizer.add_special_tokens(read_special_tokens_json(args.get("--special_token_path")));
  }
  const LlamaConfig& c = model.config;
  options.eos_id = tokenizer.eos_id();
  options.stop_id = stop_flag(args, tokenizer, c, dir);
  const std::vector<int32_t> prompt = encode_prompt(tokenizer, prompt_text, c);
  const int64_t positions = static_cast<int64_t>(prompt.size()) + options.max_new_tokens;
  ZT_CHECK(positions <= c.max_position_embeddings, "zerotune generate: ", prompt.size(),
           " prompt tokens + --max-new-tokens ", options.max_new_tokens, " = ", positions,
           " exceed the model's max_position_embeddings ", c.max_position_embeddings);

  // The cache is sized to this job, not to max_position_embeddings (GBs for 7B at 4096).
  LlamaGenerator generator(model.params, positions);
  print_result(tokenizer, prompt, generate(generator, prompt, options), args.has("--print-ids"));
  return 0;
}

}  // namespace zerotune
