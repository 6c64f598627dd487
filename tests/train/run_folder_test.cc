// The run folder's policies on their own: refusing another run, trimming metrics, resuming a
// state (and renumbering one saved with epochs counted from 1), and the checkpoint policy's
// folder names and keep-best removals.
#include "train/run_folder.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/check.h"
#include "support/errors.h"
#include "support/tiny_llama.h"
#include "train/checkpoints.h"
#include "train/train_step.h"

namespace zerotune {
namespace {

namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("zt-run-folder-" + name);
  fs::remove_all(dir);
  return dir;
}

std::string read(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(RunFolder, AnotherRunIsRefusedUnlessResuming) {
  const fs::path dir = fresh_dir("refuse");
  refuse_other_runs(dir.string(), false);  // absent: fine
  fs::create_directories(dir / "epoch-0");
  EXPECT_NE(error_of([&] { refuse_other_runs(dir.string(), false); }).find("already holds a run"),
            std::string::npos);
  refuse_other_runs(dir.string(), true);
  fs::remove_all(dir);
}

TEST(RunFolder, TrimDropsRowsPastTheStateAndShiftsOldEpochs) {
  const fs::path dir = fresh_dir("trim");
  fs::create_directories(dir);
  const fs::path path = dir / "metrics.jsonl";
  std::ofstream(path) << R"({"type":"train","step":1,"epoch":1,"loss":2.5})"
                         "\n"
                      << R"({"type":"eval","epoch":1,"eval_loss":2})"
                         "\n"
                      << R"({"type":"train","step":2,"epoch":2,"loss":2.25})"
                         "\n";
  LoopState loop;
  loop.global_step = 1;
  loop.epochs_done = 1;
  trim_metrics(path.string(), loop, /*shift_epochs=*/true);
  EXPECT_EQ(read(path),
            "{\"type\":\"train\",\"step\":1,\"epoch\":0,\"loss\":2.5}\n"
            "{\"type\":\"eval\",\"epoch\":0,\"eval_loss\":2}\n");
  fs::remove_all(dir);
}

// A one-rank run's state saved, turned into the older format (epochs from 1), resumed twice: the
// first resume renames epoch-1 to epoch-0 and rewrites the state, the second changes nothing.
TEST(RunFolder, ResumeRenumbersAnOlderRunOnce) {
  const fs::path dir = fresh_dir("resume");
  LlamaParams params(tiny_llama_config({17, 8, 16, 1, 2, 2, 4, 8}));
  params.init_random(3);
  SingleRankTraining t = single_rank_training(params, Checkpointing::off, ZeroOptions{});
  RunFolder run(dir.string(), false, t.engine->comm());
  LoopState loop;
  loop.total_steps = 4;
  loop.seed = 1;
  loop.fingerprint = "f";
  loop.epochs_done = 1;
  loop.global_step = 2;
  loop.checkpoints = {{3.5, 1}};  // as format 2 numbered the first epoch
  run.save_state(*t.engine, loop);
  std::string state = read(dir / "train_state" / "state.json");
  state.replace(state.find("\"format\": 3"), 11, "\"format\": 2");
  std::ofstream(dir / "train_state" / "state.json") << state;
  fs::create_directories(dir / "epoch-1");
  std::ofstream(dir / "epoch-1" / "config.json") << "{}";

  LoopState expected = loop;
  expected.checkpoints.clear();
  RunFolder resumed(dir.string(), true, t.engine->comm());
  const LoopState got = resumed.resume(expected, *t.engine, nullptr);
  ASSERT_EQ(got.checkpoints.size(), 1u);
  EXPECT_EQ(got.checkpoints[0].epoch, 0);
  EXPECT_TRUE(fs::exists(dir / "epoch-0" / "config.json"));
  EXPECT_FALSE(fs::exists(dir / "epoch-1"));
  EXPECT_NE(read(dir / "train_state" / "state.json").find("\"format\": 3"), std::string::npos);
  const LoopState again =
      RunFolder(dir.string(), true, t.engine->comm()).resume(expected, *t.engine, nullptr);
  EXPECT_EQ(again.checkpoints[0].epoch, 0);
  EXPECT_TRUE(fs::exists(dir / "epoch-0" / "config.json"));

  expected.fingerprint = "other";
  EXPECT_NE(error_of([&] {
              RunFolder(dir.string(), true, t.engine->comm()).resume(expected, *t.engine, nullptr);
            }).find("resume with the same flags"),
            std::string::npos);
  fs::remove_all(dir);
}

// Writes a folder holding one file, as a checkpoint writer does.
class MarkerWriter final : public CheckpointWriter {
 public:
  void write(const std::string& dir) override {
    fs::create_directories(dir);
    std::ofstream(fs::path(dir) / "config.json") << "{}";
    ++written;
  }
  int written = 0;
};

TEST(CheckpointPolicy, EpochFoldersFromZeroAndTheBestTwoKept) {
  const fs::path dir = fresh_dir("policy");
  fs::create_directories(dir);
  CheckpointPolicy policy(dir.string(), 2, MetricOrder::lower_is_better, nullptr, true);
  MarkerWriter writer;
  const double perplexities[] = {4.0, 2.0, 3.0, 5.0};
  for (int64_t epoch = 0; epoch < 4; ++epoch) policy.save(epoch, perplexities[epoch], writer);
  EXPECT_EQ(writer.written, 4);
  EXPECT_EQ(CheckpointPolicy::folder_name(0), "epoch-0");
  std::vector<std::string> kept;
  for (const auto& entry : fs::directory_iterator(dir)) kept.push_back(entry.path().filename());
  std::sort(kept.begin(), kept.end());
  EXPECT_EQ(kept, (std::vector<std::string>{"epoch-1", "epoch-2"}));
  EXPECT_EQ(policy.kept().best().epoch, 1);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace zerotune
