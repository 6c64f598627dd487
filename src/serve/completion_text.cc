#include "serve/completion_text.h"

#include <algorithm>
#include <cstddef>
#include <utility>

namespace zerotune::serve {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Bytes in the UTF-8 sequence that `lead` starts; 0 when `lead` cannot start one.
int sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

bool is_continuation(unsigned char byte) {
  return (byte & 0xC0) == 0x80;
}

// Length of the valid UTF-8 sequence at text[i], or 0 when the bytes there are not one (cut
// short, overlong, a surrogate, beyond U+10FFFF).
size_t valid_sequence_at(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const int n = sequence_length(byte(i));
  if (n == 0 || i + n > text.size()) return 0;
  for (int k = 1; k < n; ++k) {
    if (!is_continuation(byte(i + k))) return 0;
  }
  const unsigned char lead = byte(i), second = n > 1 ? byte(i + 1) : 0;
  if (lead == 0xE0 && second < 0xA0) return 0;  // overlong
  if (lead == 0xED && second > 0x9F) return 0;  // UTF-16 surrogate
  if (lead == 0xF0 && second < 0x90) return 0;  // overlong
  if (lead == 0xF4 && second > 0x8F) return 0;  // beyond U+10FFFF
  return static_cast<size_t>(n);
}

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

}  // namespace

size_t unfinished_tail_length(const std::string& text) {
  // A lead byte within the last 3 bytes whose sequence needs more bytes than remain.
  size_t tail = 0;
  for (size_t back = 1; back <= std::min<size_t>(3, text.size()); ++back) {
    const auto byte = static_cast<unsigned char>(text[text.size() - back]);
    if (is_continuation(byte)) continue;
    const int n = sequence_length(byte);
    if (n > static_cast<int>(back)) tail = back;
    break;
  }
  std::string_view rest(text.data(), text.size() - tail);
  while (ends_with(rest, kReplacement)) {
    rest.remove_suffix(kReplacement.size());
    tail += kReplacement.size();
  }
  return tail;
}

std::string valid_utf8(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t n = valid_sequence_at(text, i);
    if (n == 0) {
      out += kReplacement;
      ++i;
    } else {
      out.append(text, i, n);
      i += n;
    }
  }
  return out;
}

CompletionText::CompletionText(DecodeTokens decode, std::vector<std::string> stops)
    : decode_(std::move(decode)) {
  for (std::string& stop : stops) {
    if (stop.empty()) continue;
    stops_.push_back(std::move(stop));
  }
}

std::string CompletionText::add(int32_t token) {
  ids_.push_back(token);
  text_ += decode_new_text(/*final=*/false);
  if (cut_at_stop(text_, released_.size())) {
    stopped_ = true;
    return release_up_to(text_, text_.size());
  }
  return release_up_to(text_, text_.size() - stop_prefix_length(text_));
}

std::string CompletionText::finish() {
  if (stopped_) return {};
  text_ += decode_new_text(/*final=*/true);
  stopped_ = cut_at_stop(text_, released_.size());
  return release_up_to(text_, text_.size());
}

std::string CompletionText::decode_new_text(bool final) {
  const auto at = [&](size_t i) { return ids_.begin() + static_cast<std::ptrdiff_t>(i); };
  const std::string known = decode_(std::vector<int32_t>(at(window_), at(read_)));
  const std::string window = decode_(std::vector<int32_t>(at(window_), ids_.end()));
  if (window.size() <= known.size()) return {};
  if (!final && unfinished_tail_length(window) > 0) return {};
  window_ = read_;
  read_ = ids_.size();
  return window.substr(known.size());
}

bool CompletionText::cut_at_stop(std::string& text, size_t from) const {
  // Released text never ends with the start of a stop string, so a stop string that is complete
  // now starts at or after `from`.
  size_t first = std::string::npos;
  for (const std::string& stop : stops_) first = std::min(first, text.find(stop, from));
  if (first == std::string::npos) return false;
  text.resize(first);
  return true;
}

size_t CompletionText::stop_prefix_length(const std::string& text) const {
  const std::string_view view(text);
  size_t longest = 0;
  for (const std::string& stop : stops_) {
    for (size_t n = std::min(stop.size() - 1, text.size()); n > longest; --n) {
      if (ends_with(view, std::string_view(stop).substr(0, n))) {
        longest = n;
        break;
      }
    }
  }
  return longest;
}

std::string CompletionText::release_up_to(const std::string& text, size_t end) {
  // `text` only grows, and the released text is a prefix of it.
  if (end <= released_.size()) return {};
  std::string piece = text.substr(released_.size(), end - released_.size());
  released_ += piece;
  return piece;
}

}  // namespace zerotune::serve
