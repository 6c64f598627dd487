#include "io/peft_adapter.h"

#include <unistd.h>

#include <filesystem>

#include "core/files.h"
#include "kernels/matmul.h"
#include "model/resize.h"

namespace zerotune {

namespace fs = std::filesystem;

namespace {

// name -> expected shape of every tensor `config` implies for `model`.
std::map<std::string, Shape> expected_tensors(const LoraConfig& config, const LlamaConfig& model) {
  std::map<std::string, Shape> out;
  const std::vector<LoraSite> sites = lora_sites(model, config);
  for (int64_t l = 0; l < model.num_hidden_layers; ++l) {
    for (const LoraSite& s : sites) {
      out[lora_tensor_name(l, s.module, 'A')] = Shape{config.r, s.in};
      out[lora_tensor_name(l, s.module, 'B')] = Shape{s.out, config.r};
    }
  }
  for (const std::string& m : config.modules_to_save) {
    out[peft_saved_module_name(m)] = Shape{model.vocab_size, model.hidden_size};
  }
  return out;
}

// The [out, in] weight `name` of `params` (f32 on the host).
Tensor weight(LlamaParams& params, const std::string& name) {
  const ParamGroup* group = nullptr;
  const ParamView* view = params.find(name, &group);
  ZT_CHECK(view, "merge: the base model has no tensor ", name);
  return group->view(*view);
}

}  // namespace

std::string peft_saved_module_name(const std::string& module) {
  return module == "lm_head" ? "base_model.model.lm_head.weight"
                             : "base_model.model.model.embed_tokens.weight";
}

PeftAdapter read_peft_adapter(const std::string& dir) {
  PeftAdapter a;
  a.dir = dir;
  const std::string config_path = (fs::path(dir) / kAdapterConfigFile).string();
  ZT_CHECK(fs::exists(config_path), dir, ": no ", kAdapterConfigFile,
           " (an adapter folder is what PEFT's save_pretrained or zerotune train --lora writes)");
  a.config = read_lora_config_file(config_path);
  const std::string weights_path = (fs::path(dir) / kAdapterWeightsFile).string();
  ZT_CHECK(fs::exists(weights_path), dir, ": no ", kAdapterWeightsFile,
           " (adapter_model.bin is not read: save the adapter with safe_serialization)");
  const SafetensorsFile file = SafetensorsFile::open(weights_path);
  for (const SafetensorsEntry& e : file.entries()) {
    Buffer values(DType::f32, e.shape);
    convert_copy(values, file.tensor(e));
    a.tensors.emplace(e.name, std::move(values));
  }
  return a;
}

void check_adapter_fits(const PeftAdapter& adapter, const LlamaConfig& model) {
  const std::string file = (fs::path(adapter.dir) / kAdapterWeightsFile).string();
  const std::map<std::string, Shape> expected = expected_tensors(adapter.config, model);
  for (const auto& [name, shape] : expected) {
    const auto it = adapter.tensors.find(name);
    ZT_CHECK(it != adapter.tensors.end(), file, ": tensor ", name,
             " is missing (the adapter's config targets it)");
    ZT_CHECK(it->second.view().shape == shape, file, ": tensor ", name, " is ",
             it->second.view().shape, ", expected ", shape,
             " for this base model (was the adapter trained on another base?)");
  }
  for (const auto& [name, values] : adapter.tensors) {
    ZT_CHECK(expected.count(name), file, ": tensor ", name,
             " does not belong to this adapter's config on this base model");
  }
}

void adapter_group_values(const PeftAdapter& adapter, const ParamGroup& layout, const Tensor& out) {
  for (const ParamView& v : layout.views) {
    const Buffer& values = adapter.tensors.at(v.name);
    copy(out.flat(v.offset, v.shape.numel()), values.view().reshape(Shape{v.shape.numel()}));
  }
}

void merge_adapter_layer(LlamaParams& params, const PeftAdapter& adapter, int64_t l) {
  const LoraConfig& c = adapter.config;
  const float scale = static_cast<float>(c.scale());
  for (const LoraSite& s : lora_sites(params.config(), c)) {
    const Tensor w = weight(params, str("model.layers.", l, ".", lora_module_path(s.module),
                                        ".weight"));                                // [out, in]
    const float* a = adapter.tensors.at(lora_tensor_name(l, s.module, 'A')).f32();  // [r, in]
    const float* b = adapter.tensors.at(lora_tensor_name(l, s.module, 'B')).f32();  // [out, r]
    cpu::gemm(false, false, s.out, s.in, c.r, scale, b, c.r, a, s.in, 1.0f, w.f32(), s.in);
  }
}

void merge_adapter(LlamaParams& params, const PeftAdapter& adapter) {
  for (int64_t l = 0; l < params.config().num_hidden_layers; ++l) {
    merge_adapter_layer(params, adapter, l);
  }
  copy_saved_modules(params, adapter);
}

void copy_saved_modules(LlamaParams& params, const PeftAdapter& adapter) {
  for (const std::string& m : adapter.config.modules_to_save) {
    const Tensor w = m == "lm_head" ? params.head() : params.embedding();  // [V, D]
    copy(w, adapter.tensors.at(peft_saved_module_name(m)));
  }
}

int64_t adapter_vocab(const PeftAdapter& adapter, int64_t base_vocab) {
  int64_t vocab = base_vocab;
  for (const std::string& m : adapter.config.modules_to_save) {
    const auto it = adapter.tensors.find(peft_saved_module_name(m));
    if (it != adapter.tensors.end() && it->second.view().ndim() == 2) {
      vocab = std::max(vocab, it->second.view().shape[0]);
    }
  }
  return vocab;
}

void apply_adapter(LlamaParams& params, const std::string& dir) {
  const PeftAdapter adapter = read_peft_adapter(dir);
  // Tokens added in training: the adapter's saved embedding / head have their rows, so the base
  // grows first (as transformers' resize_token_embeddings before PeftModel.from_pretrained).
  const int64_t vocab = adapter_vocab(adapter, params.config().vocab_size);
  if (vocab > params.config().vocab_size) params = resize_vocab(params, vocab, 0);
  check_adapter_fits(adapter, params.config());
  merge_adapter(params, adapter);
}

void write_peft_adapter(const std::string& dir, const LoraConfig& config,
                        const std::vector<NamedTensor>& tensors, const TokenizerFiles* tokenizer) {
  fs::path target = fs::path(dir).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();  // "a/b/"
  ZT_CHECK(!fs::exists(target) || fs::is_empty(target) || fs::exists(target / kAdapterConfigFile),
           dir, ": exists and is not an adapter folder; refusing to replace it");
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  const std::string pid = std::to_string(::getpid());
  const fs::path tmp = target.string() + ".tmp-" + pid;
  remove_tree_quietly(tmp.string());
  fs::create_directory(tmp);
  try {
    if (tokenizer) write_tokenizer_files(tmp.string(), *tokenizer);
    write_file_atomically((tmp / kAdapterConfigFile).string(),
                          lora_config_json(config).dump(2) + "\n");
    write_safetensors((tmp / kAdapterWeightsFile).string(), tensors, {{"format", "pt"}});
    fsync_directory(tmp.string(), true);
    publish_folder(tmp.string(), target.string(), target.string() + ".old-" + pid);
  } catch (...) {
    remove_tree_quietly(tmp.string());
    throw;
  }
}

}  // namespace zerotune
