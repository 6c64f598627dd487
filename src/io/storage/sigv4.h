// AWS Signature Version 4 (docs.aws.amazon.com, "Create a signed AWS API request"): canonical
// request -> string to sign -> HMAC chain keyed by the secret -> Authorization header. Pure
// functions of their inputs (the time is an input), so tests compare them with published
// vectors and with botocore's signer byte for byte.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "io/storage/credentials.h"

namespace zerotune::storage {

struct SigV4Request {
  std::string method;        // "GET", "PUT", ...
  std::string encoded_path;  // the path as sent, already percent-encoded: "/bucket/a%20b"
  // Query parameters, not encoded; a parameter without value ("?uploads") has value "".
  std::vector<std::pair<std::string, std::string>> query;
  // Headers to sign (must include host and x-amz-date); names in any case, values untrimmed.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload_sha256;  // hex, or "UNSIGNED-PAYLOAD"
};

struct SigV4Scope {
  std::string amz_date;  // "20130524T000000Z" (UTC)
  std::string region;    // "us-east-1"
  std::string service;   // "s3"
};

// The query string as sent and as canonicalised: encoded pairs sorted by name, then value.
std::string canonical_query_string(const std::vector<std::pair<std::string, std::string>>& query);
std::string canonical_request(const SigV4Request& request);
std::string string_to_sign(const SigV4Scope& scope, const std::string& canonical_request);
std::string signed_header_names(const SigV4Request& request);  // "host;x-amz-date"
// "AWS4-HMAC-SHA256 Credential=<key id>/<date>/<region>/<service>/aws4_request,
// SignedHeaders=..., Signature=<hex>"
std::string authorization_header(const SigV4Request& request, const SigV4Scope& scope,
                                 const Credentials& credentials);

// The current UTC time as SigV4 spells it.
std::string amz_date_now();

}  // namespace zerotune::storage
