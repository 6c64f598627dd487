// A decode engine for scheduler and server tests: logits follow a fixed rule of each slot's own
// tokens (so answers are batch-invariant by construction and computable without the engine),
// every call is recorded, and a step can be made slow or made to fail.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "serve/decode_engine.h"

namespace zerotune::serve::testing {

class FakeEngine : public DecodeEngine {
 public:
  FakeEngine(int64_t max_batch, int64_t max_seq_len, int64_t vocab)
      : max_batch_(max_batch), max_seq_len_(max_seq_len), vocab_(vocab), slots_(max_batch) {}

  // The token the rule gives after `history` (prompt + generated so far).
  static int32_t next_token(const std::vector<int32_t>& history, int64_t vocab) {
    int64_t h = 17;
    for (const int32_t id : history) h = (h * 31 + id) % 1000003;
    return static_cast<int32_t>((h + static_cast<int64_t>(history.size())) % vocab);
  }
  // The greedy continuation of `prompt` under the rule: what a request alone must produce.
  static std::vector<int32_t> greedy(std::vector<int32_t> prompt, int64_t n, int64_t vocab) {
    std::vector<int32_t> out;
    for (int64_t i = 0; i < n; ++i) {
      out.push_back(next_token(prompt, vocab));
      prompt.push_back(out.back());
    }
    return out;
  }

  int64_t vocab_size() const override { return vocab_; }
  int64_t max_batch() const override { return max_batch_; }
  int64_t max_seq_len() const override { return max_seq_len_; }
  int64_t free_slots() const override {
    std::lock_guard lock(mutex_);
    int64_t n = 0;
    for (const Slot& s : slots_) n += s.used ? 0 : 1;
    return n;
  }

  int64_t start(const std::vector<int32_t>& prompt, float* logits) override {
    std::lock_guard lock(mutex_);
    for (size_t s = 0; s < slots_.size(); ++s) {
      if (slots_[s].used) continue;
      if (prompt.empty() || static_cast<int64_t>(prompt.size()) > max_seq_len_) {
        throw std::runtime_error("fake engine: bad prompt length");
      }
      slots_[s] = Slot{true, prompt};
      write_logits(slots_[s].history, logits);
      return static_cast<int64_t>(s);
    }
    throw std::runtime_error("fake engine: no free slot");
  }

  void step(const std::vector<int64_t>& slots, const std::vector<int32_t>& tokens,
            float* logits) override {
    if (step_delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(step_delay_ms));
    std::lock_guard lock(mutex_);
    if (fail_next_step.exchange(false)) throw std::runtime_error("fake engine: step failed");
    batch_sizes.push_back(static_cast<int64_t>(slots.size()));
    for (size_t i = 0; i < slots.size(); ++i) {
      Slot& slot = slots_.at(static_cast<size_t>(slots[i]));
      if (!slot.used) throw std::runtime_error("fake engine: step on a free slot");
      if (static_cast<int64_t>(slot.history.size()) >= max_seq_len_) {
        throw std::runtime_error("fake engine: slot full");
      }
      slot.history.push_back(tokens[i]);
      write_logits(slot.history, logits + static_cast<int64_t>(i) * vocab_);
    }
  }

  void finish(int64_t slot) override {
    std::lock_guard lock(mutex_);
    if (!slots_.at(static_cast<size_t>(slot)).used) throw std::runtime_error("double finish");
    slots_[static_cast<size_t>(slot)] = Slot{};
  }

  std::vector<int64_t> recorded_batch_sizes() const {
    std::lock_guard lock(mutex_);
    return batch_sizes;
  }

  std::atomic<int> step_delay_ms{0};
  std::atomic<bool> fail_next_step{false};

 private:
  struct Slot {
    bool used = false;
    std::vector<int32_t> history;
  };
  void write_logits(const std::vector<int32_t>& history, float* logits) const {
    const int32_t best = next_token(history, vocab_);
    for (int64_t v = 0; v < vocab_; ++v) logits[v] = -static_cast<float>((v * 7) % 13) / 13.0f;
    logits[best] = 1.0f;
  }

  int64_t max_batch_, max_seq_len_, vocab_;
  mutable std::mutex mutex_;
  std::vector<Slot> slots_;
  std::vector<int64_t> batch_sizes;
};

// Greedy choice (largest logit, lowest id on ties).
inline ChooseToken greedy_chooser(const SamplingParams&) {
  return [](const float* logits, int64_t vocab) {
    int32_t best = 0;
    for (int64_t v = 1; v < vocab; ++v) {
      if (logits[v] > logits[best]) best = static_cast<int32_t>(v);
    }
    return best;
  };
}

// Text of ids: "<id>" per token, e.g. {3, 14} -> "<3><14>".
inline std::string angle_text(const std::vector<int32_t>& ids) {
  std::string out;
  for (const int32_t id : ids) out += "<" + std::to_string(id) + ">";
  return out;
}

}  // namespace zerotune::serve::testing
