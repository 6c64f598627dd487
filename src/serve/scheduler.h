// Continuous batching: one thread owns the decode engine and runs every active sequence's next
// token as one batch per step. Requests from the HTTP handler threads wait in a queue; between
// two decode steps the scheduler takes as many of them as there are free slots and runs their
// prefill, so a new request joins the running batch at the next step. A sequence that ends (end
// of text, stop string, token limit) or whose client has gone frees its slot before the next
// step. Tokens go back to the handler as final text through the request's RequestStream.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "model/sampling.h"
#include "serve/completion_text.h"
#include "serve/decode_engine.h"

namespace zerotune::serve {

enum class FinishReason : uint8_t { none, stop, length, cancelled, error };
const char* finish_reason_name(FinishReason reason);  // "stop", "length", "cancelled", "error"

// One sequence to generate.
struct GenerationRequest {
  std::vector<int32_t> prompt;  // [P] ids, 1 <= P <= max_seq_len
  int64_t max_new_tokens = 16;  // >= 1
  SamplingParams sampling;
  std::vector<std::string> stop;  // generation ends before the first of these; not in the text
  int32_t eos_id = -1;            // generation ends at this token; not in the text (-1: none)
};

// News about one sequence of a request since the last take().
struct ChoiceUpdate {
  size_t index = 0;
  std::string text;               // text that became final
  int64_t completion_tokens = 0;  // tokens generated so far (an end-of-text token included)
  FinishReason finished = FinishReason::none;  // set once, in the update that ends the sequence
  std::string error;                           // with FinishReason::error
};

// The channel between one HTTP request (its handler thread) and the scheduler: its sequences'
// text as it becomes final. Shared by both sides.
class RequestStream {
 public:
  explicit RequestStream(size_t choices);

  // Waits up to `timeout` for news and returns it, one update per sequence that has any.
  std::vector<ChoiceUpdate> take(std::chrono::milliseconds timeout);
  // True when every sequence has finished and take() has returned its last update.
  bool done() const;
  // The client has gone: the scheduler drops the sequences before its next step.
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

  // Scheduler side: appends `text` to sequence `index` and records its progress.
  void publish(size_t index, const std::string& text, int64_t tokens, FinishReason finished,
               const std::string& error = {});

 private:
  struct Choice {
    ChoiceUpdate pending;
    bool has_news = false;
    bool finished = false;
    bool end_taken = false;
  };
  mutable std::mutex mutex_;
  std::condition_variable news_;
  std::vector<Choice> choices_;
  std::atomic<bool> cancelled_{false};
};

struct SchedulerOptions {
  int threads = 0;  // OpenMP/BLAS threads of the scheduler thread (0: OpenMP's default)
};

// Counters for tests and benchmarks.
struct SchedulerStats {
  int64_t running = 0;         // sequences holding a slot
  int64_t waiting = 0;         // sequences queued for a slot
  int64_t prefills = 0;        // sequences started
  int64_t decode_steps = 0;    // engine.step calls
  int64_t decoded_tokens = 0;  // rows over all steps (decoded_tokens / decode_steps: mean batch)
  int64_t largest_batch = 0;
  int64_t generated_tokens = 0;  // tokens chosen, over all sequences
  int64_t cancelled = 0;         // sequences dropped because their client went away
};

class Scheduler {
 public:
  // `engine` must outlive the scheduler. `decode` turns a sequence's tokens into text;
  // `make_chooser` gives each sequence its sampler. Starts the scheduler thread.
  Scheduler(DecodeEngine& engine, DecodeTokens decode, MakeChooser make_chooser,
            SchedulerOptions options = {});
  ~Scheduler();  // stop()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues the sequences of one request (one choice each); they start as slots free up.
  std::shared_ptr<RequestStream> submit(std::vector<GenerationRequest> choices);
  // Ends the scheduler thread; sequences still queued or running end with an error.
  void stop();

  SchedulerStats stats() const;
  int64_t max_seq_len() const { return engine_.max_seq_len(); }

 private:
  struct Sequence;
  void run();
  void take_incoming(std::unique_lock<std::mutex>& lock);
  void drop_cancelled();
  void admit_waiting();
  void decode_step();
  // Feeds one new token to the sequence's text; true when the sequence has ended.
  bool accept_token(Sequence& sequence, int32_t token);
  void end_with_error(Sequence& sequence, const std::string& message);
  void release_slot(Sequence& sequence);
  void count_queues();

  DecodeEngine& engine_;
  DecodeTokens decode_;
  MakeChooser make_chooser_;
  SchedulerOptions options_;

  std::mutex mutex_;  // guards incoming_ and stopping_
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Sequence>> incoming_;
  bool stopping_ = false;

  // Owned by the scheduler thread.
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::vector<std::unique_ptr<Sequence>> active_;
  std::vector<float> logits_;  // [max_batch, V]

  mutable std::mutex stats_mutex_;
  SchedulerStats stats_;
  std::thread thread_;
};

}  // namespace zerotune::serve
