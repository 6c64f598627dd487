#include "io/storage/download.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string_view>

#include "core/check.h"
#include "core/timer.h"
#include "io/storage/credentials.h"

namespace zerotune::storage {

namespace fs = std::filesystem;

namespace {

// A download's progress line, redrawn in place at most every kRedrawSeconds while stderr is a
// terminal (as training decides for its step line); ended with a newline once drawn. Downloads
// done before the first redraw (config files) print nothing.
class ProgressLine {
 public:
  ProgressLine(std::string file, int64_t total)
      : file_(std::move(file)), total_(total), tty_(isatty(2) == 1) {}
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;
  ~ProgressLine() {
    if (drawn_) std::fputc('\n', stderr);
  }
  void set_held(int64_t bytes) { done_ = bytes; }
  void add(int64_t bytes) {
    // The rate counts from the first byte, not from the request (a server may think first).
    if (received_ == 0) timer_.reset();
    done_ += bytes;
    received_ += bytes;
    if (tty_ && timer_.seconds() >= next_draw_) draw();
  }
  // The final figures, drawn only where a line is already shown.
  void finish() {
    if (drawn_) draw();
  }

 private:
  static constexpr double kRedrawSeconds = 0.25;
  void draw() {
    const double seconds = timer_.seconds();
    next_draw_ = seconds + kRedrawSeconds;
    std::fprintf(stderr, "\r%s   ",
                 format_download_progress(file_, done_, total_, received_, seconds).c_str());
    std::fflush(stderr);
    drawn_ = true;
  }

  std::string file_;
  int64_t total_;
  bool tty_;
  bool drawn_ = false;
  int64_t done_ = 0, received_ = 0;
  Timer timer_;
  double next_draw_ = kRedrawSeconds;
};

// The `.partial` file a download appends to; `progress` follows the bytes it holds.
class PartialFile {
 public:
  PartialFile(std::string path, ProgressLine& progress)
      : path_(std::move(path)), progress_(progress) {}
  const std::string& path() const { return path_; }

  // Opens for appending and returns the bytes it holds. Opening creates it, so an empty object
  // (whose response has no body to write) still ends as an empty file.
  int64_t open() {
    close();
    out_.open(path_, std::ios::binary | std::ios::app);
    ZT_CHECK(out_, path_, ": cannot open for writing");
    progress_.set_held(size_on_disk());
    return size_on_disk();
  }
  // Drops the bytes held: what comes next is the object's beginning.
  void restart() {
    close();
    out_.open(path_, std::ios::binary | std::ios::trunc);
    ZT_CHECK(out_, path_, ": cannot open for writing");
    progress_.set_held(0);
  }
  void append(std::string_view bytes) {
    out_.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ZT_CHECK(out_, path_, ": write failed (disk full?)");
    progress_.add(static_cast<int64_t>(bytes.size()));
  }
  void close() {
    if (out_.is_open()) out_.close();
  }
  int64_t size_on_disk() const {
    std::error_code ec;
    const uintmax_t size = fs::file_size(path_, ec);
    return ec ? 0 : static_cast<int64_t>(size);
  }
  void remove() {
    close();
    std::error_code ec;
    fs::remove(path_, ec);
  }

 private:
  std::string path_;
  ProgressLine& progress_;
  std::ofstream out_;
};

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024.0 && unit < 4) bytes /= 1024.0, ++unit;
  char buf[32];
  std::snprintf(buf, sizeof(buf), unit == 0 ? "%.0f %s" : "%.2f %s", bytes, units[unit]);
  return buf;
}

// One GET of the object from byte `offset` on, appended to `partial`. A server that ignores the
// range answers 200 with the whole object: then those bytes replace the partial ones instead of
// following them.
HttpResponse get_from(const ResumableDownload& d, PartialFile& partial, int64_t offset) {
  HeaderList resume;
  if (offset > 0) {
    resume.emplace_back("range", str("bytes=", offset, "-"));
    if (!d.etag.empty()) resume.emplace_back("if-match", "\"" + d.etag + "\"");
  }
  bool first_chunk = true;
  auto sink = [&](long status, std::string_view bytes) {
    if (first_chunk && status == 200 && offset > 0) partial.restart();
    first_chunk = false;
    partial.append(bytes);
  };
  HttpResponse r = http_perform(d.make_request(resume), sink);
  // The same for a whole object with no bytes at all (the sink was never called).
  if (first_chunk && r.status == 200 && offset > 0) partial.restart();
  return r;
}

