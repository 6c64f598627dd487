// The text of one completion, built token by token as it is generated, for streaming: a piece of
// text is released only once it is final. Two things keep text back:
//  - an incomplete character: the U+FFFD that the tokenizer's decode writes for byte tokens
//    (<0xE2>) whose character is not complete yet (or a UTF-8 sequence cut short);
//  - a possible stop string: when the text ends with the first characters of a stop string,
//    those characters wait for the tokens that confirm or refute it.
// New tokens are decoded in a short window (as vLLM detokenizes): the ids from the last two
// points where the text was whole, and the new text is what the window's decode adds to that of
// its first part. Decoding from inside a sequence drops the first piece's leading space, but only
// from the part already released; and a window starts where no character is split. So the cost
// per token does not grow with the completion, and the released pieces concatenate to what
// decoding the whole completion at once gives (`zerotune generate`'s text), cut before the first
// stop string.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "serve/decode_engine.h"

namespace zerotune::serve {

class CompletionText {
 public:
  // `stops`: stop strings (empty strings are ignored).
  CompletionText(DecodeTokens decode, std::vector<std::string> stops);

  // Appends a generated token; returns the text that became final with it (often empty).
  std::string add(int32_t token);
  // True once the text holds a stop string: generation must end; the text ends before it.
  bool stopped() const { return stopped_; }
  // Generation ended: returns the rest of the text (held-back characters included), cut before
  // a stop string if one is there now.
  std::string finish();

  const std::string& released() const { return released_; }  // every piece returned so far
  int64_t tokens() const { return static_cast<int64_t>(ids_.size()); }

 private:
  // The text the tokens after read_ add (empty while it ends with an unfinished character, unless
  // `final`); advances the window.
  std::string decode_new_text(bool final);
  // Cuts `text` at the first stop string that starts at or after `from`; true when one was found.
  bool cut_at_stop(std::string& text, size_t from) const;
  // Bytes at the end of `text` that could be the start of a stop string.
  size_t stop_prefix_length(const std::string& text) const;
  std::string release_up_to(const std::string& text, size_t end);

  DecodeTokens decode_;
  std::vector<std::string> stops_;
  std::vector<int32_t> ids_;
  size_t window_ = 0;  // ids_[window_, read_) decode to text already in text_
  size_t read_ = 0;    // ids_[read_, end) are not in text_ yet
  std::string text_;   // the whole characters decoded so far
  std::string released_;
  bool stopped_ = false;
};

// Bytes at the end of `text` that are not yet a whole character: an incomplete UTF-8 sequence,
// then any U+FFFD replacement characters before it.
size_t unfinished_tail_length(const std::string& text);

// `text` with every byte that is not part of a valid UTF-8 sequence replaced by U+FFFD (JSON
// needs valid UTF-8).
std::string valid_utf8(const std::string& text);

}  // namespace zerotune::serve
