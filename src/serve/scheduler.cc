#include "serve/scheduler.h"

#include <omp.h>

#include <algorithm>
#include <exception>
#include <utility>

#include "core/check.h"

namespace zerotune::serve {

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::none:
      return "none";
    case FinishReason::stop:
      return "stop";
    case FinishReason::length:
      return "length";
    case FinishReason::cancelled:
      return "cancelled";
    case FinishReason::error:
      return "error";
  }
  return "?";
}

// ---- RequestStream -----------------------------------------------------------------------------

RequestStream::RequestStream(size_t choices) : choices_(choices) {
  for (size_t i = 0; i < choices; ++i) choices_[i].pending.index = i;
}

std::vector<ChoiceUpdate> RequestStream::take(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  news_.wait_for(lock, timeout, [&] {
    return std::any_of(choices_.begin(), choices_.end(),
                       [](const Choice& c) { return c.has_news; });
  });
  std::vector<ChoiceUpdate> updates;
  for (Choice& choice : choices_) {
    if (!choice.has_news) continue;
    updates.push_back(std::move(choice.pending));
    choice.pending = ChoiceUpdate{};
    choice.pending.index = updates.back().index;
    choice.pending.completion_tokens = updates.back().completion_tokens;
    choice.has_news = false;
    if (updates.back().finished != FinishReason::none) choice.end_taken = true;
  }
  return updates;
}

bool RequestStream::done() const {
  std::lock_guard lock(mutex_);
  return std::all_of(choices_.begin(), choices_.end(), [](const Choice& c) { return c.end_taken; });
}

void RequestStream::publish(size_t index, const std::string& text, int64_t tokens,
                            FinishReason finished, const std::string& error) {
  {
    std::lock_guard lock(mutex_);
    Choice& choice = choices_.at(index);
    if (choice.finished) return;
    choice.pending.text += text;
    choice.pending.completion_tokens = tokens;
    choice.pending.finished = finished;
    choice.pending.error = error;
    choice.finished = finished != FinishReason::none;
    choice.has_news = true;
  }
  news_.notify_all();
}

// ---- Scheduler ---------------------------------------------------------------------------------

struct Scheduler::Sequence {
  Sequence(std::shared_ptr<RequestStream> stream_in, size_t index_in, GenerationRequest request_in,
           const DecodeTokens& decode)
      : stream(std::move(stream_in)),
        index(index_in),
        request(std::move(request_in)),
        text(decode, request.stop) {}

  std::shared_ptr<RequestStream> stream;
  size_t index;  // the choice within the request
  GenerationRequest request;
  CompletionText text;
  ChooseToken choose;
  int64_t slot = -1;
  int32_t last_token = -1;
  int64_t generated = 0;
};

Scheduler::Scheduler(DecodeEngine& engine, DecodeTokens decode, MakeChooser make_chooser,
                     SchedulerOptions options)
    : engine_(engine),
      decode_(std::move(decode)),
      make_chooser_(std::move(make_chooser)),
      options_(options),
      logits_(static_cast<size_t>(engine.max_batch() * engine.vocab_size())) {
  thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
  stop();
}

std::shared_ptr<RequestStream> Scheduler::submit(std::vector<GenerationRequest> choices) {
  auto stream = std::make_shared<RequestStream>(choices.size());
  {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < choices.size(); ++i) {
      auto sequence = std::make_unique<Sequence>(stream, i, std::move(choices[i]), decode_);
      if (stopping_) {
        stream->publish(i, {}, 0, FinishReason::error, "the server is shutting down");
      } else {
        incoming_.push_back(std::move(sequence));
      }
    }
  }
  wake_.notify_one();
  return stream;
}

void Scheduler::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(stats_mutex_);
  return stats_;
}

void Scheduler::run() {
  // OpenMP's thread count is a per-thread setting: set it on the thread that runs the model.
  if (options_.threads > 0) omp_set_num_threads(options_.threads);
  while (true) {
    {
      std::unique_lock lock(mutex_);
      if (active_.empty() && waiting_.empty()) {
        wake_.wait(lock, [&] { return stopping_ || !incoming_.empty(); });
      }
      if (stopping_) break;
      take_incoming(lock);
    }
    drop_cancelled();
    admit_waiting();
    count_queues();
    if (!active_.empty()) decode_step();
    count_queues();
  }
  std::unique_lock lock(mutex_);
  take_incoming(lock);
  for (auto& sequence : active_) end_with_error(*sequence, "the server is shutting down");
  for (auto& sequence : waiting_) end_with_error(*sequence, "the server is shutting down");
  active_.clear();
  waiting_.clear();
  lock.unlock();
  count_queues();
}

