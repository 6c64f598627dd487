// The few pieces of S3's XML we read and write: list results, multipart ids, error documents.
// Not a general XML parser: S3 responses are flat and well-formed, and we only look for elements
// by name.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace zerotune::storage {

// The inner text of each <tag>...</tag> in `doc`, in order (not nested within each other).
std::vector<std::string> xml_elements(std::string_view doc, std::string_view tag);
// The first one's inner text, unescaped; "" when absent.
std::string xml_text(std::string_view doc, std::string_view tag);
std::string xml_unescape(std::string_view text);

// "S3 error NoSuchKey: The specified key does not exist." from an error document, or "" when
// `doc` is not one.
std::string s3_error_summary(std::string_view doc);

}  // namespace zerotune::storage
