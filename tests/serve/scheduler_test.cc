// The scheduler against a fake engine whose greedy answers are known without it: answers equal
// each request's answer alone whatever runs beside it; requests submitted together share decode
// steps; requests beyond the slots queue; a new request joins a running batch; cancelled and
// finished sequences free their slots at once; an engine error ends only the sequences it hit.
#include "serve/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "fake_engine.h"

namespace zerotune::serve {
namespace {

using testing::angle_text;
using testing::FakeEngine;
using testing::greedy_chooser;

constexpr int64_t kVocab = 50;

GenerationRequest request(std::vector<int32_t> prompt, int64_t max_new_tokens) {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.max_new_tokens = max_new_tokens;
  return r;
}

struct Answer {
  std::string text;
  int64_t tokens = 0;
  FinishReason finished = FinishReason::none;
  std::string error;
};

// Collects every choice's updates until the stream is done (bounded: 20 s).
std::vector<Answer> collect(RequestStream& stream, size_t choices) {
  std::vector<Answer> answers(choices);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!stream.done() && std::chrono::steady_clock::now() < deadline) {
    for (const ChoiceUpdate& u : stream.take(std::chrono::milliseconds(50))) {
      Answer& a = answers.at(u.index);
      a.text += u.text;
      a.tokens = u.completion_tokens;
      if (u.finished != FinishReason::none) {
        a.finished = u.finished;
        a.error = u.error;
      }
    }
  }
  EXPECT_TRUE(stream.done()) << "request did not finish within 20 s";
  return answers;
}

std::vector<int32_t> prompt_of(int32_t seed, size_t length) {
  std::vector<int32_t> p;
  for (size_t i = 0; i < length; ++i)
    p.push_back(static_cast<int32_t>((seed * 13 + i * 7) % kVocab));
  return p;
}

TEST(Scheduler, RequestsSubmittedTogetherShareDecodeSteps) {
  FakeEngine engine(8, 64, kVocab);
  Scheduler scheduler(engine, angle_text, greedy_chooser);
  std::vector<GenerationRequest> choices;
  for (int32_t i = 0; i < 8; ++i) choices.push_back(request(prompt_of(i, 3 + i), 10));
  const auto stream = scheduler.submit(choices);
  const std::vector<Answer> answers = collect(*stream, 8);
  for (int32_t i = 0; i < 8; ++i) {
    EXPECT_EQ(answers[i].text, angle_text(FakeEngine::greedy(prompt_of(i, 3 + i), 10, kVocab)));
    EXPECT_EQ(answers[i].tokens, 10);
    EXPECT_EQ(answers[i].finished, FinishReason::length);
  }
  // The first token comes from each prefill, the other 9 from 9 steps of all 8 sequences.
  EXPECT_EQ(engine.recorded_batch_sizes(), std::vector<int64_t>(9, 8));
  const SchedulerStats stats = scheduler.stats();
  EXPECT_EQ(stats.prefills, 8);
  EXPECT_EQ(stats.decode_steps, 9);
  EXPECT_EQ(stats.largest_batch, 8);
  EXPECT_EQ(engine.free_slots(), 8);
}

TEST(Scheduler, RequestsBeyondTheSlotsQueueAndAllFinish) {
  FakeEngine engine(3, 64, kVocab);
  Scheduler scheduler(engine, angle_text, greedy_chooser);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int32_t i = 0; i < 7; ++i) {
    streams.push_back(scheduler.submit({request(prompt_of(i, 2 + i % 3), 4 + i)}));
  }
  for (int32_t i = 0; i < 7; ++i) {
    const Answer a = collect(*streams[i], 1)[0];
    EXPECT_EQ(a.text, angle_text(FakeEngine::greedy(prompt_of(i, 2 + i % 3), 4 + i, kVocab)));
  }
  const std::vector<int64_t> sizes = engine.recorded_batch_sizes();
  EXPECT_LE(*std::max_element(sizes.begin(), sizes.end()), 3);
  EXPECT_EQ(scheduler.stats().prefills, 7);
  EXPECT_EQ(engine.free_slots(), 3);
}

TEST(Scheduler, NewRequestJoinsARunningBatch) {
  FakeEngine engine(4, 512, kVocab);
  engine.step_delay_ms = 2;
  Scheduler scheduler(engine, angle_text, greedy_chooser);
  const auto first = scheduler.submit({request(prompt_of(1, 4), 200)});
  // Wait until the first request is decoding, then add a second.
  std::string first_text;
  while (first_text.size() < 20) {
    for (const ChoiceUpdate& u : first->take(std::chrono::milliseconds(50))) first_text += u.text;
  }
  const auto second = scheduler.submit({request(prompt_of(2, 5), 20)});
  const Answer b = collect(*second, 1)[0];
  EXPECT_EQ(b.text, angle_text(FakeEngine::greedy(prompt_of(2, 5), 20, kVocab)));
  EXPECT_FALSE(first->done()) << "the second request should finish while the first still runs";
  Answer a = collect(*first, 1)[0];
  EXPECT_EQ(first_text + a.text, angle_text(FakeEngine::greedy(prompt_of(1, 4), 200, kVocab)));
  const std::vector<int64_t> sizes = engine.recorded_batch_sizes();
  EXPECT_EQ(std::count(sizes.begin(), sizes.end(), 2), 19);  // the second's 19 decode steps
}

