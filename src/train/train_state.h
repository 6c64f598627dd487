// Training state for --resume, separate from the HF export: fp32 parameters, AdamW moments and
// the loop's position (step, epoch, best checkpoints), so that a resumed run continues bit for
// bit as an uninterrupted one.
#pragma once

#include <string>
#include <vector>

#include "train/keep_best.h"

namespace zerotune {

struct LoopState {
  int64_t global_step = 0;  // optimizer steps taken
  int64_t epochs_done = 0;  // complete epochs (the sampler resumes at the next one)
  int64_t total_steps = 0;  // of the schedule, checked on resume
  uint64_t seed = 0;
  std::vector<SavedCheckpoint> checkpoints;  // kept on disk, best first
  // Every setting that changes the numbers (flags, thread count), as one line; a resume with
  // another fingerprint would not continue the same run, so it is refused.
  std::string fingerprint;
  int64_t optimizer_steps = 0;  // AdamW's step count (bias correction)
  // Read from a state of format 2, whose checkpoint folders and metrics rows numbered epochs
  // from 1 (epoch-1 ...); since format 3 they count from 0 as the Python job's do (epoch-0 ...).
  bool epochs_from_one = false;
};

// The state folder holds state.json (this loop state and the rank count) and one file per rank
// with that rank's part of the parameters and AdamW moments (ZeroEngine::save_state).
// save_loop_state writes state.json into the temporary folder `tmp`, where every rank has written
// its file, and publishes `tmp` as `dir` atomically (the previous state stays until then).
void save_loop_state(const std::string& tmp, const std::string& dir, const LoopState& loop,
                     int world);
// Replaces `dir`/state.json alone (atomically), keeping the rank files: a state renumbered in
// place.
void rewrite_loop_state(const std::string& dir, const LoopState& loop, int world);
// Reads `dir`/state.json; errors name the file and field.
LoopState load_loop_state(const std::string& dir, int* saved_world);

}  // namespace zerotune
