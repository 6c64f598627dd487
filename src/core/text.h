// Small text helpers shared by the layers: markup escaping, UTF-8 encoding.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace zerotune {

// `text` with & < > " ' replaced by &amp; &lt; &gt; &#34; &#39;: markupsafe's escape (what Jinja's
// `escape` filter gives, byte for byte), which is also valid in HTML and XML text and attributes.
std::string escape_markup(std::string_view text);

// Appends the UTF-8 encoding of `code_point` (at most U+10FFFF; callers check).
void append_utf8(std::string& out, uint32_t code_point);

}  // namespace zerotune
