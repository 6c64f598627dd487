// Greedy completion of many prompts at once on the decoding engine (model/batched_generator.h):
// up to batch_size sequences step together, one batch per step; a finished sequence frees its slot
// for the next prompt at once. On the CPU a sequence's tokens do not depend on the others in its
// batch, so the completions equal a loop of `generate` over the prompts, token for token.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/generate.h"
#include "model/params.h"

namespace zerotune {

struct GreedyOptions {
  int64_t max_new_tokens = 256;
  int64_t batch_size = 8;
  int32_t eos_id = -1;            // </s>: end after generating it (kept in tokens); -1: none
  std::vector<int32_t> stop_ids;  // likewise (<END_A>), reported as StopReason::stop
  // End once the decoded text contains one; the completion's text is cut before it.
  std::vector<std::string> stop_strings;
};

struct Completion {
  std::vector<int32_t> tokens;  // as generate() returns them: a final stop id included
  std::string text;             // decoded, without a final stop id and cut at a stop string
  StopReason stopped = StopReason::length;
};

// Text of generated ids (the caller's tokenizer).
using DecodeIds = std::function<std::string(const std::vector<int32_t>&)>;
// Called on each completion as it finishes (in finishing order), with the prompt's index.
using OnCompletion = std::function<void(size_t index, const Completion& completion)>;

// Completes every prompt ([P] ids each, <s> included, within the model's vocabulary). The
// engine's cache holds min(batch_size, prompts) slots of the longest prompt + max_new_tokens
// positions; that must fit max_position_embeddings (checked before any work, naming the prompt).
std::vector<Completion> complete_greedy(const LlamaParams& params,
                                        const std::vector<std::vector<int32_t>>& prompts,
                                        const GreedyOptions& options, const DecodeIds& decode,
                                        const OnCompletion& on_completion = {});

}  // namespace zerotune
