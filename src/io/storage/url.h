// Names of remote things: s3://bucket/key URLs, Hugging Face Hub repo ids, and the percent
// encoding that both S3 paths and SigV4 canonical requests use.
#pragma once

#include <string>
#include <string_view>

namespace zerotune::storage {

struct S3Url {
  std::string bucket;
  std::string key;  // without a leading '/'; may be empty (the bucket's root)
  std::string str() const { return "s3://" + bucket + (key.empty() ? "" : "/" + key); }
};

bool is_s3_url(std::string_view text);
// Parses s3://bucket[/key]; errors name the text and what a valid URL looks like.
S3Url parse_s3_url(std::string_view text);

// `key` + "/" + `name` without doubled or leading slashes.
std::string join_key(std::string_view prefix, std::string_view name);

// RFC 3986 percent encoding as SigV4 wants it: unreserved characters (A-Z a-z 0-9 - _ . ~) stay,
// every other byte becomes %XX (upper-case hex). With SlashMode::keep, '/' also stays (S3 paths).
enum class SlashMode : uint8_t { encode, keep };
std::string uri_encode(std::string_view text, SlashMode slash);

struct HubRepo {
  std::string id;        // "meta-llama/Llama-2-7b-hf"
  std::string revision;  // "main" unless `id@revision` was given
};
// A Hub id is `owner/name` (each of letters, digits, '-', '_', '.', not starting with '.' or '-',
// no "..", at most 96 characters), optionally `@revision`. Paths that start with '/', '.', or
// '~', or hold more than one '/', are never Hub ids, so a mistyped local path is not sent to the
// network.
bool parse_hub_repo(std::string_view text, HubRepo* out);

}  // namespace zerotune::storage
