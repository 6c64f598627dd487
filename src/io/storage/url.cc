#include "io/storage/url.h"

#include "core/check.h"

namespace zerotune::storage {

bool is_s3_url(std::string_view text) {
  return text.rfind("s3://", 0) == 0;
}

S3Url parse_s3_url(std::string_view text) {
  ZT_CHECK(is_s3_url(text), "'", text, "' is not an s3:// URL (expected s3://bucket/prefix)");
  const std::string_view rest = text.substr(5);
  const size_t slash = rest.find('/');
  S3Url url;
  url.bucket = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) url.key = std::string(rest.substr(slash + 1));
  // Bucket names: 3-63 characters of a-z 0-9 . - (S3's rules, which S3-compatible services share).
  bool ok = url.bucket.size() >= 3 && url.bucket.size() <= 63;
  for (char c : url.bucket) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-');
  }
  ZT_CHECK(ok, "'", text, "': bucket '", url.bucket,
           "' is not a valid S3 bucket name (3-63 characters of a-z, 0-9, '.', '-')");
  while (!url.key.empty() && url.key.back() == '/') url.key.pop_back();
  ZT_CHECK(url.key.find("//") == std::string::npos, "'", text, "': empty path segment in the key");
  return url;
}

std::string join_key(std::string_view prefix, std::string_view name) {
  while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
  while (!name.empty() && name.front() == '/') name.remove_prefix(1);
  if (prefix.empty()) return std::string(name);
  if (name.empty()) return std::string(prefix);
  return std::string(prefix) + "/" + std::string(name);
}

std::string uri_encode(std::string_view text, SlashMode slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved || (c == '/' && slash == SlashMode::keep)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

static bool valid_hub_part(std::string_view part) {
  if (part.empty() || part.size() > 96 || part.front() == '.' || part.front() == '-') return false;
  if (part.find("..") != std::string_view::npos) return false;
  for (char c : part) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

bool parse_hub_repo(std::string_view text, HubRepo* out) {
  std::string_view id = text;
  std::string_view revision = "main";
  if (const size_t at = text.find('@'); at != std::string_view::npos) {
    id = text.substr(0, at);
    revision = text.substr(at + 1);
    if (!valid_hub_part(revision)) return false;
  }
  const size_t slash = id.find('/');
  if (slash == std::string_view::npos || id.find('/', slash + 1) != std::string_view::npos) {
    return false;
  }
  if (!valid_hub_part(id.substr(0, slash)) || !valid_hub_part(id.substr(slash + 1))) return false;
  if (out) {
    out->id = std::string(id);
    out->revision = std::string(revision);
  }
  return true;
}

}  // namespace zerotune::storage
