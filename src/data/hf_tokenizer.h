// Hugging Face's tokenizer.json (the tokenizers library's file, what AutoTokenizer loads as a fast
// tokenizer) as a TokenizerBackend: normalizer -> pre-tokenizer -> BPE model per pre-token, and
// the decoder, exactly as the library runs them (data/hf_pipeline.h, data/bpe.h). The model must
// be BPE (byte-level as in Llama-3 and Qwen2, or SentencePiece-style with byte_fallback as in
// Mistral); merges are read as "a b" strings or ["a", "b"] pairs. The post-processor is read for
// what it adds around a single sequence (TemplateProcessing; ByteLevel adds nothing), and the
// added_tokens with their flags. What the library would do differently is refused, naming the
// JSON path: another model type, BPE dropout, continuing_subword_prefix / end_of_word_suffix,
// and any component type outside data/hf_pipeline.h's lists.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "data/added_tokens.h"
#include "data/bpe.h"
#include "data/hf_pipeline.h"
#include "data/tokenizer_backend.h"

namespace zerotune {

struct HfAddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool normalized = false;  // matched in the normalized text rather than the input
  AddedTokenFlags flags;
};

class HfTokenizer : public TokenizerBackend {
 public:
  // Parses the text of a tokenizer.json; `source` names it in errors.
  static std::shared_ptr<const HfTokenizer> parse(std::string_view json_text,
                                                  const std::string& source);

  int64_t vocab_size() const override { return vocab_size_; }
  int32_t token_to_id(std::string_view token) const override;
  std::string id_to_token(int32_t id) const override;
  void encode_segment(std::string_view text, bool at_start,
                      std::vector<int32_t>& out) const override;
  std::string decode(const std::vector<int32_t>& ids,
                     const SpecialTokenSplitter& specials) const override;

  // tokenizer.json's added_tokens, in file order.
  const std::vector<HfAddedToken>& added_tokens() const { return added_; }
  const std::string& unk_token() const { return unk_token_; }
  // What the post-processor puts before and after a single sequence (add_special_tokens=True).
  const std::vector<int32_t>& template_prefix() const { return prefix_; }
  const std::vector<int32_t>& template_suffix() const { return suffix_; }

 private:
  HfTokenizer(const json::Value& root, const std::string& source);
  void read_added_tokens(const json::Value& root, const std::string& source);
  void read_post_processor(const json::Value& value, const std::string& path);
  void read_template(const json::Value& value, const std::string& path);
  void encode_normalized(std::string text, bool at_start, std::vector<int32_t>& out) const;

  Normalizer normalizer_;
  PreTokenizer pre_tokenizer_;
  Decoder decoder_;
  std::unique_ptr<BpeModel> model_;
  std::string unk_token_;
  std::vector<HfAddedToken> added_;
  std::vector<int32_t> added_ids_;   // id -> index into added_ + 1 (0: not an added token)
  SpecialTokenSplitter normalized_;  // added tokens with normalized true, as normalized
  bool has_normalized_tokens_ = false;
  std::vector<int32_t> prefix_, suffix_;
  int64_t vocab_size_ = 0;
};

// The Bpe model's fields of tokenizer.json "model", parsed (shared with the io layer's vocabulary
// reader through the same rules): vocab and merges in either spelling.
TokenIds read_bpe_vocab(const json::Value& model, const std::string& path);
std::vector<std::pair<std::string, std::string>> read_bpe_merges(const json::Value& model,
                                                                 const std::string& path);

}  // namespace zerotune
