#include "io/storage/s3_client.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "io/storage/crypto.h"
#include "io/storage/download.h"
#include "io/storage/env.h"
#include "io/storage/s3_xml.h"
#include "io/storage/sigv4.h"

namespace zerotune::storage {

namespace fs = std::filesystem;
using Pairs = std::vector<std::pair<std::string, std::string>>;

namespace {

constexpr int64_t kMiB = 1LL << 20;
constexpr int64_t kMaxParts = 10000;
const char* kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

bool is_md5_hex(const std::string& etag) {
  return is_hex_digest(etag, 32);
}

std::string read_range(const std::string& path, int64_t offset, int64_t length) {
  std::ifstream in(path, std::ios::binary);
  ZT_CHECK(in, path, ": cannot open for upload");
  std::string bytes(static_cast<size_t>(length), '\0');
  in.seekg(offset);
  in.read(bytes.data(), length);
  ZT_CHECK(in.gcount() == length, path, ": expected ", length, " bytes at offset ", offset,
           ", read ", in.gcount(), " (did the file change during the upload?)");
  return bytes;
}

// What an error status means, after "<method> <url>: HTTP <status>": the S3 error document's
// code and message, and for 403 where the credentials came from.
std::string explain_s3_status(const HttpResponse& r, const Credentials& credentials) {
  const std::string detail = s3_error_summary(r.body);
  return str(detail.empty() ? "" : " (" + detail + ")",
             r.status == 403 ? "; check the credentials from " + credentials.source : "");
}

}  // namespace

int64_t choose_part_size(int64_t file_size, int64_t min_part_size) {
  ZT_CHECK(file_size >= 0 && min_part_size > 0, "choose_part_size: bad sizes ", file_size, ", ",
           min_part_size);
  int64_t part = std::max(min_part_size, (file_size + kMaxParts - 1) / kMaxParts);
  return (part + kMiB - 1) / kMiB * kMiB;
}

std::string multipart_etag(const std::vector<std::string>& raw_part_md5s) {
  std::string joined;
  for (const std::string& m : raw_part_md5s) joined += m;
  return to_hex(hash_bytes(HashKind::md5, joined)) + "-" + std::to_string(raw_part_md5s.size());
}

EtagCheck check_etag(const std::string& path, int64_t size, const std::string& etag,
                     int64_t min_part_size) {
  if (is_md5_hex(etag)) {
    return to_hex(hash_file(HashKind::md5, path)) == etag ? EtagCheck::match : EtagCheck::mismatch;
  }
  const size_t dash = etag.find('-');
  if (dash == std::string::npos || !is_md5_hex(etag.substr(0, dash))) return EtagCheck::unknown;
  const int64_t parts = std::atoll(etag.c_str() + dash + 1);
  if (parts < 1 || parts > kMaxParts) return EtagCheck::unknown;
  const int64_t even = (size + parts - 1) / parts;
  for (const int64_t part : {choose_part_size(size, min_part_size), 8 * kMiB, 16 * kMiB,
                             (even + kMiB - 1) / kMiB * kMiB}) {
    if ((size + part - 1) / part != parts) continue;
    std::vector<std::string> md5s;
    for (int64_t offset = 0; offset < size; offset += part) {
      md5s.push_back(hash_file(HashKind::md5, path, offset, std::min(part, size - offset)));
    }
    if (multipart_etag(md5s) == etag) return EtagCheck::match;
  }
  return EtagCheck::unknown;
}

S3Tuning s3_tuning_from_env() {
  S3Tuning t;
  if (const auto part = env_integer("ZEROTUNE_S3_PART_SIZE", 5 * kMiB, 5LL * 1024 * kMiB,
                                    "5 MiB to 5 GiB (S3's part limits)")) {
    t.min_part_size = *part;
  }
  if (const auto threads = env_integer("ZEROTUNE_S3_UPLOAD_THREADS", 1, 64)) {
    t.upload_threads = static_cast<int>(*threads);
  }
  return t;
}

S3Client::S3Client(S3Endpoint endpoint, Credentials credentials, RetryPolicy retry, S3Tuning tuning)
    : endpoint_(std::move(endpoint)),
      credentials_(std::move(credentials)),
      retry_(retry),
      tuning_(tuning) {}

S3Client S3Client::from_environment(const std::string& what) {
  return S3Client(load_s3_endpoint(), load_credentials(what), retry_policy_from_env(),
                  s3_tuning_from_env());
}

HttpRequest S3Client::build_request(const std::string& method, const S3Url& url, const Pairs& query,
                                    Pairs extra_headers, const std::string& payload_sha256,
                                    const std::string& amz_date) const {
  const size_t scheme_end = endpoint_.base_url.find("://");
  const std::string scheme = endpoint_.base_url.substr(0, scheme_end);
  std::string host = endpoint_.base_url.substr(scheme_end + 3);
  std::string path;
  // Buckets with dots cannot be virtual hosts over TLS (the wildcard certificate covers one
  // label), so they use path-style addressing on AWS too.
  if (endpoint_.addressing == Addressing::path || url.bucket.find('.') != std::string::npos) {
    path = "/" + url.bucket + (url.key.empty() ? "" : "/" + uri_encode(url.key, SlashMode::keep));
  } else {
    host = url.bucket + "." + host;
    path = "/" + uri_encode(url.key, SlashMode::keep);
  }
  SigV4Request sig;
  sig.method = method;
  sig.encoded_path = path;
  sig.query = query;
  sig.payload_sha256 = payload_sha256;
  sig.headers = {
      {"host", host}, {"x-amz-date", amz_date}, {"x-amz-content-sha256", payload_sha256}};
  if (!credentials_.session_token.empty()) {
    sig.headers.emplace_back("x-amz-security-token", credentials_.session_token);
  }
  for (auto& h : extra_headers) sig.headers.push_back(std::move(h));
  const SigV4Scope scope{amz_date, endpoint_.region, "s3"};

  HttpRequest request;
  request.method = method;
  const std::string query_string = canonical_query_string(query);
  request.url = scheme + "://" + host + path + (query_string.empty() ? "" : "?" + query_string);
  request.headers = sig.headers;
  request.headers.emplace_back("authorization", authorization_header(sig, scope, credentials_));
  return request;
}

HttpResponse S3Client::send(const std::string& method, const S3Url& url, const Pairs& query,
                            const Pairs& headers, const std::function<void(HttpRequest&)>& set_body,
                            const std::string& payload_sha256, const BodySink& sink,
                            const std::function<void()>& before_attempt,
                            const std::vector<long>& allow) {
  const std::string what = method + " " + url.str();
  HttpResponse r = with_retries(retry_, what, [&] {
    if (before_attempt) before_attempt();
    HttpRequest request =
        build_request(method, url, query, headers, payload_sha256, amz_date_now());
    if (set_body) set_body(request);
    return http_perform(request, sink);
  });
  const bool ok = (r.status >= 200 && r.status < 300) ||
                  std::find(allow.begin(), allow.end(), r.status) != allow.end();
  if (!ok) fail(redact(str(what, ": HTTP ", r.status, explain_s3_status(r, credentials_))));
  return r;
}

std::string S3Client::get_object(const S3Url& url, int64_t offset, int64_t length) {
  Pairs headers;
  if (offset > 0 || length >= 0) {
    headers.emplace_back("range", length >= 0 ? str("bytes=", offset, "-", offset + length - 1)
                                              : str("bytes=", offset, "-"));
  }
  std::string out;
  send(
      "GET", url, {}, headers, nullptr, kEmptySha256,
      [&](long, std::string_view bytes) { out.append(bytes); }, [&] { out.clear(); });
  return out;
}

void S3Client::download_file(const S3Url& url, const S3Object& expected, const std::string& path) {
  ResumableDownload d;
  d.name = url.str();
  d.path = path;
  d.known_size = expected.size;
  d.etag = expected.etag;
  d.make_request = [&](const HeaderList& resume_headers) {
    return build_request("GET", url, {}, resume_headers, kEmptySha256, amz_date_now());
  };
  d.explain_status = [&](const HttpResponse& r) { return explain_s3_status(r, credentials_); };
  d.verify = [&](const std::string& file, const HttpResponse&) -> std::optional<std::string> {
    if (check_etag(file, expected.size, expected.etag, tuning_.min_part_size) !=
        EtagCheck::mismatch) {
      return std::nullopt;
    }
    return str("MD5 of the downloaded bytes is ", to_hex(hash_file(HashKind::md5, file)),
               ", expected the ETag ", expected.etag);
  };
  download_resumable(d, retry_);
}

std::optional<S3Object> S3Client::head_object(const S3Url& url) {
  const HttpResponse r = send("HEAD", url, {}, {}, nullptr, kEmptySha256, nullptr, nullptr, {404});
  if (r.status == 404) return std::nullopt;
  S3Object o;
  o.key = url.key;
  o.size = std::atoll(r.header("content-length").c_str());
  o.etag = unquote_etag(r.header("etag"));
  return o;
}

std::string S3Client::put_object(const S3Url& url, const std::string& bytes) {
  const std::string md5 = hash_bytes(HashKind::md5, bytes);
  const HttpResponse r = send(
      "PUT", url, {}, {{"content-md5", to_base64(md5)}},
      [&](HttpRequest& req) { req.body = bytes; }, sha256_hex(bytes));
  const std::string etag = unquote_etag(r.header("etag"));
  ZT_CHECK(etag == to_hex(md5), "PUT ", url.str(), ": the service's ETag ", etag,
           " is not the MD5 of the bytes sent (", to_hex(md5), ")");
  return etag;
}

void S3Client::upload_file(const std::string& path, const S3Url& url) {
  std::error_code ec;
  const int64_t size = static_cast<int64_t>(fs::file_size(path, ec));
  ZT_CHECK(!ec, path, ": cannot read its size for upload (", ec.message(), ")");
  if (size <= tuning_.min_part_size) {
    put_object(url, read_range(path, 0, size));
  } else {
    upload_multipart(path, url, size);
  }
}

void S3Client::upload_multipart(const std::string& path, const S3Url& url, int64_t size) {
  const int64_t part_size = choose_part_size(size, tuning_.min_part_size);
  const int64_t n_parts = (size + part_size - 1) / part_size;
  const HttpResponse created = send(
      "POST", url, {{"uploads", ""}}, {}, [](HttpRequest&) {}, kEmptySha256);
  const std::string upload_id = xml_text(created.body, "UploadId");
  ZT_CHECK(!upload_id.empty(), "POST ", url.str(), "?uploads: no UploadId in the response");

  std::vector<std::string> part_md5s(static_cast<size_t>(n_parts));
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::string first_error;
  auto worker = [&] {
    for (int64_t i = next++; i < n_parts && !failed; i = next++) {
      try {
        const int64_t offset = i * part_size;
        const std::string bytes = read_range(path, offset, std::min(part_size, size - offset));
        const std::string md5 = hash_bytes(HashKind::md5, bytes);
        const HttpResponse r = send(
            "PUT", url, {{"partNumber", std::to_string(i + 1)}, {"uploadId", upload_id}},
            {{"content-md5", to_base64(md5)}}, [&](HttpRequest& req) { req.body = bytes; },
            sha256_hex(bytes));
        const std::string etag = unquote_etag(r.header("etag"));
        ZT_CHECK(etag == to_hex(md5), "PUT ", url.str(), " part ", i + 1, ": the service's ETag ",
                 etag, " is not the MD5 of the part (", to_hex(md5), ")");
        part_md5s[static_cast<size_t>(i)] = md5;
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!failed.exchange(true)) first_error = e.what();
      }
    }
  };
  std::vector<std::thread> threads;
  const int64_t n_threads = std::min<int64_t>(tuning_.upload_threads, n_parts);
  for (int64_t t = 0; t < n_threads; ++t) threads.emplace_back(worker);
  for (std::thread& t : threads) t.join();

