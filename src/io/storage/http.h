// One HTTP exchange over libcurl, and the retry loop around it. Transport failures (refused or
// dropped connections, timeouts) throw TransportError; HTTP statuses come back in the response
// for the caller to judge. Messages never include request headers (they carry signatures and
// tokens) and pass through redact().
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/check.h"

namespace zerotune::storage {

class TransportError : public Error {
 public:
  TransportError(const std::string& what, int curl_code) : Error(what), curl_code_(curl_code) {}
  int curl_code() const { return curl_code_; }

 private:
  int curl_code_;
};

struct HttpRequest {
  std::string method = "GET";  // GET, HEAD, PUT, POST, DELETE
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  // The body: `body` in memory, or `body_file` bytes [body_offset, body_offset + body_length).
  std::string body;
  std::string body_file;
  int64_t body_offset = 0;
  int64_t body_length = 0;
  enum class Redirects : uint8_t { refuse, follow } redirects = Redirects::refuse;
};

struct HttpResponse {
  long status = 0;
  // Lower-case names. `headers` are the final response's; `all_headers` those of every response
  // in a redirect chain, in order (the Hub puts file hashes on the redirect).
  std::vector<std::pair<std::string, std::string>> headers, all_headers;
  std::string body;                                     // unless a sink took it
  std::string header(std::string_view name) const;      // "" when absent
  std::string any_header(std::string_view name) const;  // first in all_headers
};

// An ETag as headers and S3 listings quote it ("abc"), without the quotes. A weak ETag
// (W/"abc") is returned as it is.
std::string unquote_etag(std::string etag);

// Receives the body of a 2xx response; other responses' bodies (error documents) stay in
// HttpResponse::body.
// `status` is the response's (200, or 206 for a range).
using BodySink = std::function<void(long status, std::string_view bytes)>;

HttpResponse http_perform(const HttpRequest& request, const BodySink& sink = nullptr);

enum class RetryClass : uint8_t { success, retry, fail };
// 2xx and 3xx succeed; 408, 429 and 5xx are worth another try; other statuses fail at once.
RetryClass classify_status(long status);
// Connection refused, reset, dropped mid-body, timeouts: worth another try.
bool is_retryable_transport(int curl_code);

struct RetryPolicy {
  int max_attempts = 6;
  int64_t base_delay_ms = 250;  // doubles per attempt, with jitter
  int64_t max_delay_ms = 20000;
};
// The defaults, overridden by ZEROTUNE_STORAGE_RETRIES and ZEROTUNE_STORAGE_RETRY_BASE_MS.
RetryPolicy retry_policy_from_env();
// Delay before attempt `attempt` (1 = the first retry): base * 2^(attempt-1), capped, times a
// jitter factor in [0.5, 1] from `jitter` in [0, 1).
int64_t backoff_delay_ms(const RetryPolicy& policy, int attempt, double jitter);

// Calls `attempt` until it returns a response that classify_status does not call `retry`, or
// throws something other than a retryable TransportError, or attempts run out (then the last
// response is returned / the last error rethrown, with the number of attempts added). `what`
// names the request in messages ("PUT s3://bucket/key").
HttpResponse with_retries(const RetryPolicy& policy, const std::string& what,
                          const std::function<HttpResponse()>& attempt);

}  // namespace zerotune::storage
