// Special (added) tokens found in text before the model sees it, as Hugging Face does it: the
// leftmost match wins, the longest token at that position first (the slow tokenizers' Trie.split
// and the tokenizers library's leftmost-longest Aho-Corasick agree on this). tokenizer.json's
// flags are honoured: lstrip / rstrip take the whitespace left / right of the token into the
// match, single_word matches only a token with no word character on either side.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace zerotune {

struct AddedTokenFlags {
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
};

// Matching is on UTF-8 bytes, which for valid UTF-8 finds exactly the code-point matches.
class SpecialTokenSplitter {
 public:
  struct Segment {
    std::string_view text;  // a view into the split text; empty when this is a token
    int32_t token_id;       // -1 for a text segment
  };

  // Adds `token` (non-empty) with `id`; returns false, changing nothing, when already present.
  bool add(const std::string& token, int32_t id, AddedTokenFlags flags = {});
  bool contains(std::string_view token) const { return ids_.count(std::string(token)) > 0; }
  int32_t id_of(std::string_view token) const;  // -1 when not a special token
  // The text of the token with `id`; null when no token here has it.
  const std::string* content_of(int32_t id) const;

  // Appends the segments of `text` to `out` in order; text segments are never empty.
  void split(std::string_view text, std::vector<Segment>& out) const;

 private:
  struct Token {
    std::string text;
    int32_t id;
    AddedTokenFlags flags;
  };
  // The token matching at `pos`, the longest first; null when none does (or single_word fails).
  const Token* match_at(std::string_view text, size_t pos) const;

  std::vector<Token> tokens_;
  std::unordered_map<std::string, int32_t> ids_;
  std::unordered_map<int32_t, size_t> index_of_id_;  // id -> index into tokens_
  // Indices into tokens_ by first byte, longest token first, so the first hit is the longest.
  std::array<std::vector<uint32_t>, 256> by_first_byte_;
};

}  // namespace zerotune
