// Text primitives of Hugging Face's tokenizers library, for reading tokenizer.json
// (data/hf_tokenizer.h): lossy UTF-8 (what a Rust String or a JS string holds), NFC through ICU,
// GPT-2's byte-level alphabet, and regular expressions through PCRE2 (UTF + UCP, JIT where the
// platform has it), which handle the \p{L} / \p{N} classes and the (?!\S) lookahead of the
// GPT-2, Llama-3 and Qwen2 split patterns.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zerotune {

// `text` with every ill-formed UTF-8 sequence replaced by U+FFFD, one per maximal subpart (the
// WHATWG decoder's rule, which Rust's String::from_utf8_lossy and Node's Buffer.toString share).
// Valid text comes back unchanged.
std::string utf8_lossy(std::string_view text);

// Whether `text` is valid UTF-8 (no overlong forms, surrogates or code points above U+10FFFF).
bool is_valid_utf8(std::string_view text);

// Unicode Normalization Form C of valid UTF-8 `text` (ICU's normalizer); ASCII returns at once.
std::string nfc(std::string_view text);

// GPT-2's bytes_to_unicode: each byte as a printable code point, UTF-8 encoded ("Ġ" for ' ').
class ByteLevelAlphabet {
 public:
  static const ByteLevelAlphabet& get();
  // Appends the byte-level spelling of `bytes`.
  void encode(std::string_view bytes, std::string& out) const;
  // The bytes a byte-level token spells; false when a code point of `token` is not in the
  // alphabet (then `out` holds the UTF-8 of that code point as it was, as the library keeps it).
  void decode(std::string_view token, std::string& out) const;

 private:
  ByteLevelAlphabet();
  std::array<std::string, 256> spelling_;  // byte -> UTF-8 of its code point
  std::array<int16_t, 324> byte_of_;       // code point (< 324) -> byte, -1 outside
};

// A compiled PCRE2 pattern. Matching is thread-safe: each call takes its match data from a
// per-thread cache.
class Regex {
 public:
  // Throws, naming `what` and the compiler's message and offset, when `pattern` does not compile.
  Regex(const std::string& pattern, const std::string& what);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // The non-empty matches of `text` from left to right, as byte ranges [start, end).
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;

 private:
  struct Compiled;
  std::unique_ptr<Compiled> compiled_;
};


// Rust's char::is_whitespace (the White_Space property) and char::is_alphanumeric or '_' (the
// library's word characters for single_word tokens).
bool is_unicode_whitespace(uint32_t cp);
bool is_word_char(uint32_t cp);

// The code point starting at text[pos] (valid UTF-8) and its length in bytes.
uint32_t next_code_point(std::string_view text, size_t pos, size_t* length);

}  // namespace zerotune
