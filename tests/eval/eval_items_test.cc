// Reading evaluation rows: the seed format's prompt and reference, the harness's few-shot prompt
// (its "Question: {q}\nAnswer:" template, " " before an answer, "\n\n" between examples), a
// deterministic few-shot draw, and bad input refused naming file and line.
#include "eval/eval_items.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "support/errors.h"

namespace zerotune {
namespace {

namespace fs = std::filesystem;

class EvalItems : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("zerotune_eval_items_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string file(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  fs::path dir_;
};

const char* kRow1 =
    R"({"input": "<START_Q>Tom has 3 apples and buys 4.<END_Q><START_A>3+4=7\n#### 7<END_A>"})";
const char* kRow2 = R"({"input": "<START_Q>Q2<END_Q><START_A>So #### 1,200.<END_A>"})";

TEST_F(EvalItems, SeedRowsGivePromptAndReference) {
  const std::string path = file("test.jsonl", std::string(kRow1) + "\n\n" + kRow2 + "\n");
  const std::vector<EvalItem> items = read_seed_items(path, -1);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].prompt, "<START_Q>Tom has 3 apples and buys 4.<END_Q><START_A>");
  EXPECT_EQ(items[0].reference, "3+4=7\n#### 7");
  EXPECT_EQ(items[0].reference_number, "7");
  EXPECT_EQ(items[1].reference_number, "1200");
  EXPECT_EQ(items[1].index, 1);
  EXPECT_EQ(items[1].where, path + ":3");  // the blank line counts
  EXPECT_EQ(read_seed_items(path, 1).size(), 1u);
}

TEST_F(EvalItems, ReferenceWithoutNumberIsKeptToBeSkipped) {
  const std::string path =
      file("t.jsonl", R"({"input": "<START_Q>q<END_Q><START_A>#### many<END_A>"})"
                      "\n");
  const std::vector<EvalItem> items = read_seed_items(path, -1);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].reference_number, std::nullopt);
}

TEST_F(EvalItems, BadSeedRowsNameFileAndLine) {
  const std::string no_start =
      file("a.jsonl", std::string(kRow1) + "\n" + R"({"input": "<START_Q>q<END_Q>a<END_A>"})");
  expect_error([&] { read_seed_items(no_start, -1); }, no_start + ":2: the row has no <START_A>");
  const std::string no_marker =
      file("b.jsonl", R"({"input": "<START_Q>q<END_Q><START_A>the answer is 4<END_A>"})");
  expect_error([&] { read_seed_items(no_marker, -1); },
               no_marker + ":1: the answer has no \"####\"");
  const std::string empty = file("c.jsonl", "\n\n");
  expect_error([&] { read_seed_items(empty, -1); }, empty + ": no rows");
  const std::string wrong_field = file("d.jsonl", R"({"text": "x"})");
  expect_error([&] { read_seed_items(wrong_field, -1); },
               wrong_field + ":1: the row has no \"input\"");
  // A bad row past --limit is not read.
  EXPECT_EQ(read_seed_items(no_start, 1).size(), 1u);
}

std::string qa(const std::string& q, const std::string& a) {
  return R"({"question": ")" + q + R"(", "answer": ")" + a + "\"}\n";
}

TEST_F(EvalItems, LmEvalPromptIsTheHarnessTemplate) {
  const std::string train =
      file("train.jsonl", qa("T0?", "a0\\n#### 0") + qa("T1?", "a1\\n#### 1"));
  const std::string test = file("test.jsonl", qa("What is 2+3?", "2+3=5\\n#### 5"));
  const std::vector<EvalItem> zero = read_lm_eval_items(test, -1, {train, 0, 1234});
  ASSERT_EQ(zero.size(), 1u);
  EXPECT_EQ(zero[0].prompt, "Question: What is 2+3?\nAnswer:");
  EXPECT_EQ(zero[0].reference, "2+3=5\n#### 5");
  const std::vector<EvalItem> two = read_lm_eval_items(test, -1, {train, 2, 1234});
  const std::string shot0 = "Question: T0?\nAnswer: a0\n#### 0\n\n";
  const std::string shot1 = "Question: T1?\nAnswer: a1\n#### 1\n\n";
  const std::string question = "Question: What is 2+3?\nAnswer:";
  EXPECT_TRUE(two[0].prompt == shot0 + shot1 + question ||
              two[0].prompt == shot1 + shot0 + question)
      << two[0].prompt;
}

TEST_F(EvalItems, FewShotDrawIsDeterministicDistinctAndPerRow) {
  std::string train_rows, test_rows;
  for (int i = 0; i < 40; ++i)
    train_rows += qa("T" + std::to_string(i) + "?", "#### " + std::to_string(i));
  for (int i = 0; i < 6; ++i) test_rows += qa("Q" + std::to_string(i) + "?", "#### 1");
  const std::string train = file("train.jsonl", train_rows), test = file("test.jsonl", test_rows);
  const auto a = read_lm_eval_items(test, -1, {train, 5, 1234});
  const auto b = read_lm_eval_items(test, 3, {train, 5, 1234});
  const auto c = read_lm_eval_items(test, -1, {train, 5, 99});
  std::set<std::string> prompts;
  for (size_t i = 0; i < a.size(); ++i) {
    if (i < b.size()) {
      EXPECT_EQ(a[i].prompt, b[i].prompt);  // --limit changes nothing
    }
    prompts.insert(a[i].prompt.substr(0, a[i].prompt.rfind("Question:")));
    std::set<size_t> shots;
    for (size_t at = a[i].prompt.find("Question: T"); at != std::string::npos;
         at = a[i].prompt.find("Question: T", at + 1)) {
      shots.insert(at);
    }
    EXPECT_EQ(shots.size(), 5u);
  }
  EXPECT_EQ(prompts.size(), a.size());  // each row draws its own examples
  EXPECT_NE(a[0].prompt, c[0].prompt);  // the seed matters
}

TEST_F(EvalItems, BadLmEvalRowsNameFileAndLine) {
  const std::string train = file("train.jsonl", qa("T?", "#### 1"));
  const std::string no_marker = file("t.jsonl", qa("Q?", "#### 1") + qa("Q?", "it is 4"));
  expect_error(
      [&] {
        read_lm_eval_items(no_marker, -1, {train, 1, 1});
      },
      no_marker + ":2: \"answer\" has no \"####\"");
  expect_error([&] { read_lm_eval_items(no_marker, -1, {"", 5, 1}); }, "needs --fewshot-data");
  expect_error(
      [&] {
        read_lm_eval_items(no_marker, -1, {train, 5, 1});
      },
      "has 1 rows, fewer than --num-fewshot 5");
}

}  // namespace
}  // namespace zerotune
