// One GSM8K evaluation: the items' prompts completed greedily in batches (eval/greedy_decoder.h),
// each completion scored by its format's protocol (eval/gsm8k_score.h), the counts, and the
// per-example predictions. Shared by `zerotune eval` and the trainer's accuracy evaluation.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/timer.h"
#include "data/tokenizer.h"
#include "eval/eval_items.h"
#include "eval/greedy_decoder.h"
#include "model/params.h"

namespace zerotune {

struct EvalSettings {
  EvalFormat format = EvalFormat::seed;
  int64_t max_new_tokens = 256;
  int64_t batch_size = 8;
};

// One filter's reading of a completion (seed: "exact_match"; lm-eval: "strict-match" and
// "flexible-extract"): what it extracted (nothing: no number) and whether that is right.
struct FilterResult {
  std::optional<std::string> extracted;
  bool correct = false;
};

struct Prediction {
  int64_t index = 0;
  std::string prompt, completion, reference;
  std::vector<FilterResult> filters;  // in filter_names' order
  bool skipped = false;               // the reference has no number: not scored
  std::vector<int32_t> tokens;        // the completion's ids (as generate() returns them)
};

struct EvalCounts {
  int64_t done = 0;              // completions finished
  int64_t scored = 0;            // of them, with a reference number
  int64_t skipped = 0;           // without one
  std::vector<int64_t> correct;  // per filter
};

struct EvalOutcome {
  std::vector<std::string> filter_names;  // the first is the headline accuracy
  std::vector<Prediction> predictions;    // in the items' order
  EvalCounts counts;
};

// The filters of a format: {"exact_match"} or {"strict-match", "flexible-extract"}.
std::vector<std::string> filter_names(EvalFormat format);

// Called after each completion with the counts so far (progress lines).
using OnProgress = std::function<void(const EvalCounts& so_far)>;

// done/total, the running accuracy, examples/s and an ETA on stderr: rewritten in place on a
// terminal, a line per tenth of the work otherwise. `timer` started with the work.
OnProgress eval_progress_line(int64_t total, const Timer& timer);

// <s> + the tokenizer's ids of each prompt; errors name the row when an id is beyond the model's
// vocabulary (a tokenizer with tokens the model was not resized for).
std::vector<std::vector<int32_t>> encode_prompts(const Tokenizer& tokenizer,
                                                 const std::vector<EvalItem>& items,
                                                 int64_t model_vocab);

// Decodes and scores every item. `params` on the CPU or a GPU (model/batched_generator.h).
EvalOutcome evaluate_items(const LlamaParams& params, const Tokenizer& tokenizer,
                           const std::vector<EvalItem>& items, const EvalSettings& settings,
                           const OnProgress& on_progress = {});

// The 95% Wilson score interval of `correct` out of `n` ({0, 0} for n = 0).
struct Interval {
  double low = 0.0, high = 0.0;
};
Interval wilson_interval(int64_t correct, int64_t n, double z = 1.959963984540054);

// predictions.jsonl: one object per item, in order: index, prompt, completion, completion_ids
// (the generated ids, a final stop id included), extracted, reference, correct (null when
// skipped), skipped; lm-eval adds flexible_extract and
// flexible_correct (extracted/correct being strict-match's). Written atomically.
void write_predictions(const std::string& path, const EvalOutcome& outcome);

}  // namespace zerotune
