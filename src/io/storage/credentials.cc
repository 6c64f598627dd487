#include "io/storage/credentials.h"

#include <cctype>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "core/check.h"
#include "io/storage/env.h"

namespace zerotune::storage {

namespace {

std::string trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

std::mutex& secrets_mutex() {
  static std::mutex m;
  return m;
}
std::set<std::string>& secrets() {
  static std::set<std::string> s;
  return s;
}

}  // namespace

void register_secret(const std::string& secret) {
  // Very short strings would redact innocent text; no real key or token is this short.
  if (secret.size() < 4) return;
  std::lock_guard<std::mutex> lock(secrets_mutex());
  secrets().insert(secret);
}

std::string redact(std::string message) {
  {
    std::lock_guard<std::mutex> lock(secrets_mutex());
    for (const std::string& s : secrets()) {
      for (size_t pos = message.find(s); pos != std::string::npos; pos = message.find(s, pos)) {
        message.replace(pos, s.size(), "***");
        pos += 3;
      }
    }
  }
  const std::string tag = "Signature=";
  for (size_t pos = message.find(tag); pos != std::string::npos; pos = message.find(tag, pos)) {
    pos += tag.size();
    size_t end = pos;
    while (end < message.size() && std::isxdigit(static_cast<unsigned char>(message[end]))) ++end;
    message.replace(pos, end - pos, "***");
  }
  return message;
}

Credentials parse_credentials_file(std::string_view text, const std::string& profile,
                                   const std::string& source) {
  Credentials c;
  c.source = source + " [" + profile + "]";
  std::istringstream in{std::string(text)};
  std::string line, section;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t[0] == '[') {
      ZT_CHECK(t.back() == ']', source, ":", line_no, ": expected a [profile] line, got '", t, "'");
      section = trim(std::string_view(t).substr(1, t.size() - 2));
      // ~/.aws/config spells sections "[profile name]"; accept that spelling too.
      if (section.rfind("profile ", 0) == 0) section = trim(section.substr(8));
      continue;
    }
    const size_t eq = t.find('=');
    // Do not echo the line: it may hold a secret.
    ZT_CHECK(eq != std::string::npos, source, ":", line_no, ": expected 'key = value'");
    if (section != profile) continue;
    const std::string key = trim(std::string_view(t).substr(0, eq));
    const std::string value = trim(std::string_view(t).substr(eq + 1));
    if (key == "aws_access_key_id") c.access_key_id = value;
    if (key == "aws_secret_access_key") c.secret_access_key = value;
    if (key == "aws_session_token") c.session_token = value;
  }
  return c;
}

Credentials load_credentials(const std::string& what) {
  Credentials c;
  if (!env_or_empty("AWS_ACCESS_KEY_ID").empty() ||
      !env_or_empty("AWS_SECRET_ACCESS_KEY").empty()) {
    c.access_key_id = env_or_empty("AWS_ACCESS_KEY_ID");
    c.secret_access_key = env_or_empty("AWS_SECRET_ACCESS_KEY");
    c.session_token = env_or_empty("AWS_SESSION_TOKEN");
    c.source = "environment";
    ZT_CHECK(!c.access_key_id.empty() && !c.secret_access_key.empty(), what,
             ": AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together");
  } else {
    std::string path = env_or_empty("AWS_SHARED_CREDENTIALS_FILE");
    if (path.empty()) path = env_or_empty("HOME") + "/.aws/credentials";
    const std::string profile =
        env_or_empty("AWS_PROFILE").empty() ? "default" : env_or_empty("AWS_PROFILE");
    std::ifstream in(path, std::ios::binary);
    ZT_CHECK(in, what,
             ": no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write "
             "profile [",
             profile, "] in ", path);
    std::ostringstream text;
    text << in.rdbuf();
    c = parse_credentials_file(text.str(), profile, path);
    ZT_CHECK(!c.access_key_id.empty() && !c.secret_access_key.empty(), what, ": ", path,
             " has no aws_access_key_id and aws_secret_access_key in profile [", profile, "]");
  }
  register_secret(c.secret_access_key);
  register_secret(c.session_token);
  return c;
}

S3Endpoint load_s3_endpoint() {
  S3Endpoint e;
  e.region = env_or_empty("AWS_REGION");
  if (e.region.empty()) e.region = env_or_empty("AWS_DEFAULT_REGION");
  if (e.region.empty()) e.region = "us-east-1";
  std::string url = env_or_empty("AWS_ENDPOINT_URL_S3");
  if (url.empty()) url = env_or_empty("AWS_ENDPOINT_URL");
  if (url.empty()) {
    e.base_url = "https://s3." + e.region + ".amazonaws.com";
    e.addressing = Addressing::virtual_host;
    return e;
  }
  ZT_CHECK(url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0, "AWS_ENDPOINT_URL '", url,
           "' must start with http:// or https://");
  while (!url.empty() && url.back() == '/') url.pop_back();
  ZT_CHECK(url.find('/', url.find("//") + 2) == std::string::npos, "AWS_ENDPOINT_URL '", url,
           "' must be scheme://host[:port] without a path");
  e.base_url = url;
  e.addressing = Addressing::path;
  return e;
}

}  // namespace zerotune::storage
