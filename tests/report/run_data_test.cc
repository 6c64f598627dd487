// Reading run folders for the report: a metrics.jsonl still being written, rows lacking fields,
// bad rows named by file and line, the model summary's parameter count against the model's own
// parameter layout, and the optional files of a run.
#include "report/run_data.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "model/config.h"
#include "model/params.h"
#include "support/errors.h"

namespace zerotune::report {
namespace {

namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("zt-report-data-" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

const char* kTwoSteps =
    R"({"type":"train","step":1,"epoch":0,"loss":2.5,"lr":0.001,"grad_norm":1.5,)"
    R"("tokens":100,"tokens_per_s":50.0,"step_time_s":2.0})"
    "\n"
    R"({"type":"train","step":2,"epoch":0,"loss":2.25,"lr":0.002,"grad_norm":1.25,)"
    R"("tokens":100,"tokens_per_s":40.0,"step_time_s":2.5})"
    "\n";

TEST(ReportRunData, PartialLastRowIsToleratedAndSaid) {
  const fs::path dir = fresh_dir("partial");
  write(dir / "metrics.jsonl", std::string(kTwoSteps) + R"({"type":"train","step":3,"lo)");
  const RunData run = read_run(dir.string());
  ASSERT_EQ(run.steps.size(), 2u);
  EXPECT_TRUE(run.partial_last_row);
  EXPECT_EQ(run.steps[1].step, 2);
  EXPECT_DOUBLE_EQ(run.steps[1].loss, 2.25);
  EXPECT_DOUBLE_EQ(run.steps[0].tokens_per_s, 50.0);
  bool said = false;
  for (const std::string& note : run.notes)
    said |= note.find("still being written") != std::string::npos;
  EXPECT_TRUE(said);
}

TEST(ReportRunData, CompleteLastRowWithoutNewlineIsKept) {
  const fs::path dir = fresh_dir("no-newline");
  write(dir / "metrics.jsonl",
        std::string(kTwoSteps) + R"({"type":"eval","epoch":0,"eval_loss":2.0,"perplexity":7.5})");
  const RunData run = read_run(dir.string());
  EXPECT_FALSE(run.partial_last_row);
  ASSERT_EQ(run.epochs.size(), 1u);
  EXPECT_DOUBLE_EQ(run.epochs[0].perplexity, 7.5);
}

TEST(ReportRunData, MissingFieldsAreNaNAndAccuracyIsReadWhenPresent) {
  const fs::path dir = fresh_dir("missing");
  write(dir / "metrics.jsonl",
        R"({"type":"train","step":1,"loss":3.0})"
        "\n"
        R"({"type":"eval","epoch":0,"eval_loss":800.0,"perplexity":null})"
        "\n"
        R"({"type":"eval","epoch":1,"eval_loss":1.0,"perplexity":2.718,"accuracy":0.25,)"
        R"("accuracy_examples":40})"
        "\n"
        R"({"type":"something-new","x":1})"
        "\n");
  const RunData run = read_run(dir.string());
  ASSERT_EQ(run.steps.size(), 1u);
  EXPECT_TRUE(std::isnan(run.steps[0].grad_norm));
  EXPECT_TRUE(std::isnan(run.steps[0].lr));
  EXPECT_EQ(run.steps[0].epoch, -1);
  ASSERT_EQ(run.epochs.size(), 2u);
  EXPECT_TRUE(std::isnan(run.epochs[0].perplexity));
  EXPECT_TRUE(std::isnan(run.epochs[0].accuracy));
  EXPECT_EQ(run.epochs[0].accuracy_examples, -1);
  EXPECT_DOUBLE_EQ(run.epochs[1].accuracy, 0.25);
  EXPECT_EQ(run.epochs[1].accuracy_examples, 40);
  EXPECT_EQ(run.unknown_rows, 1);
}

TEST(ReportRunData, BadRowsNameFileAndLine) {
  const fs::path dir = fresh_dir("bad");
  const std::string metrics = (dir / "metrics.jsonl").string();
  // Not JSON, on a line that has its newline: not a row being written.
  write(metrics,
        std::string(kTwoSteps) + "{\"type\":\"train\",\"step\":3,\"loss\":}\n" + kTwoSteps);
  expect_error([&] { read_run(dir.string()); }, metrics + ":3:");
  write(metrics, std::string(kTwoSteps) + R"({"type":"train","loss":1.0})"
                                          "\n");
  expect_error([&] { read_run(dir.string()); },
               metrics + ":3: a train row needs a number \"step\"");
  write(metrics, R"({"type":"eval","eval_loss":1.0})"
                 "\n");
  expect_error([&] { read_run(dir.string()); }, metrics + ":1: an eval row needs");
  write(metrics, R"({"type":"train","step":1,"loss":"low"})"
                 "\n");
  expect_error([&] { read_run(dir.string()); }, "\"loss\"");
  write(metrics, "[1, 2]\n");
  expect_error([&] { read_run(dir.string()); }, metrics + ":1: expected a JSON object");
}

TEST(ReportRunData, MissingFolderOrMetricsIsAnError) {
  const fs::path dir = fresh_dir("absent");
  expect_error([&] { read_run((dir / "nope").string()); }, "no such directory");
  expect_error([&] { read_run(dir.string()); }, "metrics.jsonl: missing");
}

// The summary's parameter count equals the number of values LlamaParams lays out for that config.
TEST(ReportRunData, ModelSummaryCountsParametersAsTheModelDoes) {
  const fs::path dir = fresh_dir("config");
  for (const bool tied : {false, true}) {
    const std::string config =
        std::string(R"({"architectures":["LlamaForCausalLM"],"model_type":"llama",)") +
        R"("vocab_size":437,"hidden_size":96,"intermediate_size":200,"num_hidden_layers":3,)" +
        R"("num_attention_heads":6,"num_key_value_heads":2,"max_position_embeddings":128,)" +
        R"("rms_norm_eps":1e-5,"tie_word_embeddings":)" + (tied ? "true" : "false") + "}";
    write(dir / "config.json", config);
    const LlamaConfig parsed = load_llama_config((dir / "config.json").string());
    const LlamaParams layout(parsed, Storage::none);
    int64_t expected = 0;
    for (size_t g = 0; g < layout.groups().size(); ++g) expected += layout.group_numel(g);
    const NamedValues summary = summarize_model_config((dir / "config.json").string());
    std::string count;
    for (const auto& [name, value] : summary) {
      if (name == "parameters") count = value;
    }
    EXPECT_EQ(count, std::to_string(expected)) << "tied " << tied;
  }
}

TEST(ReportRunData, SettingsModelMemoryAndStateAreRead) {
  const fs::path dir = fresh_dir("full");
  write(dir / "metrics.jsonl", kTwoSteps);
  write(dir / "settings.json", R"({"--lr": "0.003", "--packing": "yes"})");
  write(dir / "train_state" / "state.json",
        R"({"format":3,"global_step":2,"epochs_done":1,"total_steps":6,"seed":7,)"
        R"("world_size":2,"checkpoints":[],"fingerprint":"global_batch=8 lr=0.003"})");
  write(dir / "memory.json",
        R"({"world_size":2,"zero_stage":3,"device":"cpu","held_bytes":[1048576,2097152]})");
  write(dir / "epoch-0" / "config.json", R"({"hidden_size":48})");
  write(dir / "epoch-10" / "config.json", R"({"hidden_size":64})");
  write(dir / "epoch-2" / "config.json", R"({"hidden_size":32})");
  const RunData run = read_run((dir.string() + "/"));
  EXPECT_EQ(run.name, dir.filename().string());
  EXPECT_EQ(read_run((dir / ".").string()).name, dir.filename().string());
  ASSERT_EQ(run.settings.size(), 2u);
  EXPECT_EQ(run.settings[1], (std::pair<std::string, std::string>{"--packing", "yes"}));
  EXPECT_EQ(run.total_steps, 6);
  EXPECT_EQ(run.epochs_done, 1);
  ASSERT_EQ(run.memory.rows.size(), 1u);
  EXPECT_EQ(run.memory.rows[0].second, (std::vector<int64_t>{1048576, 2097152}));
  EXPECT_EQ(run.memory.zero_stage, 3);
  EXPECT_EQ(run.model_source, "epoch-10/config.json");  // the newest epoch, by number
  ASSERT_FALSE(run.model.empty());
  EXPECT_EQ(run.model[0], (std::pair<std::string, std::string>{"hidden_size", "64"}));
  // Without settings.json, the state's fingerprint stands in.
  fs::remove(dir / "settings.json");
  const RunData older = read_run(dir.string());
  EXPECT_EQ(older.settings_source, "train_state/state.json");
  EXPECT_EQ(older.settings[0], (std::pair<std::string, std::string>{"global_batch", "8"}));
}

}  // namespace
}  // namespace zerotune::report
