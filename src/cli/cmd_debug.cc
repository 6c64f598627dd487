// `zerotune debug grads` and `zerotune debug steps`: fp32 numerics on one batch, in the forms
// another implementation can check (a loss line and a safetensors file of gradients).
// `zerotune debug chat-template`: a model folder's chat template rendered for a message list,
// byte for byte, for checking against Python's jinja2.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "cli/args.h"
#include "cli/commands.h"
#include "data/chat_template.h"
#include "data/jinja.h"
#include "data/token_jsonl.h"
#include "io/hf_model.h"
#include "io/safetensors.h"
#include "model/llama.h"
#include "train/train_step.h"

namespace zerotune {
namespace {

struct Loaded {
  std::unique_ptr<LlamaModel> model;
  TokenBatch batch;
};

Loaded load(const Args& args) {
  Loaded out;
  const std::string dir = args.require("--model");
  const LlamaConfig config = load_hf_config(dir);
  out.model = std::make_unique<LlamaModel>(
      config, args.has("--grad-ckpt") ? Checkpointing::per_layer : Checkpointing::off);
  load_hf_weights(dir, out.model->params());
  const TokenRows rows = read_token_jsonl(args.require("--batch"), config.vocab_size);
  out.batch = TokenBatch::from_rows(rows.input_ids, rows.labels);
  ZT_CHECK(out.batch.count_targets() > 0, args.get("--batch"),
           ": every label is -100 after the shift; there is no loss to compute");
  return out;
}

int debug_grads(int argc, char** argv, int first) {
  Args args("zerotune debug grads",
            "Runs forward and backward of one batch in fp32 and writes every parameter gradient\n"
            "(HF tensor names; for a tied head only the embedding) to a safetensors file. Prints\n"
            "{\"loss\": L, \"tokens\": N} last: the mean loss over the N counted label positions.");
  args.option("--model", "DIR", "Hugging Face Llama folder (config.json + safetensors)")
      .option("--batch", "FILE.jsonl", "lines of {\"input_ids\": [...], \"labels\": [...]}")
      .option("--out", "GRADS.safetensors", "where to write the gradients")
      .flag("--grad-ckpt", "recompute each layer in backward (activation checkpointing)");
  if (!args.parse(argc, argv, first)) return 0;
  const std::string out_path = args.require("--out");
  Loaded run = load(args);
  const int64_t tokens = run.batch.count_targets();
  run.model->grads().zero();
  const CrossEntropyResult r =
      run.model->forward_backward(run.batch, 1.0f / static_cast<float>(tokens));
  std::vector<NamedTensor> named;
  for (auto& [name, tensor] : run.model->grads().named()) named.push_back({name, tensor});
  write_safetensors(out_path, named);
  std::printf("{\"loss\": %.9g, \"tokens\": %lld}\n", r.loss_sum / static_cast<double>(r.count),
              static_cast<long long>(r.count));
  return 0;
}

int debug_steps(int argc, char** argv, int first) {
  Args args(
      "zerotune debug steps",
      "Takes K AdamW steps (torch.optim.AdamW semantics, constant lr, no clipping) on one\n"
      "batch and prints {\"step\": k, \"loss\": L} before each update, then {\"losses\": [...]}.");
  args.option("--model", "DIR", "Hugging Face Llama folder")
      .option("--batch", "FILE.jsonl", "lines of {\"input_ids\": [...], \"labels\": [...]}")
      .option("--steps", "K", "optimizer steps", "10")
      .option("--lr", "LR", "learning rate", "1e-3")
      .option("--weight-decay", "WD", "decoupled weight decay", "0")
      .flag("--grad-ckpt", "recompute each layer in backward (activation checkpointing)");
  if (!args.parse(argc, argv, first)) return 0;
  Loaded run = load(args);
  // The trainer's engine and step on one rank, without clipping.
  ZeroOptions zero;
  zero.adam.weight_decay = args.get_double("--weight-decay");
  SingleRankTraining training = single_rank_training(
      run.model->params(), args.has("--grad-ckpt") ? Checkpointing::per_layer : Checkpointing::off,
      zero);
  run.model.reset();
  const int64_t steps = args.get_int("--steps");
  const double lr = args.get_double("--lr");
  std::vector<TokenBatch> batch;  // one micro-batch [B, T]
  batch.push_back(std::move(run.batch));
  std::string losses;
  for (int64_t k = 1; k <= steps; ++k) {
    const double loss = train_step(*training.model, *training.engine, batch, {lr, 0.0, k}).loss;
    std::printf("{\"step\": %lld, \"loss\": %.9g}\n", static_cast<long long>(k), loss);
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%s%.9g", losses.empty() ? "" : ", ", loss);
    losses += buf;
  }
  std::printf("{\"losses\": [%s]}\n", losses.c_str());
  return 0;
}

json::Value read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ZT_CHECK(in.good(), path, ": cannot open");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return json::parse(bytes.str(), path);
}

// One JSONL line per case: {"messages": [...], "add_generation_prompt": bool, "variables": {...}}
// in; {"text": ...}, {"raised": message of raise_exception} or {"error": ...} out.
void render_batch(const ChatTemplate& chat, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ZT_CHECK(in.good(), path, ": cannot open");
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    const json::Value row = json::parse_line(line, path, number);
    ZT_CHECK(row.is_object() && row.find("messages"), path, ":", number,
             ": expected an object with \"messages\"");
    const json::Value* agp = row.find("add_generation_prompt");
    const json::Value* variables = row.find("variables");
    std::string out;
    try {
      out = "{\"text\": " +
            json::quote(chat.render(*row.find("messages"),
                                    agp && agp->as_bool("add_generation_prompt"),
                                    variables ? *variables : json::Value())) +
            "}";
    } catch (const jinja::RaisedError& e) {
      out = "{\"raised\": " + json::quote(e.what()) + "}";
    } catch (const Error& e) {
      out = "{\"error\": " + json::quote(e.what()) + "}";
    }
    std::printf("%s\n", out.c_str());
  }
}