// One attempt: continues the partial file from where it ends. Status 0: the file already holds
// the known size, nothing was requested.
HttpResponse fetch_rest(const ResumableDownload& d, PartialFile& partial) {
  int64_t have = partial.open();
  if (d.known_size >= 0 && have > d.known_size) {  // not a prefix of this object
    partial.restart();
    have = 0;
  }
  if (d.known_size > 0 && have == d.known_size) return HttpResponse{};
  HttpResponse r = get_from(d, partial, have);
  if (r.status == 412 && have > 0) {
    // If-Match failed: the partial bytes are another version's. Without a range no condition is
    // sent, so this second request cannot answer 412 again.
    std::fprintf(stderr,
                 "zerotune: GET %s: the object changed since the partial download (HTTP 412); "
                 "starting over\n",
                 redact(d.name).c_str());
    partial.restart();
    r = get_from(d, partial, 0);
  }
  return r;
}

// Whether the final response leaves the object in the partial file: a whole or ranged body, no
// request needed, or 416 for a range starting at the end of a complete file.
bool holds_object(long status, int64_t held, int64_t known_size) {
  if (status == 0 || status == 200 || status == 206) return true;
  return status == 416 && (known_size < 0 || held == known_size);
}

[[noreturn]] void refuse(const ResumableDownload& d, const HttpResponse& r, int attempts,
                         PartialFile& partial) {
  const bool retries_ran_out = classify_status(r.status) == RetryClass::retry;
  // A refusal is final, and the bytes so far may belong to nothing the server still serves.
  // Retries that ran out are not: a later run resumes from those bytes.
  if (!retries_ran_out) partial.remove();
  const std::string detail = d.explain_status ? d.explain_status(r) : "";
  const std::string after =
      retries_ran_out ? str(" (after ", attempts, attempts == 1 ? " attempt)" : " attempts)") : "";
  fail(redact(str("GET ", d.name, ": HTTP ", r.status, detail, after)));
}

}  // namespace

std::string format_download_progress(std::string_view file, int64_t done, int64_t total,
                                     int64_t received, double seconds) {
  std::string line = str(file, ": ", human_bytes(static_cast<double>(done)));
  if (total > 0) {
    line += str(" of ", human_bytes(static_cast<double>(total)), " (",
                std::min<int64_t>(100, done * 100 / total), "%)");
  }
  const double rate = seconds > 0.0 ? static_cast<double>(received) / seconds : 0.0;
  line += ", " + human_bytes(rate) + "/s";
  if (total > 0 && rate > 0.0 && done < total) {
    line += ", ETA " + clock_text(static_cast<double>(total - done) / rate);
  }
  return line;
}

DownloadResult download_resumable(const ResumableDownload& d, const RetryPolicy& retry) {
  ZT_CHECK(d.make_request, "download_resumable: ", d.name, ": no request builder");
  ProgressLine progress(fs::path(d.path).filename().string(), d.known_size);
  PartialFile partial(d.path + ".partial", progress);
  int attempts = 0;
  const HttpResponse r = with_retries(retry, "GET " + d.name, [&] {
    ++attempts;
    return fetch_rest(d, partial);
  });
  partial.close();
  progress.finish();
  const int64_t got = partial.size_on_disk();
  if (r.status == 404 && d.missing == ResumableDownload::Missing::report) {
    partial.remove();
    return DownloadResult::missing;
  }
  if (!holds_object(r.status, got, d.known_size)) refuse(d, r, attempts, partial);

  const int64_t want = d.known_size >= 0 ? d.known_size : d.promised_size ? d.promised_size(r) : -1;
  ZT_CHECK(want < 0 || got == want, redact(d.name), ": downloaded ", got, " bytes, expected ", want,
           d.known_size >= 0 ? " (the size given before the download)"
                             : " (the size the server announced)");
  if (d.verify) {
    if (const std::optional<std::string> mismatch = d.verify(partial.path(), r)) {
      partial.remove();
      fail(redact(str(d.name, ": ", *mismatch, "; the partial file was removed")));
    }
  }
  std::error_code ec;
  fs::rename(partial.path(), d.path, ec);
  ZT_CHECK(!ec, partial.path(), ": cannot rename to ", d.path, " (", ec.message(), ")");
  return DownloadResult::saved;
}

}  // namespace zerotune::storage
