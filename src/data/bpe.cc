#include "data/bpe.h"

#include <cstdio>
#include <queue>

#include "core/check.h"
#include "data/hf_text.h"

namespace zerotune {

namespace {

uint64_t pair_key(int32_t left, int32_t right) {
  return static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32 | static_cast<uint32_t>(right);
}

// A merge waiting in the queue: lowest rank first, then leftmost.
struct Candidate {
  int32_t rank, pos, new_id;
  bool operator<(const Candidate& other) const {
    return rank != other.rank ? rank > other.rank : pos > other.pos;
  }
};

}  // namespace

BpeModel::BpeModel(TokenIds vocab, const std::vector<std::pair<std::string, std::string>>& merges,
                   BpeOptions options, const std::string& source)
    : vocab_(std::move(vocab)),
      options_(std::move(options)),
      cache_(std::make_unique<CacheShard[]>(kCacheShards)) {
  int64_t limit = 0;
  for (const auto& [token, id] : vocab_) {
    ZT_CHECK(id >= 0, source, ": model.vocab[", token, "] = ", id, " is negative");
    limit = std::max<int64_t>(limit, int64_t{id} + 1);
  }
  tokens_.resize(static_cast<size_t>(limit));
  for (const auto& [token, id] : vocab_) {
    ZT_CHECK(tokens_[static_cast<size_t>(id)].empty(), source, ": model.vocab gives id ", id,
             " to both \"", tokens_[static_cast<size_t>(id)], "\" and \"", token, "\"");
    tokens_[static_cast<size_t>(id)] = token;
  }
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    const int32_t a = token_to_id(left), b = token_to_id(right);
    const int32_t merged = token_to_id(left + right);
    ZT_CHECK(a >= 0 && b >= 0 && merged >= 0, source, ": model.merges[", rank, "] (\"", left,
             "\", \"", right, "\"): ",
             a < 0   ? "its left part"
             : b < 0 ? "its right part"
                     : "the merged token",
             " is not in model.vocab");
    // A pair listed twice keeps its first (lowest) rank, as the library's map keeps it.
    merges_.emplace(pair_key(a, b), Merge{static_cast<int32_t>(rank), merged});
  }
  if (!options_.unk_token.empty()) unk_id_ = token_to_id(options_.unk_token);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    byte_ids_[static_cast<size_t>(b)] = token_to_id(name);
  }
}

int32_t BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || id >= id_limit() || tokens_[static_cast<size_t>(id)].empty()) return nullptr;
  return &tokens_[static_cast<size_t>(id)];
}

const BpeModel::Merge* BpeModel::find_merge(int32_t left, int32_t right) const {
  const auto it = merges_.find(pair_key(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

// The library's merge_word: one symbol per character, byte tokens for a character outside the
// vocabulary (byte_fallback), else unk. A pending unk is flushed only by the next known
// character, so byte tokens can come before it, exactly as the library orders them.
void BpeModel::initial_symbols(std::string_view word, std::vector<Symbol>& symbols) const {
  const auto add = [&](int32_t id, size_t bytes) {
    const auto index = static_cast<int32_t>(symbols.size());
    if (!symbols.empty()) symbols.back().next = index;
    symbols.push_back({id, index - 1, -1, static_cast<int32_t>(bytes)});
  };
  int32_t pending_unk_bytes = 0;  // > 0: an unk symbol not yet added
  size_t pos = 0;
  while (pos < word.size()) {
    size_t length = 1;
    (void)next_code_point(word, pos, &length);
    const std::string_view character = word.substr(pos, length);
    pos += length;
    if (const int32_t id = token_to_id(character); id >= 0) {
      if (pending_unk_bytes > 0) add(unk_id_, static_cast<size_t>(pending_unk_bytes));
      pending_unk_bytes = 0;
      add(id, length);
      continue;
    }
    if (options_.byte_fallback) {
      bool all = true;
      for (const char c : character) all = all && byte_ids_[static_cast<unsigned char>(c)] >= 0;
      if (all) {
        for (const char c : character) add(byte_ids_[static_cast<unsigned char>(c)], 1);
        continue;
      }
    }
    if (unk_id_ < 0) continue;
    if (pending_unk_bytes > 0 && !options_.fuse_unk) {
      add(unk_id_, static_cast<size_t>(pending_unk_bytes));
      pending_unk_bytes = 0;
    }
    pending_unk_bytes += static_cast<int32_t>(length);
  }
  if (pending_unk_bytes > 0) add(unk_id_, static_cast<size_t>(pending_unk_bytes));
}

void BpeModel::merge_symbols(std::vector<Symbol>& symbols) const {
  std::priority_queue<Candidate> queue;
  const auto push_pair = [&](int32_t pos) {
    if (pos < 0) return;
    const int32_t next = symbols[static_cast<size_t>(pos)].next;
    if (next < 0) return;
    if (const Merge* m = find_merge(symbols[static_cast<size_t>(pos)].id,
                                    symbols[static_cast<size_t>(next)].id)) {
      queue.push({m->rank, pos, m->new_id});
    }
  };
  for (size_t i = 0; i + 1 < symbols.size(); ++i) push_pair(static_cast<int32_t>(i));
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[static_cast<size_t>(top.pos)];
    if (left.bytes == 0 || left.next < 0) continue;
    Symbol& right = symbols[static_cast<size_t>(left.next)];
    const Merge* m = find_merge(left.id, right.id);
    if (!m || m->new_id != top.new_id) continue;  // the pair changed since it was queued
    left.id = top.new_id;
    left.bytes += right.bytes;
    right.bytes = 0;
    left.next = right.next;
    if (left.next >= 0) symbols[static_cast<size_t>(left.next)].prev = top.pos;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(top.pos);
  }
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (options_.ignore_merges) {
    if (const int32_t id = token_to_id(word); id >= 0) {
      out.push_back(id);
      return;
    }
  }
  const bool cacheable = word.size() <= kCacheMaxWordBytes;
  CacheShard& shard = cache_[std::hash<std::string_view>()(word) % kCacheShards];
  if (cacheable) {
    std::lock_guard lock(shard.mutex);
    if (const auto it = shard.words.find(word); it != shard.words.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  initial_symbols(word, symbols);
  merge_symbols(symbols);
  const size_t first = out.size();
  for (const Symbol& s : symbols) {
    if (s.bytes > 0) out.push_back(s.id);
  }
  if (cacheable) {
    std::lock_guard lock(shard.mutex);
    if (shard.words.size() < kCacheWordsPerShard) {
      shard.words.emplace(std::string(word), std::vector<int32_t>(out.begin() + first, out.end()));
    }
  }
}

}  // namespace zerotune
