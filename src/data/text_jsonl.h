// Text datasets as JSON Lines: one object per line with a string field ("input" by default), the
// format of train.jsonl / test.jsonl. Reading streams line by line, so a dataset larger than
// memory can be tokenised; writing goes to `path.tmp` and is renamed into place when complete, so
// a failed or interrupted write never leaves a half-written dataset under the real name.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"

namespace zerotune {

// No sane dataset row comes near this; a longer line means a corrupt or wrong file, and the bound
// keeps a file without newlines from being read into memory whole.
inline constexpr int64_t kMaxJsonlLineBytes = int64_t{16} << 20;

// Streams the non-blank lines of a JSONL file, each parsed as a JSON object. Errors throw
// zerotune::Error naming `path:line` and what was expected.
class JsonlReader {
 public:
  explicit JsonlReader(std::string path, int64_t max_line_bytes = kMaxJsonlLineBytes);
  ~JsonlReader();
  JsonlReader(const JsonlReader&) = delete;
  JsonlReader& operator=(const JsonlReader&) = delete;

  // The next object into `row`; false at the end of the file.
  bool next(json::Value& row);
  const std::string& path() const { return path_; }
  int64_t line() const { return line_no_; }  // 1-based line of the row last returned
  std::string where() const;                 // "path:line" for error messages

 private:
  bool read_line(std::string& line);  // false at end of file

  std::string path_;
  int64_t max_line_bytes_;
  std::FILE* file_ = nullptr;
  std::vector<char> buffer_;  // bytes read from the file but not yet returned as lines
  size_t buffer_pos_ = 0, buffer_end_ = 0;
  int64_t line_no_ = 0;
};

// Streams the string field `field` of every row. A dataset without rows is an error (raised when
// the end of the file is reached), since training on nothing is never what was meant.
class TextJsonlReader {
 public:
  explicit TextJsonlReader(std::string path, std::string field = "input",
                           int64_t max_line_bytes = kMaxJsonlLineBytes);

  bool next(std::string& text);  // false at the end of the file
  int64_t rows() const { return rows_; }
  int64_t line() const { return reader_.line(); }
  std::string where() const { return reader_.where(); }

 private:
  JsonlReader reader_;
  std::string field_;
  int64_t rows_ = 0;
};

// Every text of the file, for datasets that fit in memory.
std::vector<std::string> read_text_jsonl(const std::string& path,
                                         const std::string& field = "input");

// A file written under `path.tmp` and renamed over `path` by commit(); destroyed uncommitted, it
// removes the temporary and leaves whatever was at `path` untouched.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::string_view bytes);
  // Flushes, fsyncs and closes the temporary. Separate from commit() so that a set of files can
  // all be made complete before any of them is renamed into place.
  void finish();
  void commit();  // finish() when not yet done, then rename over the final path
  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void fail_io(const char* action) const;

  std::string path_, tmp_path_;
  std::FILE* file_ = nullptr;
  bool committed_ = false;
};

// Writes one {"<field>": "<text>"} line per text, atomically (see AtomicFile).
class TextJsonlWriter {
 public:
  explicit TextJsonlWriter(std::string path, std::string field = "input");

  void write(std::string_view text);
  void finish() { file_.finish(); }
  void commit() { file_.commit(); }
  int64_t rows() const { return rows_; }

 private:
  AtomicFile file_;
  std::string field_;
  int64_t rows_ = 0;
};

// The line write() emits for `text`, newline included: {"input": "..."}\n
std::string text_jsonl_line(std::string_view text, std::string_view field = "input");

void write_text_jsonl(const std::string& path, const std::vector<std::string>& texts,
                      const std::string& field = "input");

}  // namespace zerotune
