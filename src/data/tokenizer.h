// The tokenizer of a Hugging Face folder, with one of two backends (data/tokenizer_backend.h):
//  - tokenizer.json (data/hf_tokenizer.h), when the folder has one, as transformers' AutoTokenizer
//    prefers it (Llama-3.x, Qwen2.5, Mistral): encoded exactly as Hugging Face's tokenizers library
//    encodes it (its added_tokens split out first, with their lstrip/rstrip/single_word flags;
//    the normalizer, pre-tokenizer and BPE model on the text between them); BOS/EOS/pad from
//    tokenizer_config.json / special_tokens_map.json; a training example is what the
//    post-processor puts around the text (Llama-3: <|begin_of_text|>; Qwen2.5: nothing) + the
//    text + EOS;
//  - otherwise Llama's SentencePiece tokenizer.model (through libsentencepiece), with the
//    semantics of Hugging Face's slow LlamaTokenizer(legacy=True): every run of text between
//    special tokens is encoded by SentencePiece on its own, so each gets its own leading '▁'
//    (encode("<X>inform") ends like encode("inform")); a training example is <s> + ids + </s>.
// Added special tokens (the job's tokens.json) follow transformers' add_tokens(tokens,
// special_tokens=True) (transformers >= 4.34) on either backend:
//  - a new token gets the next id after the model's vocabulary (tokenizer.json: after its
//    added_tokens too, so Llama-3's reserved special tokens are not reused) in the order given;
//    duplicates are skipped, and so are tokens already in the vocabulary, which keep their id
//    but, as in HF, are still split out of text as special tokens;
//  - text is split on the special tokens: the leftmost match wins, the longest token at that
//    position first. The new tokens strip no whitespace around them (lstrip = rstrip = False;
//    transformers < 4.34 stripped spaces around added tokens).
// Examples are truncated to their first ctx_len ids; pad = the folder's pad_token, else eos.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data/added_tokens.h"
#include "data/tokenizer_backend.h"
#include "io/tokenizer_files.h"

namespace zerotune {

// Whether decode() renders <s> and </s> or drops them.
enum class BosEos { keep, skip };

// Copies share the immutable backend. The const methods may be called from many threads at once;
// add_special_tokens() must not race with them.
class Tokenizer {
 public:
  // files.tokenizer_json when set, else files.model_proto. Errors name "tokenizer.json" or
  // "tokenizer.model" and the field at fault.
  static Tokenizer from_files(const TokenizerFiles& files);
  // A folder: read_tokenizer_files(folder) (tokenizer.json or tokenizer.model, the config files);
  // a file: a tokenizer.model or a tokenizer.json alone (its name ends in .json), with no
  // config: a tokenizer.json then takes BOS from its post-processor and EOS from "</s>",
  // "<|end_of_text|>" or "<|endoftext|>", whichever it has.
  static Tokenizer load(const std::string& model_file_or_folder);

  // HF add_tokens(tokens, special_tokens=True). Returns how many new ids were assigned.
  int64_t add_special_tokens(const std::vector<std::string>& tokens);

  // Token ids of `text`, without BOS / EOS (add_special_tokens=False).
  std::vector<int32_t> encode(std::string_view text) const;
  // What transformers' tokenizer(text) gives (add_special_tokens=True): encode(text) inside the
  // post-processor's tokens (<s> for SentencePiece; tokenizer.json's TemplateProcessing).
  std::vector<int32_t> encode_with_special_tokens(std::string_view text) const;
  // A training example: encode_with_special_tokens(text) + EOS, cut to its first ctx_len ids when
  // ctx_len > 0 (then *truncated says whether anything was cut; *full_length, the length before the
  // cut).
  std::vector<int32_t> encode_example(std::string_view text, int64_t ctx_len,
                                      bool* truncated = nullptr,
                                      int64_t* full_length = nullptr) const;
  // The inverse of encode(), with special tokens rendered as their text. SentencePiece: each run
  // of its ids is decoded on its own (dropping the '▁' that encode prefixed to it), so
  // decode(encode(t)) == t; unlike HF's slow decode, no spaces are inserted around special
  // tokens. tokenizer.json: the library's decode(ids, skip_special_tokens=False) (its decoder
  // over all tokens), which gives t back wherever the library does.
  std::string decode(const std::vector<int32_t>& ids, BosEos bos_eos = BosEos::skip) const;

  int64_t vocab_size() const { return base_vocab_size_ + static_cast<int64_t>(added_.size()); }
  // The model's own ids: SentencePiece pieces, or tokenizer.json's vocabulary and added_tokens.
  int64_t base_vocab_size() const { return base_vocab_size_; }
  int32_t bos_id() const { return bos_id_; }  // -1: the model has none (Qwen2.5)
  int32_t eos_id() const { return eos_id_; }
  int32_t pad_id() const { return pad_id_; }  // the folder's pad_token, else eos (as the job)
  int32_t unk_id() const { return unk_id_; }
  // Tokens that got new ids, in id order: added_tokens()[i] has id base_vocab_size() + i.
  const std::vector<std::string>& added_tokens() const { return added_; }
  // The id of a special token or vocabulary token ("▁Hello", "ĠHello", "<START_Q>"); -1 when
  // neither.
  int32_t piece_to_id(std::string_view piece) const;
  std::string id_to_piece(int32_t id) const;

  // The files that reproduce this tokenizer (for writing checkpoints): the model files as
  // loaded, the new tokens with their ids, the special tokens (pad_token = eos_token unless the
  // folder named one). Tokens that were already in the vocabulary are not listed (HF's
  // added_tokens.json does not list them either).
  TokenizerFiles files() const;

 private:
  Tokenizer() = default;
  static Tokenizer from_files(const TokenizerFiles& files, const std::string& source);
  static Tokenizer from_sentencepiece(const TokenizerFiles& files, const std::string& source);
  static Tokenizer from_tokenizer_json(const TokenizerFiles& files, const std::string& source);
  void add_file_tokens(const TokenizerFiles& files, const std::string& source);
  int32_t resolve_special(const std::string& token, int sp_default, const char* field,
                          const std::string& source) const;

  std::shared_ptr<const TokenizerBackend> backend_;
  // The files as loaded (tokenizer.model / tokenizer.json / tokenizer_config.json bytes), for
  // files(); shared by copies.
  std::shared_ptr<const TokenizerFiles> source_files_;
  int64_t base_vocab_size_ = 0;
  int32_t bos_id_ = -1, eos_id_ = -1, unk_id_ = -1, pad_id_ = -1;
  std::string bos_token_, eos_token_, unk_token_, pad_token_;
  std::vector<int32_t> prefix_ids_, suffix_ids_;  // around a single sequence
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
