// `zerotune eval`: GSM8K exact-match accuracy of a model, greedy, many sequences per step. Two
// protocols: the fine-tuning format's (--format seed, the default) and lm-evaluation-harness's
// gsm8k task (--format lm-eval), so that a number can be set beside published tables.
#include <omp.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/check.h"
#include "core/json.h"
#include "core/timer.h"
#include "eval/decode_model.h"
#include "eval/gsm8k_eval.h"

namespace zerotune {

namespace {

void declare_flags(Args& args) {
  args.option("--model", "DIR|s3://...|owner/name",
              "Hugging Face model folder, S3 prefix or Hub id (resolved and cached as train does)")
      .option("--data", "FILE", "test split: seed rows, or GSM8K question/answer with lm-eval")
      .option("--format", "seed|lm-eval",
              "seed: {\"input\": \"<START_Q>q<END_Q><START_A>a<END_A>\"} rows, prompted up to "
              "<START_A>; lm-eval: GSM8K as published, prompted as lm-evaluation-harness's gsm8k",
              "seed")
      .option("--special_token_path|--special-token-path", "tokens.json",
              "special tokens added to the tokenizer, as training added them")
      .option("--adapter", "DIR|s3://B/P|OWNER/NAME",
              "a PEFT LoRA adapter of --model, merged in before decoding")
      .option("--limit", "N", "only the first N rows (default: all)")
      .option("--batch-size", "N", "sequences decoded together", "8")
      .option("--max-new-tokens|--max_new_tokens", "N", "most tokens per completion", "256")
      .option("--num-fewshot", "K", "lm-eval: solved examples before each question", "5")
      .option("--fewshot-data", "FILE", "lm-eval: GSM8K train split the examples are drawn from")
      .option("--fewshot-seed", "S", "lm-eval: seed of the examples' draw", "1234")
      .option("--out", "FILE", "predictions.jsonl: per example prompt, completion, scores")
      .option("--device", "cpu|cuda", "where the model decodes", "cpu")
      .option("--dtype", "auto|f32|bf16", "weights and cache: auto = f32 on cpu, bf16 on cuda",
              "auto")
      .option("--threads", "N", "OpenMP/BLAS threads (0 = OpenMP's default)", "0")
      .flag("--json", "print the result as one JSON object instead of text");
}

struct EvalJob {
  std::string adapter;  // a PEFT adapter merged into the model (empty: none)
  std::string model, data, special_tokens, out;
  EvalFormat format = EvalFormat::seed;
  int64_t limit = -1;
  FewShot fewshot;
  EvalSettings settings;
  Device device = Device::cpu();
  DType dtype = DType::f32;
  bool json = false;
};

int64_t at_least(const Args& args, const char* flag, int64_t low) {
  const int64_t value = args.get_int(flag);
  ZT_CHECK(value >= low, "zerotune eval: ", flag, " must be >= ", low, ", got ", value);
  return value;
}

EvalJob parse_job(const Args& args) {
  EvalJob job;
  job.model = args.require("--model");
  job.data = args.require("--data");
  job.special_tokens = args.get("--special_token_path");
  job.adapter = args.get("--adapter");
  job.out = args.get("--out");
  const std::string format = args.get("--format");
  ZT_CHECK(format == "seed" || format == "lm-eval",
           "zerotune eval: --format must be seed or lm-eval, got '", format, "'");
  job.format = job.settings.format = format == "seed" ? EvalFormat::seed : EvalFormat::lm_eval;
  if (args.has("--limit")) {
    job.limit = args.get_int("--limit");
    ZT_CHECK(job.limit >= 1,
             "zerotune eval: --limit must be >= 1 (leave it out for every row), got ", job.limit);
  }
  job.settings.batch_size = at_least(args, "--batch-size", 1);
  job.settings.max_new_tokens = at_least(args, "--max-new-tokens", 1);
  job.fewshot.count = at_least(args, "--num-fewshot", 0);
  job.fewshot.path = args.get("--fewshot-data");
  job.fewshot.seed = static_cast<uint64_t>(at_least(args, "--fewshot-seed", 0));
  const std::string device = args.get("--device");
  ZT_CHECK(device == "cpu" || device == "cuda",
           "zerotune eval: --device must be cpu or cuda, got '", device, "'");
  job.device = device == "cpu" ? Device::cpu() : Device::cuda(0);
  const std::string dtype = args.get("--dtype");
  ZT_CHECK(dtype == "auto" || dtype == "f32" || dtype == "bf16",
           "zerotune eval: --dtype must be auto, f32 or bf16, got '", dtype, "'");
  job.dtype =
      dtype == "bf16" || (dtype == "auto" && !job.device.is_cpu()) ? DType::bf16 : DType::f32;
  job.json = args.has("--json");
  if (!job.out.empty()) {  // found now, not after the decoding
    const std::filesystem::path folder = std::filesystem::absolute(job.out).parent_path();
    ZT_CHECK(std::filesystem::is_directory(folder), "zerotune eval: --out ", job.out, ": ",
             folder.string(), " is not a folder");
  }
  return job;
}

void print_result(const EvalJob& job, const EvalOutcome& outcome, double seconds) {
  const EvalCounts& n = outcome.counts;
  json::Value summary = json::Value::object();
  summary.set("format", job.format == EvalFormat::seed ? "seed" : "lm-eval");
  summary.set("examples", n.done);
  summary.set("scored", n.scored);
  summary.set("skipped", n.skipped);
  summary.set("seconds", seconds);
  json::Value filters = json::Value::object();
  for (size_t f = 0; f < outcome.filter_names.size(); ++f) {
    const int64_t correct = n.correct[f];
    const double accuracy = n.scored > 0 ? double(correct) / double(n.scored) : 0.0;
    const Interval ci = wilson_interval(correct, n.scored);
    json::Value one = json::Value::object();
    one.set("accuracy", accuracy);
    one.set("correct", correct);
    one.set("ci95_low", ci.low);
    one.set("ci95_high", ci.high);
    filters.set(outcome.filter_names[f], std::move(one));
    if (!job.json) {
      std::printf("%-17s accuracy %.4f  95%% CI [%.4f, %.4f]  %lld/%lld correct\n",
                  outcome.filter_names[f].c_str(), accuracy, ci.low, ci.high,
                  static_cast<long long>(correct), static_cast<long long>(n.scored));
    }
  }
  summary.set("filters", std::move(filters));
  if (job.json) {
    std::printf("%s\n", summary.dump().c_str());
  } else if (n.skipped > 0) {
    std::printf("skipped %lld rows whose reference has no number after ####\n",
                static_cast<long long>(n.skipped));
  }
  std::fflush(stdout);
}

}  // namespace

int cmd_eval(int argc, char** argv, int first) {
  Args args("zerotune eval",
            "GSM8K exact-match accuracy of a Hugging Face Llama model: greedy decoding of each\n"
            "test prompt, --batch-size sequences per step, scored by the number after the last\n"
            "'####' (--format seed) or by lm-evaluation-harness's gsm8k filters strict-match and\n"
            "flexible-extract (--format lm-eval). Prints accuracy, its 95% Wilson interval and\n"
            "the counts; --out writes every prediction.");
  declare_flags(args);
  if (!args.parse(argc, argv, first)) return 0;
  const EvalJob job = parse_job(args);
  if (const int64_t threads = at_least(args, "--threads", 0); threads > 0) {
    omp_set_num_threads(static_cast<int>(threads));
  }
  // Bad rows are found before the model is loaded or anything decoded.
  const std::vector<EvalItem> items = job.format == EvalFormat::seed
                                          ? read_seed_items(job.data, job.limit)
                                          : read_lm_eval_items(job.data, job.limit, job.fewshot);
  const DecodeModel model =
      load_decode_model(job.model, job.adapter, job.special_tokens, job.device, job.dtype);
  encode_prompts(*model.tokenizer, items, model.params().config().vocab_size);  // checks ids
  const Timer timer;
  const EvalOutcome outcome =
      evaluate_items(model.params(), *model.tokenizer, items, job.settings,
                     eval_progress_line(static_cast<int64_t>(items.size()), timer));
  const double seconds = timer.seconds();
  if (!job.out.empty()) write_predictions(job.out, outcome);
  print_result(job, outcome, seconds);
  return 0;
}

}  // namespace zerotune
