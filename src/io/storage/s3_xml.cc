#include "io/storage/s3_xml.h"

#include <cstdlib>

#include "core/text.h"

namespace zerotune::storage {

std::vector<std::string> xml_elements(std::string_view doc, std::string_view tag) {
  const std::string open = "<" + std::string(tag) + ">";
  const std::string close = "</" + std::string(tag) + ">";
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = doc.find(open, pos)) != std::string_view::npos) {
    const size_t begin = pos + open.size();
    const size_t end = doc.find(close, begin);
    if (end == std::string_view::npos) break;
    out.emplace_back(doc.substr(begin, end - begin));
    pos = end + close.size();
  }
  return out;
}

std::string xml_text(std::string_view doc, std::string_view tag) {
  const std::vector<std::string> all = xml_elements(doc, tag);
  return all.empty() ? "" : xml_unescape(all.front());
}

std::string xml_unescape(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '&') {
      out.push_back(text[i]);
      continue;
    }
    const size_t semi = text.find(';', i);
    if (semi == std::string_view::npos) {
      out.push_back('&');
      continue;
    }
    const std::string_view entity = text.substr(i + 1, semi - i - 1);
    if (entity == "amp") {
      out.push_back('&');
    } else if (entity == "lt") {
      out.push_back('<');
    } else if (entity == "gt") {
      out.push_back('>');
    } else if (entity == "quot") {
      out.push_back('"');
    } else if (entity == "apos") {
      out.push_back('\'');
    } else if (entity.size() > 1 && entity[0] == '#') {
      // Numeric references in the ASCII range (S3 escapes control characters in keys this way).
      const bool hex = entity[1] == 'x';
      const long code =
          std::strtol(std::string(entity.substr(hex ? 2 : 1)).c_str(), nullptr, hex ? 16 : 10);
      if (code > 0 && code < 128) {
        out.push_back(static_cast<char>(code));
      } else {
        out.append(text.substr(i, semi - i + 1));
      }
    } else {
      out.append(text.substr(i, semi - i + 1));
    }
    i = semi;
  }
  return out;
}

std::string s3_error_summary(std::string_view doc) {
  const std::string code = xml_text(doc, "Code");
  if (code.empty()) return "";
  const std::string message = xml_text(doc, "Message");
  return "S3 error " + code + (message.empty() ? "" : ": " + message);
}

}  // namespace zerotune::storage
