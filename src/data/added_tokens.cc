#include "data/added_tokens.h"

#include <algorithm>

#include "core/check.h"
#include "data/hf_text.h"

namespace zerotune {

namespace {

// The code point that ends text[0, end) (valid UTF-8), and where it starts.
uint32_t code_point_before(std::string_view text, size_t end, size_t* start) {
  size_t pos = end - 1;
  while (pos > 0 && (static_cast<unsigned char>(text[pos]) & 0xc0) == 0x80) --pos;
  size_t length = 0;
  *start = pos;
  return next_code_point(text, pos, &length);
}

// Whitespace runs next to a match, which lstrip / rstrip take into it.
size_t whitespace_start_before(std::string_view text, size_t pos, size_t floor) {
  while (pos > floor) {
    size_t start = 0;
    if (!is_unicode_whitespace(code_point_before(text, pos, &start))) break;
    pos = start;
  }
  return pos;
}

size_t whitespace_end_after(std::string_view text, size_t pos) {
  while (pos < text.size()) {
    size_t length = 0;
    if (!is_unicode_whitespace(next_code_point(text, pos, &length))) break;
    pos += length;
  }
  return pos;
}

}  // namespace

bool SpecialTokenSplitter::add(const std::string& token, int32_t id, AddedTokenFlags flags) {
  ZT_CHECK(!token.empty(), "SpecialTokenSplitter: empty token");
  if (!ids_.emplace(token, id).second) return false;
  tokens_.push_back({token, id, flags});
  index_of_id_.emplace(id, tokens_.size() - 1);
  std::vector<uint32_t>& bucket = by_first_byte_[static_cast<unsigned char>(token[0])];
  bucket.push_back(static_cast<uint32_t>(tokens_.size() - 1));
  std::stable_sort(bucket.begin(), bucket.end(), [this](uint32_t a, uint32_t b) {
    return tokens_[a].text.size() > tokens_[b].text.size();
  });
  return true;
}

int32_t SpecialTokenSplitter::id_of(std::string_view token) const {
  const auto it = ids_.find(std::string(token));
  return it == ids_.end() ? -1 : it->second;
}

const std::string* SpecialTokenSplitter::content_of(int32_t id) const {
  const auto it = index_of_id_.find(id);
  return it == index_of_id_.end() ? nullptr : &tokens_[it->second].text;
}

const SpecialTokenSplitter::Token* SpecialTokenSplitter::match_at(std::string_view text,
                                                                  size_t pos) const {
  for (const uint32_t index : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
    const Token& t = tokens_[index];
    if (text.compare(pos, t.text.size(), t.text) != 0) continue;
    if (t.flags.single_word) {
      // The library discards a single_word match with a word character next to it and, as
      // its Aho-Corasick search does, tries no shorter token at the same place.
      size_t start = 0, length = 0;
      const size_t end = pos + t.text.size();
      const bool word_before = pos > 0 && is_word_char(code_point_before(text, pos, &start));
      const bool word_after =
          end < text.size() && is_word_char(next_code_point(text, end, &length));
      if (word_before || word_after) return nullptr;
    }
    return &t;
  }
  return nullptr;
}

void SpecialTokenSplitter::split(std::string_view text, std::vector<Segment>& out) const {
  size_t segment_start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const Token* match = match_at(text, pos);
    if (!match) {
      ++pos;
      continue;
    }
    const size_t begin =
        match->flags.lstrip ? whitespace_start_before(text, pos, segment_start) : pos;
    const size_t end = match->flags.rstrip ? whitespace_end_after(text, pos + match->text.size())
                                           : pos + match->text.size();
    if (begin > segment_start) {
      out.push_back({text.substr(segment_start, begin - segment_start), -1});
    }
    out.push_back({std::string_view(), match->id});
    pos = end;
    segment_start = end;
  }
  if (segment_start < text.size()) out.push_back({text.substr(segment_start), -1});
}

}  // namespace zerotune
