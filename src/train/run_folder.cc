#include "train/run_folder.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "core/check.h"
#include "core/files.h"
#include "train/checkpoints.h"

namespace zerotune {

namespace fs = std::filesystem;

namespace {}  // namespace

void refuse_other_runs(const std::string& dir, bool resume) {
  if (resume || !fs::exists(dir)) return;
  ZT_CHECK(fs::is_directory(dir), dir, ": exists and is not a directory");
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    ZT_CHECK(name.rfind("epoch-", 0) != 0 && name != "train_state", dir, " already holds a run (",
             name, "); pass --resume to continue it, or choose another --output_dir");
  }
}

namespace {

// Temporary folders of saves that a crash interrupted (`<name>.tmp-<pid>`) are incomplete by
// construction; `.old-<pid>` folders are left alone, as they may be the only complete copy.
void remove_interrupted_saves(const std::string& dir) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.find(".tmp-") != std::string::npos) {
      std::fprintf(stderr, "zerotune train: removing %s, left by an interrupted save\n",
                   entry.path().c_str());
      fs::remove_all(entry.path());
    }
  }
}

}  // namespace

RunFolder::RunFolder(std::string dir, bool resume, Communicator& comm)
    : dir_(std::move(dir)), resume_(resume), comm_(comm) {
  if (comm_.rank() == 0) {
    fs::create_directories(dir_);
    remove_interrupted_saves(dir_);
  }
  comm_.barrier();
}

std::string RunFolder::path(const std::string& name) const {
  return (fs::path(dir_) / name).string();
}

LoopState RunFolder::resume(const LoopState& expected, ZeroEngine& engine,
                            storage::CheckpointPublisher* publisher) {
  const std::string state_dir = path("train_state");
  int saved_world = 1;
  LoopState loop = load_loop_state(state_dir, &saved_world);
  ZT_CHECK(loop.total_steps == expected.total_steps && loop.seed == expected.seed &&
               loop.fingerprint == expected.fingerprint,
           state_dir, ": the state is for a run with seed ", loop.seed, " and {", loop.fingerprint,
           "}, not seed ", expected.seed, " and {", expected.fingerprint,
           "}; resume with the same flags, global batch and OMP_NUM_THREADS");
  engine.load_state(state_dir, saved_world);
  engine.set_optimizer_steps(loop.optimizer_steps);
  const bool shift = loop.epochs_from_one;
  // Every rank renumbers its copy; rank 0 alone renames and rewrites the files.
  if (shift && comm_.rank() == 0) renumber_epochs_from_zero(loop, publisher);
  for (SavedCheckpoint& checkpoint : loop.checkpoints) checkpoint.epoch -= shift;
  loop.epochs_from_one = false;
  if (comm_.rank() == 0) {
    // The state first: a second resume after an interruption here must not shift again.
    if (shift) rewrite_loop_state(state_dir, loop, saved_world);
    trim_metrics(path("metrics.jsonl"), loop, shift);
  }
  if (saved_world != comm_.size() && comm_.rank() == 0) {
    std::fprintf(stderr, "zerotune train: the state of %d ranks is re-partitioned over %d\n",
                 saved_world, comm_.size());
  }
  comm_.barrier();
  return loop;
}

// A run saved before checkpoints were numbered from 0: epoch-k becomes epoch-(k-1), in ascending
// order, each rename only where the new name is free, so that a second attempt after an
// interruption finishes the job without renaming anything twice.
void RunFolder::renumber_epochs_from_zero(LoopState& loop,
                                          storage::CheckpointPublisher* publisher) const {
  ZT_CHECK(!publisher, dir_,
           ": this run numbered its checkpoints from epoch-1 (an older "
           "zerotune) and its copies in object storage keep those names: resume it with the "
           "zerotune that started it, or rename each epoch-<k> to epoch-<k-1> in both places and "
           "set \"format\": 3 in train_state/state.json with epochs lowered by one");
  std::vector<int64_t> epochs;
  for (const SavedCheckpoint& checkpoint : loop.checkpoints) epochs.push_back(checkpoint.epoch);
  std::sort(epochs.begin(), epochs.end());
  for (const int64_t epoch : epochs) {
    const fs::path from = path(CheckpointPolicy::folder_name(epoch));
    const fs::path to = path(CheckpointPolicy::folder_name(epoch - 1));
    if (!fs::exists(from) || fs::exists(to)) continue;
    std::fprintf(stderr, "zerotune train: renaming %s to %s (checkpoints are numbered from 0)\n",
                 from.c_str(), to.filename().c_str());
    fs::rename(from, to);
  }
}

void RunFolder::write_metrics(const json::Value& row) {
  if (!metrics_) {
    const std::string file = path("metrics.jsonl");
    metrics_.emplace(file, resume_ ? std::ios::app : std::ios::trunc);
    ZT_CHECK(*metrics_, file, ": cannot open for writing");
  }
  *metrics_ << row.dump() << "\n";
  metrics_->flush();
}

void RunFolder::save_state(ZeroEngine& engine, LoopState& loop) {
  const std::string state_dir = path("train_state");
  const std::string tmp = state_dir + ".tmp-save";
  const bool lead = comm_.rank() == 0;
  if (lead) {
    fs::remove_all(tmp);
    fs::create_directories(tmp);
  }
  comm_.barrier();
  engine.save_state(
      (fs::path(tmp) / ZeroEngine::state_file_name(comm_.rank(), comm_.size())).string());
  comm_.barrier();
  if (lead) {
    loop.optimizer_steps = engine.optimizer_steps();
    save_loop_state(tmp, state_dir, loop, comm_.size());
  }
  comm_.barrier();
}

void trim_metrics(const std::string& path, const LoopState& loop, bool shift_epochs) {
  std::ifstream in(path);
  if (!in) return;
  std::string kept, line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    json::Value row = json::parse_line(line, path, line_no);
    const json::Value* step = row.find("step");
    const json::Value* epoch = row.find("epoch");
    const int64_t epoch_index = epoch ? epoch->as_int64(path + ": epoch") - shift_epochs : -1;
    const bool keep = step ? step->as_int64(path + ": step") <= loop.global_step
                           : epoch && epoch_index < loop.epochs_done;
    if (!keep) continue;
    if (epoch && shift_epochs) row.set("epoch", epoch_index);
    kept += (shift_epochs ? row.dump() : line) + "\n";
  }
  in.close();
  write_file_atomically(path, kept);
}

}  // namespace zerotune
