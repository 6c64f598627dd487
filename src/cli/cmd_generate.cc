// `zerotune generate`: greedy decoding with a key/value cache from a Hugging Face folder, to see
// what a (fine-tuned) checkpoint answers. The continuation goes to stdout, a JSON summary line to
// stderr, so that scripts can capture either alone.
#include <omp.h>

#include <cstdio>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/json.h"
#include "data/tokenizer.h"
#include "io/hf_checkpoint.h"
#include "model/generate.h"

namespace zerotune {

namespace {

std::string ids_json(const std::vector<int32_t>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? ", " : "") + std::to_string(ids[i]);
  return out + "]";
}

}  // namespace

int cmd_generate(int argc, char** argv, int first) {
  Args args("zerotune generate",
            "Greedy decoding with a key/value cache from a Hugging Face Llama folder. The prompt\n"
            "is encoded as <s> + its tokens; decoding stops at </s>, at --stop, or after\n"
            "--max-new-tokens. stdout holds the continuation alone (special tokens as text,\n"
            "the stop token included, </s> left out) and a newline; the statistics go to\n"
            "stderr as one JSON line: prompt_tokens, new_tokens, stopped (eos|stop|length) and\n"
            "tokens_per_s (new tokens over the wall time of prefill and decoding).");
  args.option("--model", "DIR", "Hugging Face model folder with tokenizer.model")
      .option("--prompt", "TEXT", "the text to continue")
      .option("--max-new-tokens|--max_new_tokens", "N", "most tokens to generate", "128")
      .option("--special_token_path|--special-token-path", "tokens.json",
              "special tokens to add to the tokenizer (tokens already known keep their ids)")
      .option("--stop", "TOKEN", "also stop after generating this token (e.g. <END_A>)")
      .option("--threads", "N", "OpenMP/BLAS threads (0 = OpenMP's default)", "0")
      .flag("--print-ids", "add prompt_ids and ids (the new tokens) to the JSON line");
  if (!args.parse(argc, argv, first)) return 0;
  const std::string dir = args.require("--model");
  const std::string prompt_text = args.require("--prompt");
  const int64_t max_new_tokens = args.get_int("--max-new-tokens");
  ZT_CHECK(max_new_tokens >= 0, "zerotune generate: --max-new-tokens must be >= 0, got ",
           max_new_tokens);
  if (const int64_t threads = args.get_int("--threads"); threads > 0) {
    omp_set_num_threads(static_cast<int>(threads));
  }

  const LoadedHfFolder model = read_hf_folder(dir);
  ZT_CHECK(model.tokenizer.has_value(), "zerotune generate: ", dir,
           " has no tokenizer.model; generate needs the folder's tokenizer");
  Tokenizer tokenizer = Tokenizer::from_files(*model.tokenizer);
  if (args.has("--special_token_path")) {
    tokenizer.add_special_tokens(read_special_tokens_json(args.get("--special_token_path")));
  }
  const LlamaConfig& c = model.config;

  GenerateOptions options;
  options.max_new_tokens = max_new_tokens;
  options.eos_id = tokenizer.eos_id();
  if (args.has("--stop")) {
    const std::string stop = args.get("--stop");
    options.stop_id = tokenizer.piece_to_id(stop);
    ZT_CHECK(options.stop_id >= 0, "zerotune generate: --stop ", json::quote(stop),
             " is not a token of ", dir, "'s tokenizer (nor of --special_token_path)");
    ZT_CHECK(options.stop_id < c.vocab_size, "zerotune generate: --stop ", json::quote(stop),
             " has id ", options.stop_id, ", beyond the model's vocabulary of ", c.vocab_size,
             ", so it can never be generated");
  }

  std::vector<int32_t> prompt{tokenizer.bos_id()};
  for (const int32_t id : tokenizer.encode(prompt_text)) prompt.push_back(id);
  const int64_t prompt_len = static_cast<int64_t>(prompt.size());
  for (const int32_t id : prompt) {
    ZT_CHECK(id < c.vocab_size, "zerotune generate: the prompt encodes to token id ", id,
             " but the model's vocabulary has ", c.vocab_size, " ids (tokenizer has ",
             tokenizer.vocab_size(), "; pass the --special_token_path the model was resized for)");
  }
  ZT_CHECK(prompt_len + max_new_tokens <= c.max_position_embeddings,
           "zerotune generate: ", prompt_len, " prompt tokens + --max-new-tokens ", max_new_tokens,
           " = ", prompt_len + max_new_tokens, " exceed the model's max_position_embeddings ",
           c.max_position_embeddings);

  // The cache is sized to this job, not to max_position_embeddings (GBs for 7B at 4096).
  LlamaGenerator generator(model.params, prompt_len + max_new_tokens);
  const GenerateResult result = generate_greedy(generator, prompt, options);

  const std::string text = tokenizer.decode(result.new_tokens, BosEos::skip);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  const int64_t new_tokens = static_cast<int64_t>(result.new_tokens.size());
  const double tokens_per_s =
      result.seconds > 0.0 ? static_cast<double>(new_tokens) / result.seconds : 0.0;
  std::string summary =
      str("{\"prompt_tokens\": ", prompt_len, ", \"new_tokens\": ", new_tokens, ", \"stopped\": \"",
          stop_reason_name(result.stopped), "\", \"tokens_per_s\": ");
  char rate[32];
  std::snprintf(rate, sizeof(rate), "%.2f", tokens_per_s);
  summary += rate;
  if (args.has("--print-ids")) {
    summary +=
        ", \"prompt_ids\": " + ids_json(prompt) + ", \"ids\": " + ids_json(result.new_tokens);
  }
  summary += "}\n";
  std::fputs(summary.c_str(), stderr);
  return 0;
}

}  // namespace zerotune
