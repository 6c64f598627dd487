// What Tokenizer (data/tokenizer.h) needs from a tokenizer model: the SentencePiece
// tokenizer.model (data/tokenizer.cc) or Hugging Face's tokenizer.json (data/hf_tokenizer.h).
// Tokenizer itself splits the special tokens out of the text and adds BOS/EOS; a backend encodes
// the text between them and decodes ids back to text. Backends are immutable after construction,
// so their methods may be called from many threads at once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/added_tokens.h"

namespace zerotune {

class TokenizerBackend {
 public:
  virtual ~TokenizerBackend() = default;

  // Ids [0, vocab_size()) are the backend's own: its vocabulary and the tokens its file adds
  // (tokenizer.json's added_tokens). Tokens added later take ids from vocab_size() on.
  virtual int64_t vocab_size() const = 0;
  // The id of a vocabulary token, spelled as the model spells it ("▁Hello", "ĠHello"); -1 when
  // absent.
  virtual int32_t token_to_id(std::string_view token) const = 0;
  // The token of an id below vocab_size(); empty for an id no token uses.
  virtual std::string id_to_token(int32_t id) const = 0;

  // Appends the ids of `text`, a non-empty run of text between special tokens; `at_start`: it
  // begins the whole input (Metaspace's prepend_scheme "first" prefixes only that one).
  virtual void encode_segment(std::string_view text, bool at_start,
                              std::vector<int32_t>& out) const = 0;
  // The text of `ids` (every one below the tokenizer's vocabulary size), where `specials` gives
  // the text of the special tokens among them.
  virtual std::string decode(const std::vector<int32_t>& ids,
                             const SpecialTokenSplitter& specials) const = 0;
};

}  // namespace zerotune
