#include "io/storage/sigv4.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>

#include "core/check.h"
#include "io/storage/crypto.h"
#include "io/storage/url.h"

namespace zerotune::storage {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// SigV4's Trimall: no leading or trailing blanks, inner runs of blanks collapsed to one space.
std::string trim_all(const std::string& value) {
  std::string out;
  bool blank = false;
  for (char c : value) {
    if (c == ' ' || c == '\t') {
      blank = !out.empty();
      continue;
    }
    if (blank) out.push_back(' ');
    blank = false;
    out.push_back(c);
  }
  return out;
}

// Sorted lower-case name -> values joined by ',' (repeated headers are joined, as SigV4 says).
std::map<std::string, std::string> canonical_header_map(const SigV4Request& request) {
  std::map<std::string, std::string> map;
  for (const auto& [name, value] : request.headers) {
    std::string& slot = map[lower(name)];
    if (!slot.empty()) slot.push_back(',');
    slot += trim_all(value);
  }
  ZT_CHECK(map.count("host") && map.count("x-amz-date"),
           "SigV4: the signed headers must include host and x-amz-date");
  return map;
}

}  // namespace

std::string canonical_query_string(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  for (const auto& [name, value] : query) {
    encoded.emplace_back(uri_encode(name, SlashMode::encode), uri_encode(value, SlashMode::encode));
  }
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out.push_back('&');
    out += name + "=" + value;
  }
  return out;
}

std::string signed_header_names(const SigV4Request& request) {
  std::string out;
  for (const auto& [name, value] : canonical_header_map(request)) {
    if (!out.empty()) out.push_back(';');
    out += name;
  }
  return out;
}

std::string canonical_request(const SigV4Request& request) {
  std::string headers;
  for (const auto& [name, value] : canonical_header_map(request)) {
    headers += name + ":" + value + "\n";
  }
  return request.method + "\n" + (request.encoded_path.empty() ? "/" : request.encoded_path) +
         "\n" + canonical_query_string(request.query) + "\n" + headers + "\n" +
         signed_header_names(request) + "\n" + request.payload_sha256;
}

std::string string_to_sign(const SigV4Scope& scope, const std::string& canonical) {
  ZT_CHECK(scope.amz_date.size() == 16 && scope.amz_date[8] == 'T' && scope.amz_date[15] == 'Z',
           "SigV4: x-amz-date must look like 20130524T000000Z, got '", scope.amz_date, "'");
  return "AWS4-HMAC-SHA256\n" + scope.amz_date + "\n" + scope.amz_date.substr(0, 8) + "/" +
         scope.region + "/" + scope.service + "/aws4_request\n" + sha256_hex(canonical);
}

std::string authorization_header(const SigV4Request& request, const SigV4Scope& scope,
                                 const Credentials& credentials) {
  const std::string date = scope.amz_date.substr(0, 8);
  const std::string k_date = hmac_sha256("AWS4" + credentials.secret_access_key, date);
  const std::string k_region = hmac_sha256(k_date, scope.region);
  const std::string k_service = hmac_sha256(k_region, scope.service);
  const std::string k_signing = hmac_sha256(k_service, "aws4_request");
  const std::string signature =
      to_hex(hmac_sha256(k_signing, string_to_sign(scope, canonical_request(request))));
  return "AWS4-HMAC-SHA256 Credential=" + credentials.access_key_id + "/" + date + "/" +
         scope.region + "/" + scope.service +
         "/aws4_request, SignedHeaders=" + signed_header_names(request) +
         ", Signature=" + signature;
}

std::string amz_date_now() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buf[20];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &utc);
  return buf;
}

}  // namespace zerotune::storage
