// The tokenizer files of a Hugging Face folder, as bytes and fields: tokenizer.json (Hugging
// Face's tokenizers library; Llama-3.x, Qwen2.5, Mistral) and/or tokenizer.model (SentencePiece
// protobuf; Llama-2), added_tokens.json, tokenizer_config.json, special_tokens_map.json. Where a
// folder has tokenizer.json, it defines the tokenizer, as transformers' AutoTokenizer prefers the
// fast tokenizer; otherwise tokenizer.model does, and on writing tokenizer.json is made from it
// (io/tokenizer_json.h). Reading and writing them lives here; encoding text lives in
// data/tokenizer.h.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zerotune {

struct TokenizerFiles {
  std::string model_proto;  // the bytes of tokenizer.model; may be empty when tokenizer_json is set
  // The text of tokenizer.json; when set, it defines the tokenizer (model_proto is only carried).
  std::string tokenizer_json;
  // tokenizer.json folders: the folder's tokenizer_config.json text, written back on export with
  // the new tokens and special tokens set, so that its other keys (chat_template...) survive.
  std::string tokenizer_config;
  // Tokens added on top of the model's vocabulary (SentencePiece pieces, or tokenizer.json's
  // vocabulary and added_tokens), in id order: base_vocab, base_vocab+1...
  std::vector<std::pair<std::string, int32_t>> added_tokens;
  std::string bos_token = "<s>", eos_token = "</s>", unk_token = "<unk>";
  std::string pad_token;         // empty: none saved (zerotune pads with eos)
  int64_t model_max_length = 0;  // 0: not set
};

// Whether `dir` has a tokenizer.json or a tokenizer.model.
bool has_tokenizer_files(const std::string& dir);

// Reads tokenizer.json or tokenizer.model (one is required; tokenizer.json wins when both are
// there, and tokenizer.model is then only carried, unless tokenizer.json is the converted form of
// tokenizer.model that encodes as SentencePiece does: Unigram, or the legacy Llama form with a
// "▁" Prepend normalizer and no pre-tokenizer, as transformers' LlamaConverter and
// write_tokenizer_files make it) and, when present, special_tokens_map.json and
// tokenizer_config.json from `dir`; with tokenizer.model also added_tokens.json (or
// tokenizer_config.json's added_tokens_decoder). With tokenizer.json, its own added_tokens are the
// added tokens, and the special tokens are only what the config files name (no "<s>" default).
// Errors name file and field.
TokenizerFiles read_tokenizer_files(const std::string& dir);

// Writes the five files into `dir` (which must exist), each via a temporary name and rename.
// added_tokens.json maps token -> id ({"<START_Q>": 32000, ...}); tokenizer_config.json carries
// tokenizer_class "LlamaTokenizer" (what transformers writes for the slow and the fast Llama
// tokenizer alike), legacy true, the special tokens and added_tokens_decoder; tokenizer.json is the
// fast tokenizer made from tokenizer.model and the added tokens (io/tokenizer_json.h). So
// transformers' AutoTokenizer, slow or fast, loads the folder as it is. The input is checked (and
// tokenizer.json built) before any file is written: tokenizer.model must parse and added token ids
// must run consecutively from its vocabulary size. (Reading and writing both accept, and drop,
// entries that restate a SentencePiece piece under its own id, as some exports list the control
// tokens.) A tokenizer.json the source folder had is never read or copied: the one written is
// always regenerated, so that it gives the ids training used.
// With files.tokenizer_json set, the files written are tokenizer.json (the one loaded, with each
// new token appended to "added_tokens" as special, normalized false, lstrip/rstrip/single_word
// false: what transformers' add_tokens(special_tokens=True) saves), tokenizer_config.json (the
// folder's, with the new tokens in added_tokens_decoder and the special tokens set),
// special_tokens_map.json, and tokenizer.model as loaded when there was one, with
// added_tokens.json listing every token after its pieces (for the slow tokenizer).
void write_tokenizer_files(const std::string& dir, const TokenizerFiles& files);

// The model's vocabulary by id (SentencePiece pieces, or tokenizer.json's model vocabulary and
// added_tokens; "" for an id no token uses) without files.added_tokens. `source` names the file.
std::vector<std::string> tokenizer_vocabulary(const TokenizerFiles& files,
                                              const std::string& source);

// SentencePiece's ModelProto.SentencePiece.Type.
enum class SentencePieceType : uint8_t {
  normal = 1,
  unknown = 2,
  control = 3,
  user_defined = 4,
  unused = 5,
  byte = 6,
};

// SentencePiece's TrainerSpec.ModelType.
enum class SentencePieceAlgorithm : uint8_t { unigram = 1, bpe = 2, word = 3, character = 4 };

struct SentencePieceEntry {
  std::string text;
  float score = 0.0f;
  SentencePieceType type = SentencePieceType::normal;
};

// The parts of a tokenizer.model that tokenizer.json is made from; defaults are the proto's.
struct SentencePieceModelInfo {
  std::vector<SentencePieceEntry> pieces;  // in id order
  SentencePieceAlgorithm algorithm = SentencePieceAlgorithm::unigram;
  std::string unk_piece = "<unk>";
  int32_t unk_id = 0, bos_id = 1, eos_id = 2;  // -1: none
};

// Bounds on what a tokenizer.model may hold; a file past them is not a tokenizer (Llama-2: 32,000
// pieces of at most 48 bytes), and they bound the work of deriving BPE merges.
constexpr int64_t kMaxSentencePieces = int64_t{1} << 21;
constexpr int64_t kMaxSentencePieceBytes = 1024;

// A tokenizer.model read from the protobuf wire format without the sentencepiece library: pieces
// with their scores and types, the algorithm and the special piece ids. `source` names the file
// in errors; a truncated or malformed protobuf, an unknown piece type or algorithm, an empty,
// duplicated or non-UTF-8 piece and a size past the bounds above are errors.
SentencePieceModelInfo read_sentencepiece_model(std::string_view model_proto,
                                                const std::string& source);

// The SentencePiece vocabulary of a tokenizer.model (the pieces' text, in id order), with the
// checks of read_sentencepiece_model.
std::vector<std::string> sentencepiece_pieces(std::string_view model_proto,
                                              const std::string& source);

// `added_tokens` sorted by id without entries that restate a SentencePiece piece under its own
// id, after checking that the rest take ids pieces.size(), pieces.size() + 1, ... (the first that
// does not is named, with `source`).
std::vector<std::pair<std::string, int32_t>> new_added_tokens(
    std::vector<std::pair<std::string, int32_t>> added_tokens,
    const std::vector<std::string>& pieces, const std::string& source);

// The number of code points of `text`, or -1 when it is not valid UTF-8 (RFC 3629: overlong
// forms, surrogates and code points above U+10FFFF are invalid).
int64_t utf8_length(std::string_view text);

// The id of `token`: a SentencePiece piece (first occurrence) or an added token; -1 when absent.
int64_t tokenizer_token_id(const std::vector<std::string>& pieces, const TokenizerFiles& files,
                           std::string_view token);

}  // namespace zerotune
