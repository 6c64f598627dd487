// An S3 client for the operations checkpoints and model downloads need: GET (with ranges, into
// memory or resumably into a file), PUT with Content-MD5, multipart upload with parallel parts,
// paginated listing and delete. Every request is signed with SigV4, retried with backoff on 5xx,
// 429 and dropped connections, and checked: uploads against the ETag (MD5) the service returns,
// downloads against size and, where the ETag is an MD5, the bytes' MD5.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "io/storage/credentials.h"
#include "io/storage/http.h"
#include "io/storage/url.h"

namespace zerotune::storage {

struct S3Object {
  std::string key;
  int64_t size = 0;
  std::string etag;  // without quotes
};

// Part size for a multipart upload of `file_size` bytes: at least `min_part_size`, and large
// enough that the upload needs at most S3's 10,000 parts; rounded up to a whole MiB.
int64_t choose_part_size(int64_t file_size, int64_t min_part_size);
// The ETag S3 gives a multipart object: md5 of the concatenated part md5s, "-<parts>".
std::string multipart_etag(const std::vector<std::string>& raw_part_md5s);

enum class EtagCheck : uint8_t { match, mismatch, unknown };
// Whether the file's bytes give `etag`: a plain ETag is their MD5; a multipart one ("...-N") is
// recomputed for the part sizes we (and common tools) use that give N parts; `unknown` when no
// such part size reproduces it or the ETag is neither.
EtagCheck check_etag(const std::string& path, int64_t size, const std::string& etag,
                     int64_t min_part_size);

struct S3Tuning {
  int64_t min_part_size = 16LL << 20;  // also the single-PUT threshold
  int upload_threads = 4;
};
// Defaults overridden by ZEROTUNE_S3_PART_SIZE (bytes, >= 5 MiB as S3 requires) and
// ZEROTUNE_S3_UPLOAD_THREADS.
S3Tuning s3_tuning_from_env();

class S3Client {
 public:
  S3Client(S3Endpoint endpoint, Credentials credentials, RetryPolicy retry, S3Tuning tuning);
  // Endpoint, credentials, retries and tuning from the environment; `what` names the URL in
  // errors about missing credentials.
  static S3Client from_environment(const std::string& what);

  // The object's bytes [offset, offset + length) (length -1: to the end) in memory.
  std::string get_object(const S3Url& url, int64_t offset = 0, int64_t length = -1);
  // Downloads to `path` through `path`.partial, resuming a partial file left by an earlier try;
  // checks the size and, for an MD5 ETag, the MD5. `expected` comes from a listing or head.
  void download_file(const S3Url& url, const S3Object& expected, const std::string& path);
  // nullopt when the object does not exist.
  std::optional<S3Object> head_object(const S3Url& url);
  // Returns the ETag; throws unless it equals the bytes' MD5.
  std::string put_object(const S3Url& url, const std::string& bytes);
  // One PUT up to the part size, else a multipart upload with parallel parts (aborted on error).
  void upload_file(const std::string& path, const S3Url& url);
  // Every object under the key prefix `url.key` (as given: "a/b" also matches "a/bc"), following
  // continuation tokens; `page_size` at most 1000.
  std::vector<S3Object> list_objects(const S3Url& url, int64_t page_size = 1000);
  void delete_object(const S3Url& url);

  const S3Endpoint& endpoint() const { return endpoint_; }
  const S3Tuning& tuning() const { return tuning_; }

  // The request as it would be sent (URL and signed headers), for tests of the signer.
  HttpRequest build_request(const std::string& method, const S3Url& url,
                            const std::vector<std::pair<std::string, std::string>>& query,
                            std::vector<std::pair<std::string, std::string>> extra_headers,
                            const std::string& payload_sha256, const std::string& amz_date) const;

 private:
  // Signs and sends (re-signing each attempt), retrying; throws on a final non-2xx status with
  // the URL, status and S3 error code. `allow` lists statuses the caller handles itself.
  HttpResponse send(const std::string& method, const S3Url& url,
                    const std::vector<std::pair<std::string, std::string>>& query,
                    const std::vector<std::pair<std::string, std::string>>& headers,
                    const std::function<void(HttpRequest&)>& set_body,
                    const std::string& payload_sha256, const BodySink& sink = nullptr,
                    const std::function<void()>& before_attempt = nullptr,
                    const std::vector<long>& allow = {});
  void upload_multipart(const std::string& path, const S3Url& url, int64_t size);

  S3Endpoint endpoint_;
  Credentials credentials_;
  RetryPolicy retry_;
  S3Tuning tuning_;
};

}  // namespace zerotune::storage
