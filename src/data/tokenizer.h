// Llama's SentencePiece tokenizer (tokenizer.model, through libsentencepiece) plus added special
// tokens, with the semantics of Hugging Face's slow LlamaTokenizer(legacy=True) after
// tokenizer.add_tokens(tokens, special_tokens=True) (transformers >= 4.34):
//  - a new token gets the next id after the SentencePiece vocabulary (base_vocab, base_vocab+1...)
//    in the order given; duplicates are skipped, and so are tokens already in the vocabulary,
//    which keep their id but, as in HF, are still split out of text as special tokens;
//  - text is split on the special tokens (the added ones and the model's <unk>, <s>, </s>): the
//    leftmost match wins, the longest token at that position first (HF's Trie.split); each
//    special maps to its id, and each remaining non-empty segment is encoded by SentencePiece on
//    its own, so each segment gets its own leading '▁' (encode("<X>inform") ends like
//    encode("inform")). No whitespace around a special is stripped: HF creates these tokens with
//    lstrip = rstrip = False. (transformers < 4.34 stripped spaces around added tokens.)
//  - a training example is <s> + ids + </s>, truncated to its first ctx_len ids; pad = eos.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/tokenizer_files.h"

namespace sentencepiece {
class SentencePieceProcessor;
}  // namespace sentencepiece

namespace zerotune {

// Finds special tokens in text the way HF's Trie.split does: scanning left to right, the first
// position where any token matches, and there the longest token. Matching is on UTF-8 bytes, which
// for valid UTF-8 finds exactly the code-point matches.
class SpecialTokenSplitter {
 public:
  struct Segment {
    std::string_view text;  // a view into the split text; empty when this is a token
    int32_t token_id;       // -1 for a text segment
  };

  // Adds `token` (non-empty) with `id`; returns false, changing nothing, when already present.
  bool add(const std::string& token, int32_t id);
  bool contains(std::string_view token) const { return ids_.count(std::string(token)) > 0; }
  int32_t id_of(std::string_view token) const;  // -1 when not a special token

  // Appends the segments of `text` to `out` in order; text segments are never empty.
  void split(std::string_view text, std::vector<Segment>& out) const;

 private:
  struct Token {
    std::string text;
    int32_t id;
  };
  std::vector<Token> tokens_;
  std::unordered_map<std::string, int32_t> ids_;
  // Indices into tokens_ by first byte, longest token first, so the first hit is the longest.
  std::array<std::vector<uint32_t>, 256> by_first_byte_;
};

// Whether decode() renders <s> and </s> or drops them.
enum class BosEos { keep, skip };

// Copies share the immutable SentencePiece model. The const methods may be called from many
// threads at once; add_special_tokens() must not race with them.
class Tokenizer {
 public:
  // Errors name `files` by "tokenizer.model" and the field at fault.
  static Tokenizer from_files(const TokenizerFiles& files);
  // A folder: read_tokenizer_files(folder) (tokenizer.model, added_tokens.json, ...); a file: a
  // tokenizer.model alone, with no added tokens.
  static Tokenizer load(const std::string& model_file_or_folder);

  // HF add_tokens(tokens, special_tokens=True). Returns how many new ids were assigned.
  int64_t add_special_tokens(const std::vector<std::string>& tokens);

  // Token ids of `text`, without <s> / </s>.
  std::vector<int32_t> encode(std::string_view text) const;
  // A training example: <s> + encode(text) + </s>, cut to its first ctx_len ids when ctx_len > 0
  // (then *truncated says whether anything was cut; *full_length, the length before the cut).
  std::vector<int32_t> encode_example(std::string_view text, int64_t ctx_len,
                                      bool* truncated = nullptr,
                                      int64_t* full_length = nullptr) const;
  // The inverse of encode(): special tokens are rendered as their text and each run of
  // SentencePiece ids is decoded on its own (dropping the '▁' that encode prefixed to it), so
  // decode(encode(t)) == t. Unlike HF's decode, no spaces are inserted around special tokens.
  std::string decode(const std::vector<int32_t>& ids, BosEos bos_eos = BosEos::skip) const;

  int64_t vocab_size() const { return base_vocab_size_ + static_cast<int64_t>(added_.size()); }
  int64_t base_vocab_size() const { return base_vocab_size_; }  // SentencePiece pieces
  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  int32_t pad_id() const { return eos_id_; }  // as the fine-tuning job: pad_token = eos_token
  int32_t unk_id() const { return unk_id_; }
  // Tokens that got new ids, in id order: added_tokens()[i] has id base_vocab_size() + i.
  const std::vector<std::string>& added_tokens() const { return added_; }
  // The id of a special token or SentencePiece piece ("▁Hello", "<START_Q>"); -1 when neither.
  int32_t piece_to_id(std::string_view piece) const;
  std::string id_to_piece(int32_t id) const;

  // The files that reproduce this tokenizer (for writing checkpoints): the model bytes as loaded,
  // the new tokens with their ids, pad_token = eos_token. Tokens that were already in the
  // SentencePiece vocabulary are not listed (HF's added_tokens.json does not list them either).
  TokenizerFiles files() const;

 private:
  struct Model;  // the SentencePiece processor and the bytes it was loaded from
  Tokenizer() = default;
  static Tokenizer from_files(const TokenizerFiles& files, const std::string& source);
  int32_t resolve_special(const std::string& token, int sp_default, const char* field,
                          const std::string& source) const;
  void append_sentencepiece_ids(std::string_view segment, std::vector<int32_t>& out) const;

  std::shared_ptr<const Model> model_;
  int64_t base_vocab_size_ = 0;
  int32_t bos_id_ = -1, eos_id_ = -1, unk_id_ = -1;
  std::string bos_token_, eos_token_, unk_token_;
  int64_t model_max_length_ = 0;
  std::vector<std::string> added_;
  SpecialTokenSplitter specials_;
};

// Reads {"tokens": ["<START_Q>", ...]} (the tokens.json of the fine-tuning job). Errors name the
// file and field: `tokens.json: "tokens"[2] must be a string, got number`. Other keys are ignored,
// as the Python job ignores them; empty tokens are rejected.
std::vector<std::string> read_special_tokens_json(const std::string& path);

enum class SentencePieceModelType { bpe, unigram };

// Llama-like SentencePiece training: byte_fallback, split_digits, add_dummy_prefix, identity
// normalisation without whitespace folding, <unk>=0 <s>=1 </s>=2, no pad piece.
struct SentencePieceTrainOptions {
  int64_t vocab_size = 32000;
  SentencePieceModelType model_type = SentencePieceModelType::bpe;
  uint32_t seed = 0;  // draws the max_sentences sample (SentencePiece's own training is not random)
  int num_threads = 1;
  double character_coverage = 0.99995;  // Llama-2's; rarer characters fall back to bytes
  int64_t max_sentences = 0;  // 0: train on every text; else on this many, drawn at random
  // Cut out of the texts before training (as encode() cuts them), so that no piece is spent on
  // them.
  std::vector<std::string> special_tokens;
};

// Trains on `texts` and returns the bytes of tokenizer.model. Deterministic for the same texts and
// options (including num_threads, which changes the order of floating-point sums in unigram).
std::string train_sentencepiece(const std::vector<std::string>& texts,
                                const SentencePieceTrainOptions& options);

}  // namespace zerotune
