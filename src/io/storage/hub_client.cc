#include "io/storage/hub_client.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "io/storage/credentials.h"
#include "io/storage/crypto.h"

namespace zerotune::storage {

namespace fs = std::filesystem;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string strip_etag(std::string etag) {
  if (etag.rfind("W/", 0) == 0) return "";  // a weak ETag says nothing about the bytes
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return etag;
}

bool is_hex(const std::string& s, size_t n) {
  return s.size() == n &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(c) != 0; });
}

}  // namespace

const std::vector<std::string>& hub_model_files() {
  static const std::vector<std::string> files = {
      "config.json",           "generation_config.json",  "model.safetensors.index.json",
      "model.safetensors",     "tokenizer.model",         "tokenizer.json",
      "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"};
  return files;
}

bool is_pickled_weights(const std::string& name) {
  for (const char* ext : {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"}) {
    const std::string e = ext;
    if (name.size() >= e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0) {
      return true;
    }
  }
  return false;
}

HubClient::HubClient(std::string endpoint, std::string token, RetryPolicy retry)
    : endpoint_(std::move(endpoint)), token_(std::move(token)), retry_(retry) {
  while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
  ZT_CHECK(endpoint_.rfind("http://", 0) == 0 || endpoint_.rfind("https://", 0) == 0,
           "HF_ENDPOINT '", endpoint_, "' must start with http:// or https://");
  register_secret(token_);
}

HubClient HubClient::from_environment() {
  std::string endpoint = env("HF_ENDPOINT");
  if (endpoint.empty()) endpoint = "https://huggingface.co";
  return HubClient(endpoint, env("HF_TOKEN"), retry_policy_from_env());
}

std::string HubClient::file_url(const HubRepo& repo, const std::string& file) const {
  return endpoint_ + "/" + repo.id + "/resolve/" + uri_encode(repo.revision, SlashMode::encode) +
         "/" + uri_encode(file, SlashMode::keep);
}

HubClient::Found HubClient::download(const HubRepo& repo, const std::string& file,
                                     const std::string& path) {
  ZT_CHECK(!is_pickled_weights(file), file, ": refusing to download pickled weights");
  const std::string url = file_url(repo, file);
  const std::string partial = path + ".partial";
  HttpResponse r;
  std::ofstream out;
  int64_t have = 0;
  bool first_chunk = true;
  auto sink = [&](long status, std::string_view bytes) {
    if (first_chunk && status == 200 && have > 0) {  // range ignored: start over
      out.close();
      out.open(partial, std::ios::binary | std::ios::trunc);
      have = 0;
    }
    first_chunk = false;
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ZT_CHECK(out, partial, ": write failed (disk full?)");
  };
  // Each round resumes from what the partial file holds, so a dropped connection costs only the
  // bytes not yet received.
  for (int round = 1;; ++round) {
    if (out.is_open()) out.close();
    std::error_code ec;
    have = fs::exists(partial) ? static_cast<int64_t>(fs::file_size(partial, ec)) : 0;
    out.open(partial, std::ios::binary | std::ios::app);
    ZT_CHECK(out, partial, ": cannot open for writing");
    first_chunk = true;
    HttpRequest request;
    request.url = url;
    request.redirects = HttpRequest::Redirects::follow;
    if (!token_.empty()) request.headers.emplace_back("authorization", "Bearer " + token_);
    if (have > 0) request.headers.emplace_back("range", str("bytes=", have, "-"));
    std::string failure;
    try {
      r = http_perform(request, sink);
      if (classify_status(r.status) != RetryClass::retry) break;
      failure = str("HTTP ", r.status);
    } catch (const TransportError& e) {
      if (!is_retryable_transport(e.curl_code()) || round >= retry_.max_attempts) {
        throw TransportError(str(e.what(), " (after ", round, " attempts)"), e.curl_code());
      }
      failure = e.what();
    }
    if (round >= retry_.max_attempts) break;
    const int64_t delay = backoff_delay_ms(retry_, round, 0.75);
    std::fprintf(stderr, "zerotune: GET %s: %s; resuming in %lld ms (attempt %d of %d)\n",
                 redact(url).c_str(), redact(failure).c_str(), static_cast<long long>(delay),
                 round + 1, retry_.max_attempts);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
  }
  out.close();
  if (r.status == 404) {
    fs::remove(partial);
    return Found::no;
  }
  if (r.status == 401 || r.status == 403) {
    fs::remove(partial);
    fail(redact(str("GET ", url, ": HTTP ", r.status, ": ",
                    token_.empty()
                        ? "the repo is gated, private or missing; set HF_TOKEN to a token "
                          "with access to it"
                        : "HF_TOKEN was refused (no access to this repo, or expired)")));
  }
  std::error_code ec;
  const int64_t got = static_cast<int64_t>(fs::file_size(partial, ec));
  // 416: the partial file was already complete.
  ZT_CHECK(r.status == 200 || r.status == 206 || r.status == 416, redact(url), ": HTTP ", r.status);
  const std::string linked_size = r.any_header("x-linked-size");
  std::string size_header = linked_size;
  if (size_header.empty() && r.status == 200) size_header = r.header("content-length");
  if (!size_header.empty()) {
    const int64_t want = std::atoll(size_header.c_str());
    ZT_CHECK(got == want, url, ": downloaded ", got, " bytes, expected ", want);
  }
  // LFS files: X-Linked-Etag is the sha256 of the bytes. Small files: the ETag is the git blob id.
  const std::string linked = strip_etag(r.any_header("x-linked-etag"));
  const std::string etag = strip_etag(r.header("etag"));
  std::string expected, actual, kind;
  if (is_hex(linked, 64) || is_hex(etag, 64)) {
    expected = is_hex(linked, 64) ? linked : etag;
    actual = to_hex(hash_file(HashKind::sha256, partial));
    kind = "sha256";
  } else if (is_hex(etag, 40)) {
    expected = etag;
    actual = git_blob_sha1_hex_of_file(partial);
    kind = "git blob id";
  }
  if (!expected.empty() && actual != expected) {
    fs::remove(partial);
    fail(str(url, ": ", kind, " of the downloaded bytes is ", actual, ", the Hub says ", expected,
             "; the partial file was removed"));
  }
  fs::rename(partial, path);
  return Found::yes;
}

}  // namespace zerotune::storage