int debug_chat_template(int argc, char** argv, int first) {
  Args args(
      "zerotune debug chat-template",
      "Renders the folder's chat template (tokenizer_config.json \"chat_template\", or\n"
      "chat_template.jinja) for the messages as transformers' apply_chat_template would, and\n"
      "writes the text to stdout exactly (no newline added). With --batch, renders each line\n"
      "of a JSONL file and prints one JSON line per case: {\"text\"}, {\"raised\"} or "
      "{\"error\"}.");
  args.option("--folder", "DIR", "model or tokenizer folder")
      .option("--messages", "FILE.json", "a JSON array of {\"role\", \"content\", ...} objects")
      .option("--variables", "FILE.json",
              "a JSON object of further template variables (tools, ...)")
      .option("--batch", "FILE.jsonl",
              "lines of {\"messages\", \"add_generation_prompt\", \"variables\"} to render in turn")
      .flag("--add-generation-prompt", "end with the header of the assistant's turn");
  if (!args.parse(argc, argv, first)) return 0;
  const std::string folder = args.require("--folder");
  const std::optional<ChatTemplate> chat = ChatTemplate::from_folder(folder);
  ZT_CHECK(chat.has_value(), folder,
           ": no chat template (tokenizer_config.json has no \"chat_template\" and there is no "
           "chat_template.jinja)");
  if (args.has("--batch")) {
    render_batch(*chat, args.get("--batch"));
    return 0;
  }
  const json::Value messages = read_json_file(args.require("--messages"));
  const json::Value variables =
      args.has("--variables") ? read_json_file(args.get("--variables")) : json::Value();
  std::string text;
  try {
    text = chat->render(messages, args.has("--add-generation-prompt"), variables);
  } catch (const jinja::RaisedError& e) {
    fail(chat->origin() + ": raise_exception: " + e.what());
  }
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

}  // namespace

int cmd_debug(int argc, char** argv, int first) {
  const char* usage =
      "usage: zerotune debug grads|steps|chat-template [flags]   (zerotune debug grads --help "
      "for flags)\n";
  if (first >= argc) {
    std::fputs(usage, stderr);
    return 2;
  }
  if (!std::strcmp(argv[first], "grads")) return debug_grads(argc, argv, first + 1);
  if (!std::strcmp(argv[first], "steps")) return debug_steps(argc, argv, first + 1);
  if (!std::strcmp(argv[first], "chat-template")) return debug_chat_template(argc, argv, first + 1);
  if (!std::strcmp(argv[first], "--help") || !std::strcmp(argv[first], "-h")) {
    std::fputs(usage, stdout);
    return 0;
  }
  std::fprintf(stderr, "zerotune debug: unknown subcommand '%s'\n%s", argv[first], usage);
  return 2;
}

}  // namespace zerotune
