// What a run report shows, read from a run folder (OUTPUT_DIR of `zerotune train`): the step and
// epoch rows of metrics.jsonl, settings.json (or, for runs written before it existed, the training
// state's settings), the model's config.json from the newest epoch checkpoint, memory.json and the
// training state's progress. A run still in progress is read as it stands: metrics.jsonl may end in
// a row that is being written, and memory.json appears only when the run ends.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace zerotune::report {

using NamedValues = std::vector<std::pair<std::string, std::string>>;

// One "train" row of metrics.jsonl (one optimizer step). A field the row lacks (or holds as null)
// is NaN and left out of its chart.
struct StepPoint {
  int64_t step = 0;
  int64_t epoch = -1;
  double loss, lr, grad_norm, tokens_per_s, step_time_s;
};

// One "eval" row (the end of an epoch). accuracy is 0..1, present only for runs evaluated with
// --eval-accuracy (NaN otherwise); accuracy_examples is -1 when absent.
struct EpochPoint {
  int64_t epoch = 0;
  double eval_loss, perplexity, accuracy, train_time_s, eval_time_s;
  int64_t accuracy_examples = -1;
};

// memory.json: one row per quantity, one value per rank (bytes).
struct MemoryTable {
  std::string device;
  int64_t zero_stage = -1;
  std::vector<std::pair<std::string, std::vector<int64_t>>> rows;
};

struct RunData {
  std::string dir;   // as given
  std::string name;  // the folder's name, shown in legends
  std::vector<StepPoint> steps;
  std::vector<EpochPoint> epochs;
  // metrics.jsonl ended in an incomplete row (a run still writing it): the row is left out.
  bool partial_last_row = false;
  int64_t unknown_rows = 0;  // rows of a type the report does not show
  NamedValues settings;      // option -> value
  std::string settings_source;
  NamedValues model;  // the config's main fields and the parameter count
  std::string model_source;
  MemoryTable memory;  // rows empty until the run has ended
  int64_t total_steps = -1, global_step = -1, epochs_done = -1;  // -1: no training state yet
  std::vector<std::string> notes;  // what could not be read, said on the page
};

// Reads `dir`. Throws naming the file (and line) when metrics.jsonl is missing or holds a row that
// is not JSON or lacks its step/epoch; other files are optional and their absence becomes a note.
RunData read_run(const std::string& dir);

// The metrics rows of `path` into `run` (steps, epochs, partial_last_row, unknown_rows).
void read_metrics(const std::string& path, RunData& run);

// config.json's main fields and the parameter count of a Llama model with that config.
NamedValues summarize_model_config(const std::string& config_path);

}  // namespace zerotune::report
