// The tokenizer files of a Hugging Face Llama folder, as bytes and fields: tokenizer.model
// (SentencePiece protobuf), added_tokens.json, tokenizer_config.json, special_tokens_map.json.
// Reading and writing them lives here; encoding text lives in data/tokenizer.h.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zerotune {

struct TokenizerFiles {
  std::string model_proto;  // the bytes of tokenizer.model
  // Tokens added on top of the SentencePiece vocabulary, in id order: base_vocab, base_vocab+1...
  std::vector<std::pair<std::string, int32_t>> added_tokens;
  std::string bos_token = "<s>", eos_token = "</s>", unk_token = "<unk>";
  std::string pad_token;         // empty: none saved (zerotune pads with eos)
  int64_t model_max_length = 0;  // 0: not set
};

// Reads tokenizer.model (required) and, when present, added_tokens.json,
// special_tokens_map.json and tokenizer_config.json from `dir`. Errors name file and field.
TokenizerFiles read_tokenizer_files(const std::string& dir);

// Writes the four files into `dir` (which must exist), each via a temporary name and rename.
// added_tokens.json maps token -> id ({"<START_Q>": 32000, ...}); tokenizer_config.json carries
// tokenizer_class "LlamaTokenizer", legacy true, the special tokens and added_tokens_decoder, so
// that transformers' AutoTokenizer loads the folder as it is. The input is checked before any file
// is written: tokenizer.model must parse and added token ids must run consecutively from its
// vocabulary size. (Reading and writing both accept, and drop, entries that restate a
// SentencePiece piece under its own id, as some exports list the control tokens.)
void write_tokenizer_files(const std::string& dir, const TokenizerFiles& files);

// The SentencePiece vocabulary of a tokenizer.model (its ModelProto's pieces, in id order), read
// from the protobuf wire format without the sentencepiece library. `source` names the file in
// errors; a truncated or malformed protobuf is an error, not a short vocabulary.
std::vector<std::string> sentencepiece_pieces(std::string_view model_proto,
                                              const std::string& source);

// The id of `token`: a SentencePiece piece (first occurrence) or an added token; -1 when absent.
int64_t tokenizer_token_id(const std::vector<std::string>& pieces, const TokenizerFiles& files,
                           std::string_view token);

}  // namespace zerotune
