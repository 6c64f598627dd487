// The model side of `zerotune serve`: a Hugging Face folder (local, s3:// or a Hub id, resolved
// and cached as `train` resolves them) loaded into a BatchedGenerator, its tokenizer (plus the
// special tokens training added), and its chat template; adapted to the scheduler's DecodeEngine
// and the API's ServedModel.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/device.h"
#include "core/dtype.h"
#include "data/chat_template.h"
#include "data/tokenizer.h"
#include "eval/decode_model.h"
#include "model/batched_generator.h"
#include "serve/decode_engine.h"
#include "serve/http_server.h"

namespace zerotune::serve {

// BatchedGenerator as the scheduler's engine.
class ModelDecodeEngine : public DecodeEngine {
 public:
  // `params` must outlive the engine.
  ModelDecodeEngine(const LlamaParams& params, int64_t max_batch, int64_t max_seq_len)
      : generator_(params, max_batch, max_seq_len) {}

  int64_t vocab_size() const override { return generator_.config().vocab_size; }
  int64_t max_batch() const override { return generator_.max_batch(); }
  int64_t max_seq_len() const override { return generator_.max_seq_len(); }
  int64_t free_slots() const override { return generator_.free_slots(); }
  int64_t start(const std::vector<int32_t>& prompt, float* logits) override {
    return generator_.start(prompt, logits);
  }
  void step(const std::vector<int64_t>& slots, const std::vector<int32_t>& tokens,
            float* logits) override {
    generator_.step(slots, tokens, logits);
  }
  void finish(int64_t slot) override { generator_.finish(slot); }

 private:
  BatchedGenerator generator_;
};

// A Sampler (model/sampling.h) per request: greedy at temperature 0, else seeded sampling.
ChooseToken make_sampler(const SamplingParams& params);

struct ModelBackendOptions {
  std::string model;               // DIR, s3://bucket/prefix or owner/name[@revision]
  std::string special_token_path;  // tokens.json of the fine-tuning run; empty: none
  std::string served_model_name;   // empty: `adapter`, else `model`, as given
  std::string adapter;  // a PEFT LoRA adapter of `model` merged in (DIR, s3:// or a Hub id)
  Device device = Device::cpu();
  DType dtype = DType::f32;  // of the weights and cache: f32 on the CPU; f32 or bf16 on a GPU
  int64_t max_batch = 16;
  int64_t max_seq_len = 0;  // 0: the model's max_position_embeddings
};

class ModelBackend {
 public:
  // Loads everything; errors name the folder, file or flag at fault.
  explicit ModelBackend(const ModelBackendOptions& options);
  ModelBackend(const ModelBackend&) = delete;
  ModelBackend& operator=(const ModelBackend&) = delete;

  DecodeEngine& engine() { return *engine_; }
  DecodeTokens decoder() const;
  // The API's view; its functions refer to this backend, which must outlive it.
  ServedModel served_model();
  // One line for the log: folder, merged adapter, sizes, device, cache bytes, chat template.
  std::string summary() const;

 private:
  ModelBackendOptions options_;
  DecodeModel model_;  // the resolved folder, its weights (on the device) and tokenizer
  std::optional<ChatTemplate> chat_template_;
  std::mutex chat_template_mutex_;  // rendering is not promised to be thread-safe
  std::unique_ptr<ModelDecodeEngine> engine_;
  int64_t max_seq_len_ = 0;
};

}  // namespace zerotune::serve
