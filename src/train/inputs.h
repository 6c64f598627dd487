// The job's inputs, loaded before the engine exists: the model folder's config and tokenizer (its
// vocabulary grown for added tokens), the tokenised train and test files, and the step counts.
#pragma once

#include <cstdint>
#include <string>

#include "data/tokenizer.h"
#include "io/hf_checkpoint.h"
#include "train/batching.h"
#include "train/train_options.h"

namespace zerotune {

struct StepPlan {
  int64_t global_batch = 0;     // examples per optimizer step over all ranks
  int64_t steps_per_epoch = 0;  // the last partial batch is trained on
  int64_t total_steps = 0;      // of the schedule (--max-steps caps it)
};

struct TrainInputs {
  LoadedHfFolder folder;  // config.json and the weights' layout (weights are loaded later)
  LlamaConfig config;     // the folder's, with the vocabulary grown for added tokens
  Tokenizer tokenizer;
  Examples train, test;
  StepPlan plan;
};

// Every rank reads and tokenises the files (cheap next to training). `lead` prints the summary.
TrainInputs load_inputs(const TrainOptions& options, int world, bool lead);

// The step counts of `examples` training examples split into global batches.
StepPlan plan_steps(const TrainOptions& options, int64_t examples, int world);

}  // namespace zerotune
