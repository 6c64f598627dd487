#include "data/gsm8k.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/json.h"
#include "data/text_jsonl.h"

namespace zerotune {
namespace {

namespace fs = std::filesystem;

#define EXPECT_HAS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

// tests/data/fixtures/gsm8k: from $ZEROTUNE_SOURCE_DIR, else the first folder above the working
// directory that holds tests/data/fixtures (ctest runs in the build folder inside the checkout).
fs::path fixture_dir() {
  if (const char* root = std::getenv("ZEROTUNE_SOURCE_DIR"); root && *root) {
    return fs::path(root) / "tests/data/fixtures/gsm8k";
  }
  for (fs::path dir = fs::current_path();; dir = dir.parent_path()) {
    if (fs::is_directory(dir / "tests/data/fixtures")) return dir / "tests/data/fixtures/gsm8k";
    if (dir == dir.parent_path()) break;
  }
  ADD_FAILURE() << "tests/data/fixtures not found above " << fs::current_path()
                << "; set ZEROTUNE_SOURCE_DIR to the source checkout";
  return {};
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void spit(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

class Gsm8kTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    tmp_ = fs::temp_directory_path() /
           ("zerotune_gsm8k_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(tmp_);
    fs::create_directories(tmp_);
    fixtures_ = fixture_dir();
    ASSERT_TRUE(fs::exists(fixtures_ / "train.jsonl")) << fixtures_;
  }
  void TearDown() override { fs::remove_all(tmp_); }

  // A copy of the fixture folder that a test may break.
  fs::path copy_fixtures(const std::string& name) {
    const fs::path dir = tmp_ / name;
    fs::create_directories(dir);
    fs::copy_file(fixtures_ / "train.jsonl", dir / "train.jsonl");
    fs::copy_file(fixtures_ / "test.jsonl", dir / "test.jsonl");
    return dir;
  }

  // The message of the error convert_gsm8k throws.
  std::string convert_error(const fs::path& input, const fs::path& out) {
    try {
      convert_gsm8k(input.string(), out.string());
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "expected an error converting " << input;
    return "";
  }

  fs::path tmp_, fixtures_;
};

TEST(Gsm8kFormat, FormatAndTokens) {
  EXPECT_EQ(format_qa("Q?", "A.\n#### 1"), "<START_Q>Q?<END_Q><START_A>A.\n#### 1<END_A>");
  EXPECT_EQ(qa_tokens_json(),
            "{\"tokens\": [\"<START_Q>\", \"<END_Q>\", \"<START_A>\", \"<END_A>\"]}\n");
  EXPECT_EQ(qa_special_tokens().size(), 4u);
}

// --format chat: one user/assistant conversation per row, holding the published texts as they are.
TEST_F(Gsm8kTest, ChatFormatWritesOneConversationPerRow) {
  const fs::path out = tmp_ / "chat";
  const Gsm8kCounts counts = convert_gsm8k(fixtures_.string(), out.string(), QaFormat::chat);
  EXPECT_EQ(counts.train, 4);
  EXPECT_EQ(counts.test, 3);
  EXPECT_FALSE(fs::exists(out / "tokens.json"));
  for (const std::string split : {"train", "test"}) {
    const std::vector<QaPair> pairs = read_gsm8k_jsonl((fixtures_ / (split + ".jsonl")).string());
    JsonlReader reader((out / (split + ".jsonl")).string());
    json::Value row;
    for (const QaPair& pair : pairs) {
      ASSERT_TRUE(reader.next(row)) << split;
      ASSERT_EQ(row.size(), 1u);
      const std::vector<json::Value>& messages = row.find("messages")->items();
      ASSERT_EQ(messages.size(), 2u);
      EXPECT_EQ(messages[0].find("role")->as_string("r"), "user");
      EXPECT_EQ(messages[0].find("content")->as_string("c"), pair.question);
      EXPECT_EQ(messages[1].find("role")->as_string("r"), "assistant");
      EXPECT_EQ(messages[1].find("content")->as_string("c"), pair.answer);
    }
    EXPECT_FALSE(reader.next(row)) << split;
  }
}

TEST_F(Gsm8kTest, ConvertsFixture) {
  const fs::path out = tmp_ / "out";
  const Gsm8kCounts counts = convert_gsm8k(fixtures_.string(), out.string());
  EXPECT_EQ(counts.train, 4);
  EXPECT_EQ(counts.test, 3);

  // The first row, byte for byte.
  const std::string train = slurp(out / "train.jsonl");
  const std::string first_line = train.substr(0, train.find('\n') + 1);
  EXPECT_EQ(first_line,
            "{\"input\": \"<START_Q>Natalia sold clips to 48 of her friends in April, and then "
            "she sold half as many clips in May. How many clips did Natalia sell altogether in "
            "April and May?<END_Q><START_A>Natalia sold 48/2 = <<48/2=24>>24 clips in "
            "May.\\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and "
            "May.\\n#### 72<END_A>\"}\n");
  EXPECT_EQ(slurp(out / "tokens.json"),
            "{\"tokens\": [\"<START_Q>\", \"<END_Q>\", \"<START_A>\", \"<END_A>\"]}\n");

  // Every row is the formatted pair of the same input row.
  const std::vector<std::string> splits = {"train", "test"};
  for (const std::string& split : splits) {
    const std::vector<QaPair> pairs = read_gsm8k_jsonl((fixtures_ / (split + ".jsonl")).string());
    const std::vector<std::string> inputs = read_text_jsonl((out / (split + ".jsonl")).string());
    ASSERT_EQ(inputs.size(), pairs.size()) << split;
    for (size_t i = 0; i < pairs.size(); ++i) {
      EXPECT_EQ(inputs[i], format_qa(pairs[i].question, pairs[i].answer)) << split << " " << i;
    }
  }
  // UTF-8 passes through unescaped, whether the source escaped it (\u00eb) or not.
  EXPECT_HAS(train, "Zo\xC3\xAB buys 4 croissants at a caf\xC3\xA9");
  EXPECT_HAS(slurp(out / "test.jsonl"), "Janet\xE2\x80\x99s ducks");
  for (const auto& entry : fs::directory_iterator(out)) {
    EXPECT_NE(entry.path().extension(), ".tmp") << entry.path();
  }
}

TEST_F(Gsm8kTest, MissingAnswerNamesLineAndWritesNothing) {
  const fs::path in = copy_fixtures("in");
  std::string test = slurp(in / "test.jsonl");
  const size_t second = test.find('\n') + 1;
  test.insert(second, "{\"question\": \"How many?\", \"solution\": \"3\"}\n");
  spit(in / "test.jsonl", test);
  const fs::path out = tmp_ / "out";
  EXPECT_HAS(convert_error(in, out), (in / "test.jsonl").string() + ":2: missing \"answer\"");
  EXPECT_FALSE(fs::exists(out));  // not even the folder
}

TEST_F(Gsm8kTest, BadInputKeepsExistingOutput) {
  const fs::path out = tmp_ / "out";
  convert_gsm8k(fixtures_.string(), out.string());
  const std::string train_before = slurp(out / "train.jsonl");
  const std::string test_before = slurp(out / "test.jsonl");

  const fs::path in = copy_fixtures("in");
  spit(in / "train.jsonl", "{\"question\": \"Q\", \"answer\": \"A\"}\n{\"question\": 7}\n");
  EXPECT_HAS(convert_error(in, out),
             (in / "train.jsonl").string() + ":2: \"question\" must be a string");
  spit(in / "train.jsonl", "{\"question\": \"Q\", \"answer\": \"A\"}\n");
  spit(in / "test.jsonl", "{\"question\": \"Q\", \"answer\": \"A\"\n");
  EXPECT_HAS(convert_error(in, out), (in / "test.jsonl").string() + ":1:");

  EXPECT_EQ(slurp(out / "train.jsonl"), train_before);
  EXPECT_EQ(slurp(out / "test.jsonl"), test_before);
  EXPECT_EQ(std::distance(fs::directory_iterator(out), fs::directory_iterator()), 3);
}

TEST_F(Gsm8kTest, OtherBadInputs) {
  const fs::path out = tmp_ / "out";
  const fs::path in = copy_fixtures("in");
  spit(in / "train.jsonl", "{\"question\": \"\", \"answer\": \"A\"}\n");
  EXPECT_HAS(convert_error(in, out), (in / "train.jsonl").string() + ":1: \"question\" is empty");
  spit(in / "train.jsonl", "\n\n");
  EXPECT_HAS(convert_error(in, out), (in / "train.jsonl").string() + ": no rows");
  fs::remove(in / "test.jsonl");
  spit(in / "train.jsonl", slurp(fixtures_ / "train.jsonl"));
  EXPECT_HAS(convert_error(in, out), (in / "test.jsonl").string() + ": not found");
  EXPECT_HAS(convert_error(tmp_ / "nowhere", out), "no such folder");
  EXPECT_HAS(convert_error(in, in), "--out must be a different folder from --input");
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(Gsm8kTest, ParquetIsRefusedWithAHint) {
  const fs::path out = tmp_ / "out";
  // The Hugging Face hub's layout.
  const fs::path hub = tmp_ / "hub";
  fs::create_directories(hub / "main");
  spit(hub / "main/train-00000-of-00001.parquet", "PAR1....PAR1");
  spit(hub / "main/test-00000-of-00001.parquet", "PAR1....PAR1");
  std::string e = convert_error(hub, out);
  EXPECT_HAS(e, (hub / "main/train-00000-of-00001.parquet").string() + ": is a Parquet file");
  EXPECT_HAS(e, "JSON Lines");
  EXPECT_HAS(e, "read_parquet");
  // A .parquet file given as --input.
  e = convert_error(hub / "main/test-00000-of-00001.parquet", out);
  EXPECT_HAS(e, "test-00000-of-00001.parquet: is a Parquet file");
  // Parquet bytes under a .jsonl name.
  const fs::path in = copy_fixtures("in");
  spit(in / "test.jsonl", std::string("PAR1\x15\x04", 6));
  EXPECT_HAS(convert_error(in, out), (in / "test.jsonl").string() + ": is a Parquet file");
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(Gsm8kTest, WriteRefusesEmptySplit) {
  const fs::path out = tmp_ / "out";
  EXPECT_THROW(write_qa_dataset(out.string(), {"a"}, {}), Error);
  EXPECT_FALSE(fs::exists(out / "train.jsonl"));
}

}  // namespace
}  // namespace zerotune
