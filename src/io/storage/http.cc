#include "io/storage/http.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "io/storage/credentials.h"
#include "io/storage/env.h"

namespace zerotune::storage {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct Exchange {
  const HttpRequest* request = nullptr;
  const BodySink* sink = nullptr;
  CURL* curl = nullptr;
  HttpResponse* response = nullptr;
  std::ifstream body_file;
  int64_t body_sent = 0;
  std::string sink_error;  // an exception from the sink, carried across curl's C frames
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  std::string line(data, size * count);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {
    ex->response->headers.clear();  // a new response in a redirect chain (or after 100)
    return size * count;
  }
  const size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = lower(line.substr(0, colon));
    size_t v = colon + 1;
    while (v < line.size() && line[v] == ' ') ++v;
    ex->response->headers.emplace_back(name, line.substr(v));
    ex->response->all_headers.emplace_back(std::move(name), line.substr(v));
  }
  return size * count;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  long status = 0;
  curl_easy_getinfo(ex->curl, CURLINFO_RESPONSE_CODE, &status);
  const std::string_view bytes(data, size * count);
  if (ex->sink && *ex->sink && status >= 200 && status < 300) {
    try {
      (*ex->sink)(status, bytes);
    } catch (const std::exception& e) {
      ex->sink_error = e.what();
      return 0;  // makes curl abort with CURLE_WRITE_ERROR
    }
  } else if (ex->response->body.size() < (16 << 20) || status / 100 == 2) {
    ex->response->body.append(bytes);
  }
  return size * count;
}

size_t on_read(char* buffer, size_t size, size_t count, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  const HttpRequest& r = *ex->request;
  const int64_t total = r.body_file.empty() ? static_cast<int64_t>(r.body.size()) : r.body_length;
  const int64_t n = std::min<int64_t>(static_cast<int64_t>(size * count), total - ex->body_sent);
  if (n <= 0) return 0;
  if (r.body_file.empty()) {
    std::copy_n(r.body.data() + ex->body_sent, n, buffer);
  } else {
    ex->body_file.read(buffer, n);
    if (ex->body_file.gcount() != n) return CURL_READFUNC_ABORT;
  }
  ex->body_sent += n;
  return static_cast<size_t>(n);
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// One handle per thread, reset between requests, so that connections are kept alive.
CURL* thread_handle() {
  struct Holder {
    CURL* curl = nullptr;
    ~Holder() {
      if (curl) curl_easy_cleanup(curl);
    }
  };
  thread_local Holder holder;
  if (!holder.curl) {
    global_init();
    holder.curl = curl_easy_init();
    ZT_CHECK(holder.curl, "libcurl: cannot create a handle");
  } else {
    curl_easy_reset(holder.curl);
  }
  return holder.curl;
}

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return "";
}

std::string HttpResponse::any_header(std::string_view name) const {
  for (const auto& [n, v] : all_headers) {
    if (n == name) return v;
  }
  return "";
}

std::string unquote_etag(std::string etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return etag;
}

HttpResponse http_perform(const HttpRequest& request, const BodySink& sink) {
  HttpResponse response;
  Exchange ex;
  ex.request = &request;
  ex.sink = &sink;
  ex.response = &response;
  ex.curl = thread_handle();
  CURL* c = ex.curl;
  if (!request.body_file.empty()) {
    ex.body_file.open(request.body_file, std::ios::binary);
    ZT_CHECK(ex.body_file, request.body_file, ": cannot open for upload");
    ex.body_file.seekg(request.body_offset);
  }
  curl_slist* headers = nullptr;
  for (const auto& [name, value] : request.headers) {
    headers = curl_slist_append(headers, (name + ": " + value).c_str());
  }
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &ex);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &ex);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  // S3 keys may hold "." and ".." segments: send the path exactly as signed.
  curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
  // A stalled connection (under 1 byte/s for a minute) counts as dropped.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "zerotune/" ZEROTUNE_VERSION);
  if (request.redirects == HttpRequest::Redirects::follow) {
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  }
  const bool has_body = request.method == "PUT" || request.method == "POST";
  if (request.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (has_body) {
    const int64_t size =
        request.body_file.empty() ? static_cast<int64_t>(request.body.size()) : request.body_length;
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &ex);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
    if (request.method != "PUT") curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  } else if (request.method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  char error_buffer[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_buffer);
  const CURLcode code = curl_easy_perform(c);
  curl_slist_free_all(headers);
  if (!ex.sink_error.empty()) throw Error(ex.sink_error);
  if (code != CURLE_OK) {
    const std::string detail = error_buffer[0] ? error_buffer : curl_easy_strerror(code);
    throw TransportError(redact(str(request.method, " ", request.url, ": ", detail)),
                         static_cast<int>(code));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

RetryClass classify_status(long status) {
  if (status >= 200 && status < 400) return RetryClass::success;
  if (status == 408 || status == 429 || status >= 500) return RetryClass::retry;
  return RetryClass::fail;
}

bool is_retryable_transport(int curl_code) {
  switch (static_cast<CURLcode>(curl_code)) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

RetryPolicy retry_policy_from_env() {
  RetryPolicy p;
  if (const auto retries = env_integer("ZEROTUNE_STORAGE_RETRIES", 0, 100)) {
    p.max_attempts = static_cast<int>(*retries) + 1;
  }
  if (const auto base = env_integer("ZEROTUNE_STORAGE_RETRY_BASE_MS", 0, 60000)) {
    p.base_delay_ms = *base;
  }
  return p;
}

int64_t backoff_delay_ms(const RetryPolicy& policy, int attempt, double jitter) {
  int64_t delay = policy.base_delay_ms;
  for (int i = 1; i < attempt && delay < policy.max_delay_ms; ++i) delay *= 2;
  delay = std::min(delay, policy.max_delay_ms);
  return static_cast<int64_t>(static_cast<double>(delay) * (0.5 + 0.5 * jitter));
}

HttpResponse with_retries(const RetryPolicy& policy, const std::string& what,
                          const std::function<HttpResponse()>& attempt) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> jitter(0.0, 1.0);
  for (int n = 1;; ++n) {
    std::string failure;
    try {
      HttpResponse r = attempt();
      if (classify_status(r.status) != RetryClass::retry || n >= policy.max_attempts) return r;
      failure = str("HTTP ", r.status);
    } catch (const TransportError& e) {
      if (!is_retryable_transport(e.curl_code()) || n >= policy.max_attempts) {
        throw TransportError(str(e.what(), " (after ", n, n == 1 ? " attempt)" : " attempts)"),
                             e.curl_code());
      }
      failure = e.what();
    }
    const int64_t delay = backoff_delay_ms(policy, n, jitter(rng));
    std::fprintf(stderr, "zerotune: %s: %s; retrying in %lld ms (attempt %d of %d)\n",
                 redact(what).c_str(), redact(failure).c_str(), static_cast<long long>(delay),
                 n + 1, policy.max_attempts);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
  }
}

}  // namespace zerotune::storage