  const Pairs upload_query = {{"uploadId", upload_id}};
  auto abort_upload = [&] {
    try {
      send("DELETE", url, upload_query, {}, nullptr, kEmptySha256, nullptr, nullptr, {404});
    } catch (const std::exception&) {
      // The upload failed already; an unaborted upload only costs storage until its lifecycle
      // rule removes it.
    }
  };
  if (failed) {
    abort_upload();
    fail(str(first_error, " (multipart upload of ", path, " aborted)"));
  }
  std::string body = "<CompleteMultipartUpload>";
  for (int64_t i = 0; i < n_parts; ++i) {
    body += str("<Part><PartNumber>", i + 1, "</PartNumber><ETag>\"",
                to_hex(part_md5s[static_cast<size_t>(i)]), "\"</ETag></Part>");
  }
  body += "</CompleteMultipartUpload>";
  const std::string expected_etag = multipart_etag(part_md5s);
  HttpResponse done;
  try {
    done =
        send("POST", url, upload_query, {{"content-type", "application/xml"}},
             [&](HttpRequest& req) { req.body = body; }, sha256_hex(body), nullptr, nullptr, {404});
  } catch (const std::exception&) {
    abort_upload();
    throw;
  }
  // A retried completion can find the upload already completed by the attempt whose response was
  // lost: then the object is there with the multipart ETag.
  if (done.status == 404) {
    const std::optional<S3Object> head = head_object(url);
    ZT_CHECK(head && head->etag == expected_etag, "POST ", url.str(),
             "?uploadId: the upload is gone and the object is not the one uploaded (ETag ",
             head ? head->etag : "none", ", expected ", expected_etag, ")");
    return;
  }
  // S3 can answer 200 with an error document when completion fails late.
  const std::string error = s3_error_summary(done.body);
  ZT_CHECK(error.empty(), "POST ", url.str(), "?uploadId: ", error);
  const std::string etag = unquote_etag(xml_text(done.body, "ETag"));
  // S3 answers md5(part md5s)-<parts>; some compatible services the whole object's MD5.
  const bool ok = etag.empty() || etag == expected_etag ||
                  (is_md5_hex(etag) && etag == to_hex(hash_file(HashKind::md5, path)));
  ZT_CHECK(ok, "multipart upload of ", path, " to ", url.str(), ": the service's ETag ", etag,
           " is neither the one of the parts sent (", expected_etag, ") nor the file's MD5");
}

