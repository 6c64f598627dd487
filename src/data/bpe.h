// The BPE model of Hugging Face's tokenizers library (tokenizer.json "model": {"type": "BPE"}):
// a word (one pre-token) is split into its characters, each looked up in the vocabulary (with
// byte_fallback, a missing character becomes its <0xNN> byte tokens; otherwise the unk token,
// consecutive ones fused into one with fuse_unk), then adjacent pairs are merged, always the pair
// of lowest merge rank first and of equal ranks the leftmost, until no pair has a merge.
// ignore_merges (Llama-3): a word that is itself in the vocabulary is that one token. Results are
// cached per word (as the library caches), so repeated words cost one lookup.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace zerotune {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};
using TokenIds = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct BpeOptions {
  std::string unk_token;  // empty: none (an unknown character is dropped, as the library does)
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

class BpeModel {
 public:
  // `merges` in rank order; each part and the concatenation must be in `vocab` (errors name
  // `source` and the merge's index). `vocab` ids must be distinct and non-negative.
  BpeModel(TokenIds vocab, const std::vector<std::pair<std::string, std::string>>& merges,
           BpeOptions options, const std::string& source);

  // Appends the ids of `word`, a valid UTF-8 pre-token. Thread-safe.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  int32_t token_to_id(std::string_view token) const;  // -1 when not in the vocabulary
  // The token of `id`; null for an id the vocabulary does not use.
  const std::string* id_to_token(int32_t id) const;
  int64_t id_limit() const { return static_cast<int64_t>(tokens_.size()); }  // max id + 1
  const TokenIds& vocab() const { return vocab_; }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  struct Symbol {
    int32_t id;
    int32_t prev, next;  // neighbours in the word, -1 at the ends
    int32_t bytes;       // 0 once merged into its left neighbour
  };
  const Merge* find_merge(int32_t left, int32_t right) const;
  void initial_symbols(std::string_view word, std::vector<Symbol>& symbols) const;
  void merge_symbols(std::vector<Symbol>& symbols) const;

  TokenIds vocab_;
  std::vector<std::string> tokens_;  // by id; empty where no token has the id
  std::unordered_map<uint64_t, Merge> merges_;
  BpeOptions options_;
  int32_t unk_id_ = -1;
  std::array<int32_t, 256> byte_ids_{};  // <0xNN> tokens for byte_fallback, -1 when absent

  // Word -> ids, in shards so that threads encoding at once rarely wait for each other.
  static constexpr size_t kCacheShards = 16;
  static constexpr size_t kCacheWordsPerShard = 4096;
  static constexpr size_t kCacheMaxWordBytes = 256;
  struct CacheShard {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> words;
  };
  mutable std::unique_ptr<CacheShard[]> cache_;
};

}  // namespace zerotune
