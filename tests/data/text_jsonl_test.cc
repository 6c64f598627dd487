#include "data/text_jsonl.h"

#include "core/files.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/check.h"

namespace zerotune {
namespace {

namespace fs = std::filesystem;

#define EXPECT_HAS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

// A fresh folder per test, removed afterwards.
class TextJsonlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("zerotune_text_jsonl_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string file(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The message of the zerotune::Error that reading `path` throws.
std::string read_error(const std::string& path, const std::string& field = "input",
                       int64_t max_line_bytes = kMaxJsonlLineBytes) {
  try {
    TextJsonlReader reader(path, field, max_line_bytes);
    std::string text;
    while (reader.next(text)) {
    }
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an error reading " << path;
  return "";
}

TEST_F(TextJsonlTest, ReadsRowsAndSkipsBlankLines) {
  const std::string p = file("d.jsonl",
                             "{\"input\": \"one\"}\n"
                             "\n"
                             "   \t\r\n"
                             "{\"input\": \"two\\nlines\", \"other\": 3}\r\n"
                             "{\"input\": \"caf\xC3\xA9\"}");  // no final newline
  TextJsonlReader reader(p);
  std::string text;
  ASSERT_TRUE(reader.next(text));
  EXPECT_EQ(text, "one");
  EXPECT_EQ(reader.line(), 1);
  ASSERT_TRUE(reader.next(text));
  EXPECT_EQ(text, "two\nlines");
  EXPECT_EQ(reader.line(), 4);
  EXPECT_EQ(reader.where(), p + ":4");
  ASSERT_TRUE(reader.next(text));
  EXPECT_EQ(text, "caf\xC3\xA9");
  EXPECT_EQ(reader.line(), 5);
  EXPECT_FALSE(reader.next(text));
  EXPECT_EQ(reader.rows(), 3);
  EXPECT_EQ(read_text_jsonl(p), (std::vector<std::string>{"one", "two\nlines", "caf\xC3\xA9"}));
}

TEST_F(TextJsonlTest, OtherField) {
  const std::string p = file("d.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\", \"input\": 1}\n");
  EXPECT_EQ(read_text_jsonl(p, "text"), (std::vector<std::string>{"a", "b"}));
}

// Lines longer than the reader's 64 KiB chunks, split at every kind of boundary.
TEST_F(TextJsonlTest, LinesLongerThanTheReadBuffer) {
  std::string bytes;
  std::vector<std::string> expected;
  for (size_t n : {size_t{70000}, size_t{1}, size_t{65536 - 13}, size_t{200000}}) {
    expected.push_back(std::string(n, 'x'));
    bytes += "{\"input\": \"" + expected.back() + "\"}\n";
  }
  EXPECT_EQ(read_text_jsonl(file("long.jsonl", bytes)), expected);
}

TEST_F(TextJsonlTest, MalformedJsonNamesFileAndLine) {
  const std::string p = file("bad.jsonl", "{\"input\": \"a\"}\n\n{\"input\": \"b\",}\n");
  EXPECT_HAS(read_error(p), p + ":3:");
}

TEST_F(TextJsonlTest, NotAnObject) {
  const std::string p = file("bad.jsonl", "{\"input\": \"a\"}\n[\"input\"]\n");
  const std::string e = read_error(p);
  EXPECT_HAS(e, p + ":2: expected a JSON object per line, got array");
}

TEST_F(TextJsonlTest, MissingField) {
  const std::string p = file("bad.jsonl", "{\"input\": \"a\"}\n{\"inputs\": \"b\"}\n");
  EXPECT_HAS(read_error(p), p + ":2: missing \"input\"");
  const std::string q = file("bad2.jsonl", "{\"input\": \"a\"}\n");
  EXPECT_HAS(read_error(q, "text"), q + ":1: missing \"text\"");
}

TEST_F(TextJsonlTest, NonStringValue) {
  const std::string p = file("bad.jsonl", "{\"input\": \"a\"}\n{\"input\": 12}\n");
  EXPECT_HAS(read_error(p), p + ":2: \"input\" must be a string, got number");
  const std::string q = file("bad2.jsonl", "{\"input\": null}\n");
  EXPECT_HAS(read_error(q), q + ":1: \"input\" must be a string, got null");
}

TEST_F(TextJsonlTest, EmptyDataset) {
  EXPECT_HAS(read_error(file("empty.jsonl", "")), "empty.jsonl: no rows");
  EXPECT_HAS(read_error(file("blank.jsonl", "\n  \n\r\n")), "blank.jsonl: no rows");
}

TEST_F(TextJsonlTest, OverlongLine) {
  const std::string p =
      file("big.jsonl", "{\"input\": \"a\"}\n{\"input\": \"" + std::string(100, 'y') + "\"}\n");
  EXPECT_HAS(read_error(p, "input", 64), p + ":2: line is longer than 64 bytes");
  // The same file is fine under the default bound.
  EXPECT_EQ(read_text_jsonl(p).size(), 2u);
}

TEST_F(TextJsonlTest, MissingFile) {
  EXPECT_HAS(read_error(path("nope.jsonl")), "nope.jsonl: cannot open");
}

TEST_F(TextJsonlTest, WriterBytesAndRoundTrip) {
  const std::vector<std::string> texts = {"plain", "quote \" and \\ backslash", "two\nlines\ttab",
                                          "<START_Q>caf\xC3\xA9<END_A>"};
  const std::string p = path("out.jsonl");
  write_text_jsonl(p, texts);
  EXPECT_EQ(slurp(p),
            "{\"input\": \"plain\"}\n"
            "{\"input\": \"quote \\\" and \\\\ backslash\"}\n"
            "{\"input\": \"two\\nlines\\ttab\"}\n"
            "{\"input\": \"<START_Q>caf\xC3\xA9<END_A>\"}\n");
  EXPECT_EQ(read_text_jsonl(p), texts);
  EXPECT_FALSE(fs::exists(p + ".tmp"));
  EXPECT_EQ(text_jsonl_line("x", "text"), "{\"text\": \"x\"}\n");
}

TEST_F(TextJsonlTest, UncommittedWriteLeavesOldFile) {
  const std::string p = file("keep.jsonl", "{\"input\": \"old\"}\n");
  {
    TextJsonlWriter writer(p);
    writer.write("new");
    EXPECT_TRUE(fs::exists(p + ".tmp"));
    // Destroyed without commit(): as when an error is thrown half-way.
  }
  EXPECT_EQ(slurp(p), "{\"input\": \"old\"}\n");
  EXPECT_FALSE(fs::exists(p + ".tmp"));
}

TEST_F(TextJsonlTest, FinishThenCommit) {
  const std::string p = path("a.txt");
  AtomicFile f(p);
  f.write("hello ");
  f.write("world");
  f.finish();
  EXPECT_FALSE(fs::exists(p));  // complete but not yet visible
  f.commit();
  EXPECT_EQ(slurp(p), "hello world");
  write_file_atomically(p, "again");
  EXPECT_EQ(slurp(p), "again");
}

TEST_F(TextJsonlTest, WriterErrorNamesFile) {
  try {
    AtomicFile f(path("no/such/dir/x.jsonl"));
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_HAS(e.what(), "x.jsonl: cannot create");
  }
}

}  // namespace
}  // namespace zerotune
