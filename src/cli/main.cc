// zerotune <command> [flags]: the single entry point. Errors from any layer arrive here as
// zerotune::Error and become one line on stderr and exit status 1.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cli/commands.h"
#include "core/check.h"
#include "core/device.h"

namespace {

const char* kUsage =
    "usage: zerotune <command> [flags]\n"
    "\n"
    "Fine-tunes Llama-family models from Hugging Face checkpoints.\n"
    "\n"
    "commands:\n"
    "  train         fine-tune a Hugging Face Llama folder on JSONL text\n"
    "  data gsm8k    GSM8K as published -> train.jsonl, test.jsonl, tokens.json\n"
    "  data synth    built-in grade-school word problems in the same format (offline default)\n"
    "  tokenize      text JSONL -> token ids, exactly as training sees them\n"
    "  tokenizer train  train a SentencePiece tokenizer.model on text JSONL\n"
    "  init          write a randomly initialised Llama folder in Hugging Face layout\n"
    "  generate      decoding with a KV cache from a Hugging Face folder (greedy or sampled)\n"
    "  serve         an OpenAI-compatible HTTP server with batched decoding\n"
    "  merge         a LoRA adapter merged into its base model, written as a full folder\n"
    "  eval          GSM8K accuracy of a model (the fine-tuning format or lm-eval's protocol)\n"
    "  debug grads   loss and every parameter gradient of one batch (fp32), for checking numerics\n"
    "  debug steps   a few training steps on one batch, printing the loss of each\n"
    "  debug chat-template  a folder's chat template rendered as jinja2 renders it\n"
    "  bench         training-step throughput on random tokens, one JSON line out\n"
    "  report        report.html of one or more runs: charts, settings, model, memory\n"
    "  storage       object storage: ls, cp, rm on s3://, fetch a model into the cache\n"
    "\n"
    "  zerotune <command> --help   flags of a command\n"
    "  zerotune --version          version and compiled-in backends\n";

void print_version() {
  std::printf("zerotune %s\nbackends: cpu (OpenBLAS + OpenMP)%s\n", ZEROTUNE_VERSION,
              zerotune::cuda_backend_built() ? ", cuda" : "");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  try {
    if (command == "--version" || command == "version") {
      print_version();
      return 0;
    }
    if (command == "debug") return zerotune::cmd_debug(argc, argv, 2);
    if (command == "bench") return zerotune::cmd_bench(argc, argv, 2);
    if (command == "init") return zerotune::cmd_init(argc, argv, 2);
    if (command == "train") return zerotune::cmd_train(argc, argv, 2);
    if (command == "generate") return zerotune::cmd_generate(argc, argv, 2);
    if (command == "data") return zerotune::cmd_data(argc, argv, 2);
    if (command == "tokenize") return zerotune::cmd_tokenize(argc, argv, 2);
    if (command == "tokenizer") return zerotune::cmd_tokenizer(argc, argv, 2);
    if (command == "storage") return zerotune::cmd_storage(argc, argv, 2);
    if (command == "serve") return zerotune::cmd_serve(argc, argv, 2);
    if (command == "merge") return zerotune::cmd_merge(argc, argv, 2);
    if (command == "eval") return zerotune::cmd_eval(argc, argv, 2);
    if (command == "report") return zerotune::cmd_report(argc, argv, 2);
    std::fprintf(stderr, "zerotune: unknown command '%s'\n\n%s", command.c_str(), kUsage);
    return 2;
  } catch (const zerotune::Error& e) {
    // Messages that already name the command ("zerotune train: ...") are not prefixed twice.
    const std::string prefix = "zerotune " + command + ": ";
    std::string message = e.what();
    if (message.rfind(prefix, 0) == 0) message.erase(0, prefix.size());
    std::fprintf(stderr, "%serror: %s\n", prefix.c_str(), message.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zerotune %s: unexpected error: %s\n", command.c_str(), e.what());
    return 1;
  }
}
