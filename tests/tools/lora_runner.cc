// Drives LoRA's forward, backward and AdamW steps for tests/reference/check_lora.py:
//   lora_runner grads --model DIR --adapter DIR --batch F.jsonl --out G.safetensors
//                     [--seed S] [--key K] [--grad-ckpt] [--eval-loss]
//     one forward and backward with the adapter's A and B (dropout keyed by (S, K)); writes the
//     gradient of every trainable tensor under PEFT's names and prints {"loss", "tokens"} (with
//     --eval-loss also "eval_loss": the forward without dropout).
//   lora_runner steps --model DIR --adapter DIR --batch F.jsonl --steps N --lr LR [--wd WD]
//                     [--seed S] [--grad-ckpt]
//     N AdamW steps of the trainer's engine over the adapters; prints {"losses": [...]}.
#include <cstdio>
#include <map>
#include <string>

#include "data/token_jsonl.h"
#include "io/hf_model.h"
#include "io/peft_adapter.h"
#include "train/train_step.h"

namespace zerotune {
namespace {

struct Flags {
  std::map<std::string, std::string> values;
  std::string get(const std::string& k, const std::string& fallback = "") const {
    const auto it = values.find(k);
    ZT_CHECK(it != values.end() || !fallback.empty(), "lora_runner: ", k, " is required");
    return it == values.end() ? fallback : it->second;
  }
  bool has(const std::string& k) const { return values.count(k) > 0; }
};

Flags parse(int argc, char** argv) {
  Flags f;
  for (int i = 2; i < argc; ++i) {
    const std::string k = argv[i];
    const bool is_flag = k == "--grad-ckpt" || k == "--eval-loss";
    f.values[k] = is_flag ? "1" : (i + 1 < argc ? argv[++i] : "");
  }
  return f;
}

TokenBatch read_batch(const Flags& f, const LlamaConfig& config) {
  const TokenRows rows = read_token_jsonl(f.get("--batch"), config.vocab_size);
  return TokenBatch::from_rows(rows.input_ids, rows.labels);
}

int grads(const Flags& f) {
  const std::string dir = f.get("--model");
  const LlamaConfig config = load_hf_config(dir);
  const PeftAdapter adapter = read_peft_adapter(f.get("--adapter"));
  check_adapter_fits(adapter, config);
  LlamaParams params(config);
  load_hf_weights(dir, params);
  copy_saved_modules(params, adapter);
  const int64_t first = add_lora_groups(params, adapter.config);
  for (size_t g = static_cast<size_t>(first); g < params.groups().size(); ++g) {
    ParamGroup& group = params.groups()[g];
    group.data = Buffer(DType::f32, Shape{params.group_numel(g)});
    adapter_group_values(adapter, group, group.data);
  }
  LoraLayers lora(config, adapter.config, first, std::stoull(f.get("--seed", "42")));
  lora.set_dropout_key(std::stoull(f.get("--key", "1")));
  LlamaModel model(std::move(params),
                   f.has("--grad-ckpt") ? Checkpointing::per_layer : Checkpointing::off);
  model.set_lora(&lora);
  const TokenBatch batch = read_batch(f, config);
  const int64_t tokens = batch.count_targets();
  model.grads().zero();
  const CrossEntropyResult r = model.forward_backward(batch, 1.0f / static_cast<float>(tokens));
  std::vector<NamedTensor> named;
  for (const ParamGroup& g : model.grads().groups()) {
    if (!g.trainable) continue;
    for (const ParamView& v : g.views) {
      const bool embed = v.name == "model.embed_tokens.weight";
      const std::string name = v.name == "lm_head.weight" ? peft_saved_module_name("lm_head")
                               : embed                    ? peft_saved_module_name("embed_tokens")
                                                          : v.name;
      named.push_back({name, g.view(v)});
    }
  }
  write_safetensors(f.get("--out"), named);
  std::printf("{\"loss\": %.9g, \"tokens\": %lld", r.loss_sum / static_cast<double>(r.count),
              static_cast<long long>(r.count));
  if (f.has("--eval-loss")) {
    const CrossEntropyResult e = model.forward_loss(batch);
    std::printf(", \"eval_loss\": %.9g", e.loss_sum / static_cast<double>(e.count));
  }
  std::printf("}\n");
  return 0;
}

int steps(const Flags& f) {
  const std::string dir = f.get("--model");
  const LlamaConfig config = load_hf_config(dir);
  const PeftAdapter adapter = read_peft_adapter(f.get("--adapter"));
  check_adapter_fits(adapter, config);
  LlamaParams params(config);
  load_hf_weights(dir, params);
  copy_saved_modules(params, adapter);
  ZeroOptions zero;
  zero.adam.weight_decay = std::stod(f.get("--wd", "0"));
  SingleRankTraining t = single_rank_lora_training(
      params, adapter.config,
      [&](int64_t, const ParamGroup& layout, const Tensor& out) {
        adapter_group_values(adapter, layout, out);
      },
      std::stoull(f.get("--seed", "42")),
      f.has("--grad-ckpt") ? Checkpointing::per_layer : Checkpointing::off, zero);
  std::vector<TokenBatch> batch;
  batch.push_back(read_batch(f, config));
  const int64_t n = std::stoll(f.get("--steps"));
  const double lr = std::stod(f.get("--lr"));
  std::string losses;
  for (int64_t k = 1; k <= n; ++k) {
    const double loss = train_step(*t.model, *t.engine, batch, {lr, 0.0, k}).loss;
    losses += str(losses.empty() ? "" : ", ", json::Value(loss).dump());
  }
  std::printf("{\"losses\": [%s]}\n", losses.c_str());
  return 0;
}

}  // namespace
}  // namespace zerotune

int main(int argc, char** argv) {
  try {
    const std::string cmd = argc > 1 ? argv[1] : "";
    const zerotune::Flags flags = zerotune::parse(argc, argv);
    if (cmd == "grads") return zerotune::grads(flags);
    if (cmd == "steps") return zerotune::steps(flags);
    std::fprintf(stderr, "usage: lora_runner grads|steps ... (see the source's header)\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lora_runner: %s\n", e.what());
  }
  return 1;
}
