#include "model/generate.h"

#include "core/timer.h"

namespace zerotune {

namespace {

int64_t capacity_for(const LlamaParams& params, int64_t capacity) {
  const int64_t max_positions = params.config().max_position_embeddings;
  const int64_t chosen = capacity == 0 ? max_positions : capacity;
  ZT_CHECK(chosen > 0 && chosen <= max_positions, "LlamaGenerator: capacity ", chosen,
           " must be in [1, max_position_embeddings = ", max_positions, "]");
  return chosen;
}

}  // namespace

LlamaGenerator::LlamaGenerator(const LlamaParams& params, int64_t capacity)
    : batch_(params, 1, capacity_for(params, capacity)) {}

void LlamaGenerator::reset() {
  if (slot_ >= 0) batch_.finish(slot_);
  slot_ = -1;
}

std::vector<float> LlamaGenerator::forward_positions(const std::vector<int32_t>& ids,
                                                     int64_t start_pos) {
  const LlamaConfig& c = config();
  const int64_t n = static_cast<int64_t>(ids.size()), cached = cached_length();
  ZT_CHECK(n > 0, "LlamaGenerator::forward_positions: no ids");
  ZT_CHECK(start_pos >= 0 && start_pos <= cached, "LlamaGenerator::forward_positions: start_pos ",
           start_pos, " must be in [0, ", cached, "] (the cached positions)");
  ZT_CHECK(start_pos + n <= capacity(), "LlamaGenerator::forward_positions: positions [", start_pos,
           ", ", start_pos + n, ") exceed the cache capacity ", capacity());
  for (int64_t i = 0; i < n; ++i) {
    const int32_t id = ids[static_cast<size_t>(i)];
    ZT_CHECK(id >= 0 && id < c.vocab_size, "LlamaGenerator::forward_positions: token id ", id,
             " at index ", i, " is outside the vocabulary [0, ", c.vocab_size, ")");
  }
  std::vector<float> logits(static_cast<size_t>(c.vocab_size));
  if (start_pos == 0) {  // a new sequence (cached_length() is 0 until the first call)
    reset();
    slot_ = batch_.start(ids, logits.data());
    return logits;
  }
  if (n == 1 && start_pos == cached) {
    batch_.step({slot_}, ids, logits.data());
  } else {
    batch_.extend(slot_, ids, start_pos, logits.data());
  }
  return logits;
}

const char* stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::eos:
      return "eos";
    case StopReason::stop:
      return "stop";
    case StopReason::length:
      return "length";
  }
  return "?";
}

GenerateResult generate(LlamaGenerator& generator, const std::vector<int32_t>& prompt,
                        const GenerateOptions& options) {
  const int64_t prompt_len = static_cast<int64_t>(prompt.size());
  ZT_CHECK(prompt_len > 0, "generate: the prompt has no tokens");
  ZT_CHECK(options.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0, got ",
           options.max_new_tokens);
  ZT_CHECK(prompt_len + options.max_new_tokens <= generator.capacity(), "generate: the prompt's ",
           prompt_len, " tokens + ", options.max_new_tokens,
           " new tokens = ", prompt_len + options.max_new_tokens,
           " positions exceed the generator's capacity ", generator.capacity(),
           " (max_position_embeddings ", generator.config().max_position_embeddings, ")");
  Sampler sampler(options.sampling);
  GenerateResult result;
  generator.reset();
  if (options.max_new_tokens == 0) return result;
  const int64_t vocab = generator.config().vocab_size;
  const Timer timer;
  std::vector<float> logits = generator.forward_positions(prompt, 0);
  for (int64_t pos = prompt_len;; ++pos) {
    const int32_t next = sampler.next(logits.data(), vocab);
    result.new_tokens.push_back(next);
    if (next == options.eos_id) {
      result.stopped = StopReason::eos;
      break;
    }
    if (next == options.stop_id) {
      result.stopped = StopReason::stop;
      break;
    }
    if (static_cast<int64_t>(result.new_tokens.size()) == options.max_new_tokens) {
      result.stopped = StopReason::length;
      break;
    }
    logits = generator.forward_positions({next}, pos);
  }
  result.seconds = timer.seconds();
  return result;
}

GenerateResult generate_greedy(LlamaGenerator& generator, const std::vector<int32_t>& prompt,
                               const GenerateOptions& options) {
  GenerateOptions greedy = options;
  greedy.sampling = SamplingParams{};
  return generate(generator, prompt, greedy);
}

}  // namespace zerotune
