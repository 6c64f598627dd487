// Who we are and where S3 is: credentials, region and endpoint from the environment and the AWS
// shared files, as the AWS CLI finds them. Secrets are registered for redaction as soon as they
// are read, so that no error or log line can carry them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace zerotune::storage {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty unless temporary credentials
  std::string source;         // where they came from, for messages ("environment", a file)
};

// Parses an AWS shared credentials file (INI: [profile] then key = value lines; '#' and ';'
// comments). Returns the profile's credentials, or empty ones when the profile is absent. Errors
// name `source` and the line.
Credentials parse_credentials_file(std::string_view text, const std::string& profile,
                                   const std::string& source);

// AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN); else the AWS_PROFILE (default
// "default") section of AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials). Errors say
// where we looked; `what` names the URL the credentials are for.
Credentials load_credentials(const std::string& what);

enum class Addressing : uint8_t { virtual_host, path };

struct S3Endpoint {
  std::string region;  // AWS_REGION, AWS_DEFAULT_REGION, else us-east-1
  // scheme://host[:port] without a trailing '/'. AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL for
  // S3-compatible services (path-style addressing); else https://s3.<region>.amazonaws.com with
  // virtual-hosted buckets.
  std::string base_url;
  Addressing addressing = Addressing::virtual_host;
};
S3Endpoint load_s3_endpoint();

// Secrets known to this process (AWS secret key, session token, HF_TOKEN): redact() replaces each
// occurrence in a message with "***", and also any SigV4 "Signature=<hex>".
void register_secret(const std::string& secret);
std::string redact(std::string message);

}  // namespace zerotune::storage
