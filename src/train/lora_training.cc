#include "train/lora_training.h"

#include <cstdio>

namespace zerotune {

LoraSetup read_lora_setup(const TrainOptions& o, const LlamaConfig& model,
                          const std::string& base_name) {
  LoraSetup s;
  if (!o.adapter_dir.empty()) {
    s.adapter = read_peft_adapter(o.adapter_dir);
    check_adapter_fits(*s.adapter, model);
    s.config = s.adapter->config;
  } else if (!o.lora_config_path.empty()) {
    s.config = read_lora_config_file(o.lora_config_path);
  }
  s.config.base_model = base_name;
  return s;
}

void load_lora_values(ZeroEngine& engine, const LlamaParams& layout, const LoraSetup& setup,
                      uint64_t seed) {
  const LlamaConfig& model = layout.config();
  for (int64_t l = 0; l < model.num_hidden_layers; ++l) {
    const size_t g = static_cast<size_t>(setup.first_group + l);
    Buffer values(DType::f32, Shape{layout.group_numel(g)});  // [numel] f32
    if (setup.adapter) {
      adapter_group_values(*setup.adapter, layout.groups()[g], values);
    } else {
      init_lora_group(values, model, setup.config, l, seed);
    }
    engine.set_group_params(g, values);
  }
  if (!setup.adapter) return;
  for (const std::string& m : setup.config.modules_to_save) {
    const int64_t g = m == "lm_head" ? layout.head_group() : layout.embed_group();
    engine.set_group_params(static_cast<size_t>(g),
                            setup.adapter->tensors.at(peft_saved_module_name(m)));
  }
}

void report_lora(const LoraSetup& setup, const LlamaParams& layout, int64_t source_vocab) {
  const LoraConfig& c = setup.config;
  int64_t adapter_params = 0, base_params = 0, trained_full = 0;
  for (size_t g = 0; g < layout.groups().size(); ++g) {
    const bool adapter = static_cast<int64_t>(g) >= setup.first_group;
    const int64_t n = layout.group_numel(g);
    (adapter ? adapter_params : base_params) += n;
    if (!adapter && layout.groups()[g].trainable) trained_full += n;
  }
  std::string targets;
  for (const std::string& t : c.target_modules) targets += str(targets.empty() ? "" : ",", t);
  std::fprintf(stderr,
               "zerotune train: LoRA r %lld alpha %g dropout %g on %s%s: %lld adapter "
               "parameters (%.3f%% of %lld)%s\n",
               static_cast<long long>(c.r), c.alpha, c.dropout, targets.c_str(),
               c.use_rslora ? " (rsLoRA)" : "", static_cast<long long>(adapter_params),
               100.0 * static_cast<double>(adapter_params) / static_cast<double>(base_params),
               static_cast<long long>(base_params),
               trained_full ? str(", plus ", trained_full, " in modules_to_save").c_str() : "");
  if (layout.config().vocab_size > source_vocab && !c.saves("embed_tokens")) {
    std::fprintf(stderr,
                 "zerotune train: warning: %lld tokens were added but embed_tokens%s is not in "
                 "modules_to_save: their embedding rows stay at their initial values (add "
                 "\"modules_to_save\": [\"embed_tokens\", \"lm_head\"] to the LoRA config)\n",
                 static_cast<long long>(layout.config().vocab_size - source_vocab),
                 layout.config().tie_word_embeddings || c.saves("lm_head") ? "" : "/lm_head");
  }
}

}  // namespace zerotune
