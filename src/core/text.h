// Small text helpers shared by the layers that write markup.
#pragma once

#include <string>
#include <string_view>

namespace zerotune {

// `text` with & < > " ' replaced by &amp; &lt; &gt; &#34; &#39;: markupsafe's escape (what Jinja's
// `escape` filter gives, byte for byte), which is also valid in HTML and XML text and attributes.
std::string escape_markup(std::string_view text);

}  // namespace zerotune