std::vector<S3Object> S3Client::list_objects(const S3Url& url, int64_t page_size) {
  ZT_CHECK(page_size >= 1 && page_size <= 1000, "list_objects: page size must be 1-1000, got ",
           page_size);
  std::vector<S3Object> out;
  std::string token;
  const S3Url bucket{url.bucket, ""};
  for (;;) {
    Pairs query = {{"list-type", "2"}, {"max-keys", std::to_string(page_size)}};
    if (!url.key.empty()) query.emplace_back("prefix", url.key);
    if (!token.empty()) query.emplace_back("continuation-token", token);
    const HttpResponse r = send("GET", bucket, query, {}, nullptr, kEmptySha256);
    for (const std::string& item : xml_elements(r.body, "Contents")) {
      S3Object o;
      o.key = xml_text(item, "Key");
      o.size = std::atoll(xml_text(item, "Size").c_str());
      o.etag = unquote_etag(xml_text(item, "ETag"));
      out.push_back(std::move(o));
    }
    if (xml_text(r.body, "IsTruncated") != "true") break;
    token = xml_text(r.body, "NextContinuationToken");
    ZT_CHECK(!token.empty(), "GET ", url.str(),
             ": the listing is truncated but has no NextContinuationToken");
  }
  return out;
}

void S3Client::delete_object(const S3Url& url) {
  send("DELETE", url, {}, {}, nullptr, kEmptySha256, nullptr, nullptr, {404});
}

}  // namespace zerotune::storage
