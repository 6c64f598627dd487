#include "io/storage/hub_client.h"

#include <cstdlib>
#include <optional>

#include "io/storage/credentials.h"
#include "io/storage/crypto.h"
#include "io/storage/download.h"
#include "io/storage/env.h"

namespace zerotune::storage {

namespace {

std::string strong_etag(const std::string& header) {
  if (header.rfind("W/", 0) == 0) return "";  // a weak ETag says nothing about the bytes
  return unquote_etag(header);
}

// The size the Hub announces: X-Linked-Size on the redirect for LFS files, else a whole body's
// Content-Length; -1 when neither is there.
int64_t hub_promised_size(const HttpResponse& r) {
  std::string size_header = r.any_header("x-linked-size");
  if (size_header.empty() && r.status == 200) size_header = r.header("content-length");
  return size_header.empty() ? -1 : std::atoll(size_header.c_str());
}

// LFS files: X-Linked-Etag (or an ETag of 64 hex digits) is the sha256 of the bytes. Small files:
// the ETag is the git blob id. Other ETags say nothing we can check.
std::optional<std::string> verify_hub_file(const std::string& file, const HttpResponse& r) {
  const std::string linked = strong_etag(r.any_header("x-linked-etag"));
  const std::string etag = strong_etag(r.header("etag"));
  std::string expected, actual, kind;
  if (is_hex_digest(linked, 64) || is_hex_digest(etag, 64)) {
    expected = is_hex_digest(linked, 64) ? linked : etag;
    actual = to_hex(hash_file(HashKind::sha256, file));
    kind = "sha256";
  } else if (is_hex_digest(etag, 40)) {
    expected = etag;
    actual = git_blob_sha1_hex_of_file(file);
    kind = "git blob id";
  }
  if (kind.empty() || actual == expected) return std::nullopt;
  return str(kind, " of the downloaded bytes is ", actual, ", the Hub says ", expected);
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
  std::string endpoint = env_or_empty("HF_ENDPOINT");
  if (endpoint.empty()) endpoint = "https://huggingface.co";
  return HubClient(endpoint, env_or_empty("HF_TOKEN"), retry_policy_from_env());
}

std::string HubClient::file_url(const HubRepo& repo, const std::string& file) const {
  return endpoint_ + "/" + repo.id + "/resolve/" + uri_encode(repo.revision, SlashMode::encode) +
         "/" + uri_encode(file, SlashMode::keep);
}

HubClient::Found HubClient::download(const HubRepo& repo, const std::string& file,
                                     const std::string& path) {
  ZT_CHECK(!is_pickled_weights(file), file, ": refusing to download pickled weights");
  const std::string url = file_url(repo, file);
  ResumableDownload d;
  d.name = url;
  d.path = path;
  d.make_request = [&](const HeaderList& resume_headers) {
    HttpRequest request;
    request.url = url;
    request.redirects = HttpRequest::Redirects::follow;  // LFS files live on a CDN
    if (!token_.empty()) request.headers.emplace_back("authorization", "Bearer " + token_);
    request.headers.insert(request.headers.end(), resume_headers.begin(), resume_headers.end());
    return request;
  };
  d.explain_status = [&](const HttpResponse& r) -> std::string {
    if (r.status != 401 && r.status != 403) return "";
    return token_.empty() ? ": the repo is gated, private or missing; set HF_TOKEN to a token with "
                            "access to it"
                          : ": HF_TOKEN was refused (no access to this repo, or expired)";
  };
  d.promised_size = hub_promised_size;
  d.verify = verify_hub_file;
  d.missing = ResumableDownload::Missing::report;
  return download_resumable(d, retry_) == DownloadResult::saved ? Found::yes : Found::no;
}

}  // namespace zerotune::storage
