// The examples an evaluation decodes: a prompt, the reference answer, and where the row came from.
// Two formats:
//  - seed: the fine-tuning format ({"input": "<START_Q>q<END_Q><START_A>a<END_A>"}); the prompt is
//    the text up to and including <START_A>, the reference the answer after it;
//  - lm-eval: GSM8K as published ({"question", "answer"}), prompted as lm-evaluation-harness's
//    gsm8k task: K solved examples of the few-shot file, then the question, each as
//    "Question: {q}\nAnswer:" (+ " {a}" for the solved ones), separated by a blank line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace zerotune {

enum class EvalFormat : uint8_t { seed, lm_eval };

struct EvalItem {
  int64_t index = 0;  // 0-based row among the file's rows
  std::string where;  // "path:line" of the row
  std::string prompt;
  std::string reference;  // the reference answer text as written in the file
  // The normalised number after the reference's last "####"; nothing when it has none (the row is
  // counted as skipped, not scored).
  std::optional<std::string> reference_number;
};

// The first `limit` rows (all with limit < 0) of a seed-format file. Errors name path:line: a row
// without <START_A>, an answer without "####", a file without rows.
std::vector<EvalItem> read_seed_items(const std::string& path, int64_t limit);

struct FewShot {
  std::string path;  // GSM8K train split (question/answer JSONL); empty with count 0
  int64_t count = 5;
  uint64_t seed = 1234;
};

// The first `limit` rows of a GSM8K question/answer file, each prompted with `fewshot.count`
// examples drawn from fewshot.path: distinct, and the same for a test row whatever --limit or the
// batch size (drawn from a generator seeded by the seed and the row's index).
std::vector<EvalItem> read_lm_eval_items(const std::string& path, int64_t limit,
                                         const FewShot& fewshot);

// The harness's prompt for one question: "Question: {q}\nAnswer:".
std::string lm_eval_question(const std::string& question);

// Stop strings of the harness's gsm8k task (its generation_kwargs.until).
const std::vector<std::string>& lm_eval_stop_strings();

}  // namespace zerotune