void Scheduler::count_queues() {
  size_t incoming = 0;
  {
    std::lock_guard lock(mutex_);
    incoming = incoming_.size();
  }
  std::lock_guard lock(stats_mutex_);
  stats_.running = static_cast<int64_t>(active_.size());
  stats_.waiting = static_cast<int64_t>(waiting_.size() + incoming);
}

void Scheduler::take_incoming(std::unique_lock<std::mutex>&) {
  while (!incoming_.empty()) {
    waiting_.push_back(std::move(incoming_.front()));
    incoming_.pop_front();
  }
}

void Scheduler::drop_cancelled() {
  const auto cancelled = [&](std::unique_ptr<Sequence>& sequence) {
    if (!sequence->stream->cancelled()) return false;
    release_slot(*sequence);
    sequence->stream->publish(sequence->index, {}, sequence->generated, FinishReason::cancelled);
    std::lock_guard lock(stats_mutex_);
    ++stats_.cancelled;
    return true;
  };
  std::erase_if(active_, cancelled);
  std::erase_if(waiting_, cancelled);
}

void Scheduler::admit_waiting() {
  while (!waiting_.empty() && engine_.free_slots() > 0) {
    std::unique_ptr<Sequence> sequence = std::move(waiting_.front());
    waiting_.pop_front();
    try {
      sequence->choose = make_chooser_(sequence->request.sampling);
      sequence->slot = engine_.start(sequence->request.prompt, logits_.data());
      {
        std::lock_guard lock(stats_mutex_);
        ++stats_.prefills;
      }
      const int32_t token = sequence->choose(logits_.data(), engine_.vocab_size());
      if (accept_token(*sequence, token)) continue;
    } catch (const std::exception& e) {
      end_with_error(*sequence, e.what());
      continue;
    }
    active_.push_back(std::move(sequence));
  }
}

void Scheduler::decode_step() {
  std::vector<int64_t> slots;
  std::vector<int32_t> tokens;
  for (const auto& sequence : active_) {
    slots.push_back(sequence->slot);
    tokens.push_back(sequence->last_token);
  }
  const int64_t vocab = engine_.vocab_size();
  try {
    engine_.step(slots, tokens, logits_.data());  // logits_: [n, V]
  } catch (const std::exception& e) {
    for (auto& sequence : active_) end_with_error(*sequence, e.what());
    active_.clear();
    return;
  }
  {
    std::lock_guard lock(stats_mutex_);
    const auto n = static_cast<int64_t>(slots.size());
    ++stats_.decode_steps;
    stats_.decoded_tokens += n;
    stats_.largest_batch = std::max(stats_.largest_batch, n);
  }
  for (size_t i = 0; i < active_.size(); ++i) {
    Sequence& sequence = *active_[i];
    try {
      const int32_t token =
          sequence.choose(logits_.data() + static_cast<int64_t>(i) * vocab, vocab);
      if (accept_token(sequence, token)) sequence.slot = -1;
    } catch (const std::exception& e) {
      end_with_error(sequence, e.what());
    }
  }
  std::erase_if(active_, [](const std::unique_ptr<Sequence>& s) { return s->slot < 0; });
}

bool Scheduler::accept_token(Sequence& sequence, int32_t token) {
  const GenerationRequest& request = sequence.request;
  ++sequence.generated;
  sequence.last_token = token;
  {
    std::lock_guard lock(stats_mutex_);
    ++stats_.generated_tokens;
  }
  std::string piece;
  FinishReason finished = FinishReason::none;
  if (token == request.eos_id) {
    piece = sequence.text.finish();
    finished = FinishReason::stop;
  } else {
    piece = sequence.text.add(token);
    const auto length = static_cast<int64_t>(request.prompt.size()) + sequence.generated;
    if (sequence.text.stopped()) {
      finished = FinishReason::stop;
    } else if (sequence.generated >= request.max_new_tokens || length >= engine_.max_seq_len()) {
      piece += sequence.text.finish();  // may still find a stop string in held-back text
      finished = sequence.text.stopped() ? FinishReason::stop : FinishReason::length;
    }
  }
  if (finished != FinishReason::none) release_slot(sequence);
  sequence.stream->publish(sequence.index, piece, sequence.generated, finished);
  return finished != FinishReason::none;
}

void Scheduler::end_with_error(Sequence& sequence, const std::string& message) {
  try {
    release_slot(sequence);
  } catch (const std::exception&) {
    // The engine failed already; the sequence is reported either way.
  }
  sequence.slot = -1;
  sequence.stream->publish(sequence.index, {}, sequence.generated, FinishReason::error, message);
}

void Scheduler::release_slot(Sequence& sequence) {
  if (sequence.slot < 0) return;
  const int64_t slot = sequence.slot;
  sequence.slot = -1;
  engine_.finish(slot);
}

}  // namespace zerotune::serve
