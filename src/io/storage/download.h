// One resumable download, shared by the S3 and Hub clients. Bytes arrive in `<path>.partial`;
// every attempt continues that file with a ranged GET, so a dropped connection costs only the
// bytes not yet received. Attempts are retried as with_retries() retries any request (the
// ZEROTUNE_STORAGE_RETRIES / ZEROTUNE_STORAGE_RETRY_BASE_MS policy). The finished file is checked
// for its size and by the caller's verifier, and renamed to `path` only when both pass, so `path`
// never holds unverified bytes. The clients supply only what differs: the request (URL, signing or
// auth headers), what a refused status means, and which checksum applies.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/storage/http.h"

namespace zerotune::storage {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct ResumableDownload {
  // The object in messages ("s3://bucket/key", a Hub file URL); passed through redact().
  std::string name;
  // Where the verified file goes; until then the bytes are in `path`.partial.
  std::string path;
  // The object's size when known before the first request (from a listing); -1 when not. A
  // partial file longer than this is discarded, one of exactly this size is not fetched again.
  int64_t known_size = -1;
  // The version the partial bytes belong to (an ETag, without quotes), sent as If-Match with
  // every resumed range: a server holding another version answers 412 and the download starts
  // over instead of splicing two versions. Empty: ranges are sent without a condition.
  std::string etag;

  // The request of one attempt with `resume_headers` (Range and If-Match; empty for the whole
  // object) among its headers. Called anew for every attempt, so signed requests carry the
  // attempt's own date.
  std::function<HttpRequest(const HeaderList& resume_headers)> make_request;
  // Appended to "GET <name>: HTTP <status>" when the download ends on an error status: what the
  // status means here (an S3 error document, whether HF_TOKEN was set). May be empty.
  std::function<std::string(const HttpResponse& final)> explain_status;
  // The size the final response promises (-1: none), checked when known_size is -1. May be empty.
  std::function<int64_t(const HttpResponse& final)> promised_size;
  // Judges the complete bytes in `file`: nullopt when they are right or nothing says what they
  // should be, else what is wrong ("sha256 of the downloaded bytes is ..., expected ...").
  // May be empty.
  std::function<std::optional<std::string>(const std::string& file, const HttpResponse& final)>
      verify;

  // A 404: an error, or a result for callers that probe for optional files.
  enum class Missing : uint8_t { fail, report } missing = Missing::fail;
};

enum class DownloadResult : uint8_t { saved, missing };

// The progress line a download shows on a terminal (stderr a tty; nothing otherwise, as
// training's step lines): "model.safetensors: 1.25 GiB of 13.48 GiB (9%), 45.2 MiB/s, ETA 4m32s".
// `done` counts the bytes held (a resumed download's earlier ones too), `received` those this run
// fetched in `seconds`, which set the rate; without a `total` (-1) the line has no share or ETA.
std::string format_download_progress(std::string_view file, int64_t done, int64_t total,
                                     int64_t received, double seconds);

// Downloads as described above. Throws, naming `name` (or the request URL for transport errors)
// and never a secret: on a refused status (the partial file is removed), on retries exhausted
// (the partial file is kept for a later run to resume), on a wrong size, and on a failed
// verification (the partial file is removed). Returns `missing` on a 404 with Missing::report.
DownloadResult download_resumable(const ResumableDownload& download, const RetryPolicy& retry);

}  // namespace zerotune::storage
