// The fine-tuning job: tokenise, train for epochs with AdamW and a linear warm-up/decay schedule,
// evaluate and save a Hugging Face checkpoint after every epoch, keep the best by perplexity.
#pragma once

#include "train/train_options.h"

namespace zerotune {

// Runs the job; returns the process exit code.
int run_training(const TrainOptions& options);

}  // namespace zerotune