TEST(Scheduler, EndOfTextAndStopStringsEndASequenceAndLeaveTheirTextOut) {
  FakeEngine engine(2, 64, kVocab);
  Scheduler scheduler(engine, angle_text, greedy_chooser);
  const std::vector<int32_t> prompt = prompt_of(3, 4);
  const std::vector<int32_t> alone = FakeEngine::greedy(prompt, 12, kVocab);

  GenerationRequest eos = request(prompt, 12);
  eos.eos_id = alone[5];
  const size_t eos_at = std::find(alone.begin(), alone.end(), alone[5]) - alone.begin();
  GenerationRequest stop = request(prompt, 12);
  stop.stop = {angle_text({alone[3], alone[4]})};
  const auto stream = scheduler.submit({eos, stop});
  const std::vector<Answer> answers = collect(*stream, 2);

  EXPECT_EQ(answers[0].finished, FinishReason::stop);
  EXPECT_EQ(answers[0].text, angle_text({alone.begin(), alone.begin() + eos_at}));
  EXPECT_EQ(answers[0].tokens, static_cast<int64_t>(eos_at) + 1);  // the end-of-text token counts
  EXPECT_EQ(answers[1].finished, FinishReason::stop);
  EXPECT_EQ(answers[1].text, angle_text({alone.begin(), alone.begin() + 3}));
  EXPECT_EQ(answers[1].tokens, 5);
  EXPECT_EQ(engine.free_slots(), 2);
}

TEST(Scheduler, ContextLimitEndsWithLength) {
  FakeEngine engine(1, 10, kVocab);
  Scheduler scheduler(engine, angle_text, greedy_chooser);
  const auto stream = scheduler.submit({request(prompt_of(4, 6), 100)});
  const Answer a = collect(*stream, 1)[0];
  EXPECT_EQ(a.finished, FinishReason::length);
  EXPECT_EQ(a.tokens, 4);  // prompt + completion fill the 10 positions
  EXPECT_EQ(a.text, angle_text(FakeEngine::greedy(prompt_of(4, 6), 4, kVocab)));
}

TEST(Scheduler, CancelledRequestFreesItsSlotAndOthersContinue) {
  FakeEngine engine(1, 4096, kVocab);
  engine.step_delay_ms = 1;
  Scheduler scheduler(engine, angle_text, greedy_chooser);
  const auto endless = scheduler.submit({request(prompt_of(5, 3), 4000)});
  const auto queued = scheduler.submit({request(prompt_of(6, 3), 5)});
  while (endless->take(std::chrono::milliseconds(50)).empty()) {
  }
  EXPECT_FALSE(queued->done());
  endless->cancel();
  const Answer q = collect(*queued, 1)[0];
  EXPECT_EQ(q.text, angle_text(FakeEngine::greedy(prompt_of(6, 3), 5, kVocab)));
  const Answer e = collect(*endless, 1)[0];
  EXPECT_EQ(e.finished, FinishReason::cancelled);
  EXPECT_LT(e.tokens, 4000);
  EXPECT_EQ(engine.free_slots(), 1);
}

TEST(Scheduler, EngineErrorEndsTheRunningSequencesOnly) {
  FakeEngine engine(2, 64, kVocab);
  Scheduler scheduler(engine, angle_text, greedy_chooser);
  engine.fail_next_step = true;
  const auto failed = scheduler.submit({request(prompt_of(7, 3), 5)});
  const Answer f = collect(*failed, 1)[0];
  EXPECT_EQ(f.finished, FinishReason::error);
  EXPECT_NE(f.error.find("step failed"), std::string::npos) << f.error;
  EXPECT_EQ(engine.free_slots(), 2);
  const auto after = scheduler.submit({request(prompt_of(8, 3), 5)});
  EXPECT_EQ(collect(*after, 1)[0].text, angle_text(FakeEngine::greedy(prompt_of(8, 3), 5, kVocab)));
}

TEST(Scheduler, StopEndsQueuedAndRunningSequencesWithAnError) {
  FakeEngine engine(1, 4096, kVocab);
  engine.step_delay_ms = 1;
  Scheduler scheduler(engine, angle_text, greedy_chooser);
  const auto running = scheduler.submit({request(prompt_of(1, 3), 4000)});
  const auto queued = scheduler.submit({request(prompt_of(2, 3), 4000)});
  scheduler.stop();
  EXPECT_EQ(collect(*running, 1)[0].finished, FinishReason::error);
  EXPECT_EQ(collect(*queued, 1)[0].finished, FinishReason::error);
  const auto late = scheduler.submit({request(prompt_of(3, 3), 4)});
  EXPECT_EQ(collect(*late, 1)[0].finished, FinishReason::error);
}

}  // namespace
}  // namespace zerotune::serve
