// The run's output folder: OUTPUT_DIR/metrics.jsonl, memory.json, train_state/ and the epoch
// checkpoints. A folder holding another run is refused unless resuming it; resuming restores the
// loop and the engine's state exactly and drops what an interruption left half done.
#pragma once

#include <fstream>
#include <optional>
#include <string>

#include "core/json.h"
#include "distributed/zero/zero_engine.h"
#include "train/train_state.h"

namespace zerotune {

namespace storage {
class CheckpointPublisher;
}

// Refuses a folder that holds a run (checkpoints or a training state) unless `resume`: checked
// before anything is loaded or written.
void refuse_other_runs(const std::string& dir, bool resume);

class RunFolder {
 public:
  // Collective. Rank 0 creates the folder and removes the temporary folders of interrupted saves.
  RunFolder(std::string dir, bool resume, Communicator& comm);

  std::string path(const std::string& name) const;

  // Collective. Reads train_state/ and loads this rank's part of the engine's state; refuses a
  // state whose settings differ from `expected`'s (seed, total steps, fingerprint). Rank 0 drops
  // metric rows past the saved state and renumbers a run saved with epochs counted from 1.
  LoopState resume(const LoopState& expected, ZeroEngine& engine,
                   storage::CheckpointPublisher* publisher);

  // Rank 0: appends a row to metrics.jsonl (opened on first use: appended to when resuming).
  void write_metrics(const json::Value& row);

  // Collective: every rank writes its part of train_state/ into one temporary folder, which rank
  // 0 publishes with state.json (the previous state stays complete until then).
  void save_state(ZeroEngine& engine, LoopState& loop);

 private:
  void renumber_epochs_from_zero(LoopState& loop, storage::CheckpointPublisher* publisher) const;

  std::string dir_;
  bool resume_;
  Communicator& comm_;
  std::optional<std::ofstream> metrics_;
};

// Metric rows of `path` after the saved state (steps past global_step, evaluations of epochs not
// done) are dropped, so that replayed steps are not listed twice; with `shift_epochs` every row's
// epoch is lowered by one (a run whose epochs counted from 1).
void trim_metrics(const std::string& path, const LoopState& loop, bool shift_epochs);

}  // namespace zerotune
