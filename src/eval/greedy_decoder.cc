#include "eval/greedy_decoder.h"

#include <algorithm>

#include "core/check.h"
#include "model/batched_generator.h"
#include "model/sampling.h"

namespace zerotune {
namespace {

struct Running {
  size_t index = 0;  // the prompt's
  int64_t slot = -1;
  Completion completion;
};

// The earliest position of any stop string in `text`, or npos.
size_t first_stop(const std::string& text, const std::vector<std::string>& stops) {
  size_t first = std::string::npos;
  for (const std::string& stop : stops) first = std::min(first, text.find(stop));
  return first;
}

class GreedyRun {
 public:
  GreedyRun(const GreedyOptions& options, const DecodeIds& decode, int64_t vocab)
      : options_(options), decode_(decode), vocab_(vocab) {}

  // Appends the largest logit's token to r; true when r has ended (its text then final).
  bool advance(Running& r, const float* logits) const {
    Completion& c = r.completion;
    const int32_t next = argmax_token(logits, vocab_);
    c.tokens.push_back(next);
    const bool stop_id = std::find(options_.stop_ids.begin(), options_.stop_ids.end(), next) !=
                         options_.stop_ids.end();
    if (next == options_.eos_id || stop_id) {
      c.stopped = next == options_.eos_id ? StopReason::eos : StopReason::stop;
      c.text = decode_(std::vector<int32_t>(c.tokens.begin(), c.tokens.end() - 1));
      return true;
    }
    const bool length = static_cast<int64_t>(c.tokens.size()) >= options_.max_new_tokens;
    if (options_.stop_strings.empty() && !length) return false;
    c.text = decode_(c.tokens);
    if (const size_t cut = first_stop(c.text, options_.stop_strings); cut != std::string::npos) {
      c.text.resize(cut);
      c.stopped = StopReason::stop;
      return true;
    }
    c.stopped = StopReason::length;
    return length;
  }

 private:
  const GreedyOptions& options_;
  const DecodeIds& decode_;
  int64_t vocab_;
};

// The positions the cache needs: the longest prompt plus the new tokens, within the model's limit.
int64_t cache_positions(const LlamaParams& params, const std::vector<std::vector<int32_t>>& prompts,
                        int64_t max_new_tokens) {
  const int64_t limit = params.config().max_position_embeddings;
  int64_t longest = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const int64_t p = static_cast<int64_t>(prompts[i].size());
    ZT_CHECK(p > 0, "prompt ", i, " has no tokens");
    ZT_CHECK(p + max_new_tokens <= limit, "prompt ", i, " has ", p, " tokens; with ",
             max_new_tokens, " new tokens that is ", p + max_new_tokens,
             " positions, beyond the model's max_position_embeddings ", limit,
             " (lower --max-new-tokens or --num-fewshot)");
    longest = std::max(longest, p);
  }
  return longest + max_new_tokens;
}

}  // namespace

std::vector<Completion> complete_greedy(const LlamaParams& params,
                                        const std::vector<std::vector<int32_t>>& prompts,
                                        const GreedyOptions& options, const DecodeIds& decode,
                                        const OnCompletion& on_completion) {
  ZT_CHECK(options.batch_size >= 1, "complete_greedy: batch_size must be >= 1, got ",
           options.batch_size);
  ZT_CHECK(options.max_new_tokens >= 0, "complete_greedy: max_new_tokens must be >= 0, got ",
           options.max_new_tokens);
  std::vector<Completion> done(prompts.size());
  const int64_t positions = cache_positions(params, prompts, options.max_new_tokens);
  if (prompts.empty() || options.max_new_tokens == 0) {
    for (size_t i = 0; i < prompts.size(); ++i) {
      if (on_completion) on_completion(i, done[i]);
    }
    return done;
  }
  const int64_t slots = std::min<int64_t>(options.batch_size, static_cast<int64_t>(prompts.size()));
  BatchedGenerator engine(params, slots, positions);
  const int64_t vocab = engine.config().vocab_size;
  const GreedyRun run(options, decode, vocab);
  std::vector<float> logits(static_cast<size_t>(slots * vocab));  // [slots, V]
  std::vector<Running> running;
  auto finish = [&](Running& r) {
    engine.finish(r.slot);
    done[r.index] = std::move(r.completion);
    if (on_completion) on_completion(r.index, done[r.index]);
  };
  size_t next = 0;
  while (next < prompts.size() || !running.empty()) {
    while (next < prompts.size() && engine.free_slots() > 0) {
      Running r{next, engine.start(prompts[next], logits.data()), {}};
      ++next;
      if (run.advance(r, logits.data())) {
        finish(r);
      } else {
        running.push_back(std::move(r));
      }
    }
    if (running.empty()) continue;
    std::vector<int64_t> step_slots;
    std::vector<int32_t> step_tokens;
    for (const Running& r : running) {
      step_slots.push_back(r.slot);
      step_tokens.push_back(r.completion.tokens.back());
    }
    engine.step(step_slots, step_tokens, logits.data());
    std::vector<Running> still;
    for (size_t i = 0; i < running.size(); ++i) {
      if (run.advance(running[i], logits.data() + static_cast<int64_t>(i) * vocab)) {
        finish(running[i]);
      } else {
        still.push_back(std::move(running[i]));
      }
    }
    running = std::move(still);
  }
  return done;
}

}  // namespace zerotune
