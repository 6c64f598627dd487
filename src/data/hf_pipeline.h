// The stages of a tokenizer.json around its model, as Hugging Face's tokenizers library runs them:
//  - normalizer: NFC, Prepend, Replace (a string or a regex), and Sequence of these;
//  - pre-tokenizer: Split (a string or a regex; behaviours Removed, Isolated, MergedWithPrevious,
//    MergedWithNext, Contiguous; invert), ByteLevel (add_prefix_space, use_regex with GPT-2's
//    pattern), Metaspace (replacement, prepend_scheme always / first / never, split), and
//    Sequence of these;
//  - decoder: ByteLevel, ByteFallback, Metaspace, Replace, Fuse, Strip, and Sequence of these.
// Any other type is refused, naming its JSON path and the supported types.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "data/hf_text.h"

namespace zerotune {

// One normalizer step (a Sequence is flattened into its steps).
struct NormalizerStep {
  enum class Kind { nfc, prepend, replace } kind;
  std::string text;                // prepend: the prefix; replace: the string pattern
  std::string content;             // replace: the replacement
  std::shared_ptr<Regex> pattern;  // replace: a regex pattern (null for a string one)
};

class Normalizer {
 public:
  // `value`: tokenizer.json's "normalizer" (null: none). `path` names it in errors.
  Normalizer(const json::Value& value, const std::string& path);
  bool empty() const { return steps_.empty(); }
  std::string apply(std::string_view text) const;

 private:
  void add(const json::Value& value, const std::string& path);
  std::vector<NormalizerStep> steps_;
};

// A piece of text between pre-tokenizer splits; at_start: it begins the whole input (what
// Metaspace's prepend_scheme "first" asks).
struct PreToken {
  std::string text;
  bool at_start;
};

struct PreTokenizerStep {
  enum class Kind { split, byte_level, metaspace } kind;
  enum class Behavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };
  std::shared_ptr<Regex> pattern;  // split (a string pattern is compiled escaped); byte_level
  Behavior behavior = Behavior::isolated;
  bool invert = false;
  bool add_prefix_space = false;  // byte_level
  std::string replacement;        // metaspace
  enum class Prepend { always, first, never } prepend = Prepend::always;
  bool split_on_replacement = true;  // metaspace
};

class PreTokenizer {
 public:
  PreTokenizer(const json::Value& value, const std::string& path);
  // Splits `pieces` in place through every step.
  void apply(std::vector<PreToken>& pieces) const;

 private:
  void add(const json::Value& value, const std::string& path);
  std::vector<PreTokenizerStep> steps_;
};

struct DecoderStep {
  enum class Kind { byte_level, byte_fallback, metaspace, replace, fuse, strip } kind;
  std::string pattern, content;  // replace: string pattern -> content; metaspace: replacement
  uint32_t strip_char = ' ';
  int64_t start = 0, stop = 0;  // strip
  bool prepend_first = true;    // metaspace: drop the first token's leading space
};

class Decoder {
 public:
  Decoder(const json::Value& value, const std::string& path);
  // The text of `tokens` (model tokens and added tokens' content, in order).
  std::string apply(std::vector<std::string> tokens) const;

 private:
  void add(const json::Value& value, const std::string& path);
  bool none_ = false;  // no decoder: the tokens joined with spaces, as the library does
  std::vector<DecoderStep> steps_;
};

// The "type" of a component object, checked against `supported` (", "-separated, for the
// message): `<path>.type 'X' is not supported; supported: ...`.
std::string component_type(const json::Value& value, const std::string& path,
                           const std::vector<std::string_view>& supported);

}  // namespace zerotune
