// Built-in grade-school word problems in GSM8K's exact answer style, the offline default dataset
// of the training job. Each answer is a few sentences of reasoning whose arithmetic carries
// calculator annotations, `Natalia sold 48/2 = <<48/2=24>>24 clips in May.`, and ends with the line
// `#### 72`. Numbers are chosen so that every division is exact and every result is a
// non-negative integer; phrasing is regular per template so that a tiny model can learn it, and the
// final answer is exact so that it can be checked.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.h"

namespace zerotune {

struct SynthStep {
  std::string expr;  // as inside the annotation: "48/2"
  int64_t value;     // 24
};

struct SynthProblem {
  std::string question;
  std::string answer;            // reasoning lines, then "#### <final_value>"
  int64_t final_value = 0;       // equals steps.back().value
  std::vector<SynthStep> steps;  // in the order they appear in the answer
  int template_id = 0;           // index into synth_template_names()
};

// One name per template ("shopping_total", "age_sum", ...), indexed by template_id.
const std::vector<std::string>& synth_template_names();

// A problem from a template drawn uniformly by `rng`, then its names, items and numbers.
SynthProblem synth_problem(Rng& rng);
// A problem from the given template (0 <= template_id < synth_template_names().size()).
SynthProblem synth_problem(Rng& rng, int template_id);

struct SynthDataset {
  std::vector<SynthProblem> train, test;
};

// Draws problems from Rng(seed) and keeps those whose question has not been seen: the first
// `train` distinct ones form the train split, the next `test` the test split. So no question
// appears twice, within a split or across them, and the same seed gives the same bytes.
SynthDataset synth_dataset(int64_t train, int64_t test, uint64_t seed);

}  // namespace zerotune
