#include "data/text_jsonl.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "core/check.h"

namespace zerotune {

namespace {
constexpr size_t kReadChunk = size_t{1} << 16;

bool is_blank(const std::string& line) {
  return line.find_first_not_of(" \t\r") == std::string::npos;
}
}  // namespace

// ---- reading ----------------------------------------------------------------------------------

JsonlReader::JsonlReader(std::string path, int64_t max_line_bytes)
    : path_(std::move(path)), max_line_bytes_(max_line_bytes), buffer_(kReadChunk) {
  ZT_CHECK(max_line_bytes_ > 0, "JsonlReader: max_line_bytes must be positive, got ",
           max_line_bytes_);
  file_ = std::fopen(path_.c_str(), "rb");
  ZT_CHECK(file_, path_, ": cannot open: ", std::strerror(errno));
}

JsonlReader::~JsonlReader() {
  if (file_) std::fclose(file_);
}

std::string JsonlReader::where() const {
  return str(path_, ":", line_no_);
}

// Own buffering rather than std::getline: getline would first pull a line of any length into
// memory, and the length bound is there precisely for files that are not line-structured.
bool JsonlReader::read_line(std::string& line) {
  line.clear();
  bool got_any = false;
  for (;;) {
    if (buffer_pos_ == buffer_end_) {
      buffer_end_ = std::fread(buffer_.data(), 1, buffer_.size(), file_);
      buffer_pos_ = 0;
      if (buffer_end_ == 0) {
        ZT_CHECK(!std::ferror(file_), path_, ":", line_no_ + 1, ": read error");
        if (got_any) ++line_no_;  // a last line without a newline
        return got_any;
      }
    }
    got_any = true;
    const char* start = buffer_.data() + buffer_pos_;
    const size_t available = buffer_end_ - buffer_pos_;
    const void* newline = std::memchr(start, '\n', available);
    const size_t take =
        newline ? static_cast<size_t>(static_cast<const char*>(newline) - start) : available;
    ZT_CHECK(static_cast<int64_t>(line.size() + take) <= max_line_bytes_, path_, ":", line_no_ + 1,
             ": line is longer than ", max_line_bytes_,
             " bytes; expected one JSON object per line (is this a JSONL file?)");
    line.append(start, take);
    buffer_pos_ += take;
    if (newline) {
      ++buffer_pos_;
      ++line_no_;
      return true;
    }
  }
}

bool JsonlReader::next(json::Value& row) {
  std::string line;
  while (read_line(line)) {
    if (is_blank(line)) continue;
    row = json::parse_line(line, path_, line_no_);
    ZT_CHECK(row.is_object(), where(), ": expected a JSON object per line, got ",
             json::Value::kind_name(row.kind()));
    return true;
  }
  return false;
}

TextJsonlReader::TextJsonlReader(std::string path, std::string field, int64_t max_line_bytes)
    : reader_(std::move(path), max_line_bytes), field_(std::move(field)) {}

bool TextJsonlReader::next(std::string& text) {
  json::Value row;
  if (!reader_.next(row)) {
    ZT_CHECK(rows_ > 0, reader_.path(),
             ": no rows; expected one JSON object per line with a string \"", field_, "\"");
    return false;
  }
  const json::Value* value = row.find(field_);
  ZT_CHECK(value, reader_.where(), ": missing \"", field_, "\"; expected {\"", field_,
           "\": \"...\"}");
  text = value->as_string(str(reader_.where(), ": \"", field_, "\""));
  ++rows_;
  return true;
}

std::vector<std::string> read_text_jsonl(const std::string& path, const std::string& field) {
  TextJsonlReader reader(path, field);
  std::vector<std::string> texts;
  std::string text;
  while (reader.next(text)) texts.push_back(std::move(text));
  return texts;
}

// ---- writing ----------------------------------------------------------------------------------

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)), tmp_path_(path_ + ".tmp") {
  file_ = std::fopen(tmp_path_.c_str(), "wb");
  if (!file_) fail_io("cannot create");
}

AtomicFile::~AtomicFile() {
  if (file_) std::fclose(file_);
  if (!committed_) ::unlink(tmp_path_.c_str());
}

void AtomicFile::fail_io(const char* action) const {
  fail(str(path_, ": ", action, " ", tmp_path_, ": ", std::strerror(errno)));
}

void AtomicFile::write(std::string_view bytes) {
  ZT_CHECK(file_, path_, ": write after finish()");
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) fail_io("cannot write");
}

void AtomicFile::finish() {
  if (!file_) return;
  // fsync before the rename: otherwise a crash can leave the new name pointing at empty data.
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) fail_io("cannot write");
  std::FILE* file = std::exchange(file_, nullptr);
  if (std::fclose(file) != 0) fail_io("cannot close");
}

void AtomicFile::commit() {
  ZT_CHECK(!committed_, path_, ": committed twice");
  finish();
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) fail_io("cannot rename");
  committed_ = true;
  // Makes the rename durable. Best effort: some file systems refuse fsync on a directory, and the
  // file is already complete under its name.
  const size_t slash = path_.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : path_.substr(0, slash + 1);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
}

std::string text_jsonl_line(std::string_view text, std::string_view field) {
  std::string line = "{";
  line += json::quote(field);
  line += ": ";
  line += json::quote(text);
  line += "}\n";
  return line;
}

TextJsonlWriter::TextJsonlWriter(std::string path, std::string field)
    : file_(std::move(path)), field_(std::move(field)) {}

void TextJsonlWriter::write(std::string_view text) {
  file_.write(text_jsonl_line(text, field_));
  ++rows_;
}

void write_text_jsonl(const std::string& path, const std::vector<std::string>& texts,
                      const std::string& field) {
  TextJsonlWriter writer(path, field);
  for (const std::string& text : texts) writer.write(text);
  writer.commit();
}

}  // namespace zerotune
