#include "serve/model_backend.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "core/check.h"
#include "model/sampling.h"

namespace zerotune::serve {

ChooseToken make_sampler(const SamplingParams& params) {
  // std::function needs a copyable callable; the sampler's state is shared by its copies.
  auto sampler = std::make_shared<Sampler>(params);
  return [sampler](const float* logits, int64_t vocab) { return sampler->next(logits, vocab); };
}

namespace {

std::string gib(double bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.2f GiB", bytes / double(1ull << 30));
  return text;
}

// Bytes of the key/value cache: K and V for every layer, slot and position.
double cache_bytes(const LlamaConfig& c, int64_t max_batch, int64_t max_seq_len, DType dtype) {
  return 2.0 * double(c.num_hidden_layers) * double(max_batch) * double(max_seq_len) *
         double(c.num_key_value_heads * c.head_dim) * double(dtype_size(dtype));
}

}  // namespace

ModelBackend::ModelBackend(const ModelBackendOptions& options) : options_(options) {
  ZT_CHECK(options.max_batch >= 1, "--max-batch must be at least 1, got ", options.max_batch);
  // An adapter is merged once: decoding then costs what the base does.
  model_ = load_decode_model(options.model, options.adapter, options.special_token_path,
                             options.device, options.dtype);
  const LlamaConfig& c = model_.loaded.config;
  max_seq_len_ = options.max_seq_len > 0 ? options.max_seq_len : c.max_position_embeddings;
  ZT_CHECK(max_seq_len_ <= c.max_position_embeddings, "--max-seq-len ", max_seq_len_,
           " exceeds the model's max_position_embeddings ", c.max_position_embeddings);
  chat_template_ = ChatTemplate::from_folder(model_.folder);
  engine_ = std::make_unique<ModelDecodeEngine>(model_.params(), options.max_batch, max_seq_len_);
}

DecodeTokens ModelBackend::decoder() const {
  const Tokenizer* tokenizer = &*model_.tokenizer;
  return [tokenizer](const std::vector<int32_t>& ids) {
    // Rows of the model beyond the tokenizer's vocabulary (a padded embedding) have no text.
    std::vector<int32_t> known;
    known.reserve(ids.size());
    for (const int32_t id : ids) {
      if (id < tokenizer->vocab_size()) known.push_back(id);
    }
    return tokenizer->decode(known, BosEos::skip);
  };
}

ServedModel ModelBackend::served_model() {
  ServedModel served;
  served.name = !options_.served_model_name.empty() ? options_.served_model_name
                : !options_.adapter.empty()         ? options_.adapter
                                                    : options_.model;
  served.context = max_seq_len_;
  served.vocab_size = model_.loaded.config.vocab_size;
  served.eos_id = model_.tokenizer->eos_id();
  const Tokenizer* tokenizer = &*model_.tokenizer;
  served.encode_prompt = [tokenizer](const std::string& text) {
    return tokenizer->encode_with_special_tokens(text);  // BOS where the model has one
  };
  served.encode_chat = [tokenizer](const std::string& text) { return tokenizer->encode(text); };
  if (chat_template_) {
    served.render_chat = [this](const json::Value& messages, bool add_generation_prompt,
                                const json::Value& variables) {
      std::lock_guard lock(chat_template_mutex_);
      return chat_template_->render(messages, add_generation_prompt, variables);
    };
  } else {
    served.no_chat_template =
        str("this model has no chat template: ", model_.folder,
            "/tokenizer_config.json has no \"chat_template\", so /v1/chat/completions cannot "
            "render messages (use /v1/completions, or add a chat_template to that file)");
  }
  return served;
}

std::string ModelBackend::summary() const {
  const LlamaConfig& c = model_.loaded.config;
  const std::string adapter = options_.adapter.empty() ? "" : str(" + adapter ", options_.adapter);
  return str(model_.folder, adapter, ": ", c.num_hidden_layers, " layers, D=", c.hidden_size,
             ", V=", c.vocab_size, "; ", options_.device.name(), " ", dtype_name(options_.dtype),
             "; max batch ", options_.max_batch, ", max sequence ", max_seq_len_, " tokens (cache ",
             gib(cache_bytes(c, options_.max_batch, max_seq_len_, options_.dtype)),
             "); chat template: ", chat_template_ ? "yes" : "none");
}

}  // namespace zerotune::serve
