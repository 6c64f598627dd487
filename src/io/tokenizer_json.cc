#include "io/tokenizer_json.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <string_view>
#include <tuple>
#include <unordered_map>

#include "core/check.h"
#include "core/json.h"

namespace zerotune {

namespace {

using AddedTokens = std::vector<std::pair<std::string, int32_t>>;

constexpr const char* kSpaceMark = "\xe2\x96\x81";  // "▁", SentencePiece's escaped space

// ---- model ------------------------------------------------------------------------------------

// LlamaConverter.vocab: the pieces with their scores, except that ids 0-2 (unk, bos, eos) score 0.
std::vector<SentencePieceEntry> converter_vocab(const SentencePieceModelInfo& model) {
  std::vector<SentencePieceEntry> vocab = model.pieces;
  for (size_t id = 0; id < vocab.size() && id < 3; ++id) vocab[id].score = 0.0f;
  return vocab;
}

// One merge as generate_merges collects it before the final sort.
struct MergeCandidate {
  int32_t left_id, right_id;
  float score;                      // the merged piece's
  int64_t left_chars, right_chars;  // lengths in code points (Python's len)
};

// The splits of `piece` into two pieces, at code-point boundaries, in (left id, right id) order.
void append_splits(std::string_view piece, float score,
                   const std::unordered_map<std::string_view, int32_t>& ids,
                   std::vector<MergeCandidate>& out) {
  const size_t first = out.size();
  const int64_t total_chars = utf8_length(piece);
  int64_t left_chars = 0;
  for (size_t cut = 1; cut < piece.size(); ++cut) {
    if ((static_cast<unsigned char>(piece[cut]) & 0xc0) == 0x80) continue;  // inside a code point
    ++left_chars;
    const auto left = ids.find(piece.substr(0, cut));
    if (left == ids.end()) continue;
    const auto right = ids.find(piece.substr(cut));
    if (right == ids.end()) continue;
    out.push_back({left->second, right->second, score, left_chars, total_chars - left_chars});
  }
  std::sort(out.begin() + static_cast<std::ptrdiff_t>(first), out.end(),
            [](const MergeCandidate& a, const MergeCandidate& b) {
              return std::pair(a.left_id, a.right_id) < std::pair(b.left_id, b.right_id);
            });
}

bool has_space(const std::vector<std::pair<std::string, std::string>>& merges) {
  return std::any_of(merges.begin(), merges.end(), [](const auto& merge) {
    return merge.first.find(' ') != std::string::npos ||
           merge.second.find(' ') != std::string::npos;
  });
}

// Merges as "left right" strings, the spelling every tokenizers version reads (and the one of the
// Llama-2 and Mistral files on the Hub); [left, right] pairs (tokenizers >= 0.20) only when a piece
// holds a space, which would make the string form ambiguous.
json::Value merges_json(const std::vector<std::pair<std::string, std::string>>& merges) {
  const bool as_pairs = has_space(merges);
  json::Value out = json::Value::array();
  for (const auto& [left, right] : merges) {
    if (!as_pairs) {
      out.push_back(left + " " + right);
      continue;
    }
    json::Value pair = json::Value::array();
    pair.push_back(left);
    pair.push_back(right);
    out.push_back(std::move(pair));
  }
  return out;
}

// Keys in the order tokenizers serializes them (models/bpe/serialization.rs).
json::Value bpe_model_json(const SentencePieceModelInfo& model) {
  json::Value vocab = json::Value::object();
  for (size_t id = 0; id < model.pieces.size(); ++id) vocab.set(model.pieces[id].text, id);
  json::Value out = json::Value::object();
  out.set("type", "BPE");
  out.set("dropout", nullptr);
  out.set("unk_token", model.unk_piece);
  out.set("continuing_subword_prefix", nullptr);
  out.set("end_of_word_suffix", nullptr);
  out.set("fuse_unk", true);
  out.set("byte_fallback", true);
  out.set("ignore_merges", false);
  out.set("vocab", std::move(vocab));
  out.set("merges", merges_json(sentencepiece_bpe_merges(converter_vocab(model))));
  return out;
}

json::Value unigram_model_json(const SentencePieceModelInfo& model) {
  json::Value vocab = json::Value::array();
  for (const SentencePieceEntry& piece : converter_vocab(model)) {
    json::Value entry = json::Value::array();
    entry.push_back(piece.text);
    entry.push_back(static_cast<double>(piece.score));
    vocab.push_back(std::move(entry));
  }
  json::Value out = json::Value::object();
  out.set("type", "Unigram");
  out.set("unk_id", 0);  // LlamaConverter.unk_id
  out.set("vocab", std::move(vocab));
  out.set("byte_fallback", true);
  return out;
}

json::Value model_json(const SentencePieceModelInfo& model, const std::string& source) {
  switch (model.algorithm) {
    case SentencePieceAlgorithm::bpe:
      return bpe_model_json(model);
    case SentencePieceAlgorithm::unigram:
      return unigram_model_json(model);
    default:
      fail(str(source, ": trainer_spec.model_type ", static_cast<int>(model.algorithm),
               " (WORD or CHAR) has no tokenizer.json form; expected BPE or UNIGRAM, as Llama "
               "tokenizers are"));
  }
}

// ---- pipeline around the model ----------------------------------------------------------------

json::Value replace_json(std::string_view pattern, std::string_view content) {
  json::Value literal = json::Value::object();
  literal.set("String", pattern);
  json::Value out = json::Value::object();
  out.set("type", "Replace");
  out.set("pattern", std::move(literal));
  out.set("content", content);
  return out;
}

json::Value normalizer_json() {
  json::Value prepend = json::Value::object();
  prepend.set("type", "Prepend");
  prepend.set("prepend", kSpaceMark);
  json::Value steps = json::Value::array();
  steps.push_back(std::move(prepend));
  steps.push_back(replace_json(" ", kSpaceMark));
  json::Value out = json::Value::object();
  out.set("type", "Sequence");
  out.set("normalizers", std::move(steps));
  return out;
}

json::Value decoder_json() {
  json::Value steps = json::Value::array();
  steps.push_back(replace_json(kSpaceMark, " "));
  for (const char* type : {"ByteFallback", "Fuse"}) {
    json::Value step = json::Value::object();
    step.set("type", type);
    steps.push_back(std::move(step));
  }
  json::Value strip = json::Value::object();  // the dummy prefix's space
  strip.set("type", "Strip");
  strip.set("content", " ");
  strip.set("start", 1);
  strip.set("stop", 0);
  steps.push_back(std::move(strip));
  json::Value out = json::Value::object();
  out.set("type", "Sequence");
  out.set("decoders", std::move(steps));
  return out;
}

// One TemplateProcessing piece: {"SpecialToken": {"id": "<s>", "type_id": 0}} or
// {"Sequence": {"id": "A", "type_id": 0}}.
json::Value template_piece(const char* kind, const std::string& id, int type_id) {
  json::Value inner = json::Value::object();
  inner.set("id", id);
  inner.set("type_id", type_id);
  json::Value out = json::Value::object();
  out.set(kind, std::move(inner));
  return out;
}

json::Value post_processor_json(const std::string& bos, int64_t bos_id) {
  json::Value single = json::Value::array();
  single.push_back(template_piece("SpecialToken", bos, 0));
  single.push_back(template_piece("Sequence", "A", 0));
  json::Value pair = single;
  pair.push_back(template_piece("SpecialToken", bos, 1));
  pair.push_back(template_piece("Sequence", "B", 1));
  json::Value ids = json::Value::array();
  ids.push_back(bos_id);
  json::Value tokens = json::Value::array();
  tokens.push_back(bos);
  json::Value bos_entry = json::Value::object();
  bos_entry.set("id", bos);
  bos_entry.set("ids", std::move(ids));
  bos_entry.set("tokens", std::move(tokens));
  json::Value special_tokens = json::Value::object();
  special_tokens.set(bos, std::move(bos_entry));
  json::Value out = json::Value::object();
  out.set("type", "TemplateProcessing");
  out.set("single", std::move(single));
  out.set("pair", std::move(pair));
  out.set("special_tokens", std::move(special_tokens));
  return out;
}

// ---- added tokens -----------------------------------------------------------------------------

// The id of a special token as data/tokenizer.h resolves it: its text among the pieces (first
// occurrence) and the added tokens, or, when no text is named, the model's own id for it.
int64_t special_token_id(const std::string& token, int32_t model_id, const char* field,
                         const std::vector<std::string>& pieces, const AddedTokens& added,
                         const std::string& source) {
  const auto base = static_cast<int64_t>(pieces.size());
  if (token.empty()) {
    ZT_CHECK(model_id >= 0 && model_id < base, source, ": no ", field,
             " is named and the SentencePiece model's own id for it is ", model_id,
             ", outside its ", base, " pieces");
    return model_id;
  }
  const auto piece = std::find(pieces.begin(), pieces.end(), token);
  if (piece != pieces.end()) return piece - pieces.begin();
  for (const auto& [text, id] : added) {
    if (text == token) return id;
  }
  fail(str(source, ": ", field, " ", json::quote(token),
           " is neither a SentencePiece piece nor an added token, so tokenizer.json cannot "
           "name it"));
}

// The fields of tokenizers' AddedToken, in its serialization order.
json::Value added_token_json(int64_t id, const std::string& content) {
  json::Value out = json::Value::object();
  out.set("id", id);
  out.set("content", content);
  out.set("single_word", false);
  out.set("lstrip", false);
  out.set("rstrip", false);
  out.set("normalized", false);
  out.set("special", true);
  return out;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> sentencepiece_bpe_merges(
    const std::vector<SentencePieceEntry>& vocab) {
  std::unordered_map<std::string_view, int32_t> ids;
  ids.reserve(vocab.size());
  for (size_t id = 0; id < vocab.size(); ++id) {
    ids.emplace(vocab[id].text, static_cast<int32_t>(id));  // the first id of a repeated piece
  }
  std::vector<MergeCandidate> candidates;
  for (const SentencePieceEntry& piece : vocab) {
    append_splits(piece.text, piece.score, ids, candidates);
  }
  // Python's sorted(..., key=(score, len(left), len(right)), reverse=True) keeps equal keys in
  // their order, which is what stable_sort with "greater" does.
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const MergeCandidate& a, const MergeCandidate& b) {
                     return std::tuple(a.score, a.left_chars, a.right_chars) >
                            std::tuple(b.score, b.left_chars, b.right_chars);
                   });
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(candidates.size());
  for (const MergeCandidate& c : candidates) {
    merges.emplace_back(vocab[static_cast<size_t>(c.left_id)].text,
                        vocab[static_cast<size_t>(c.right_id)].text);
  }
  return merges;
}

std::string make_tokenizer_json(const TokenizerFiles& files, const std::string& model_source) {
  const SentencePieceModelInfo model = read_sentencepiece_model(files.model_proto, model_source);
  std::vector<std::string> pieces;
  pieces.reserve(model.pieces.size());
  for (const SentencePieceEntry& piece : model.pieces) pieces.push_back(piece.text);
  const AddedTokens added = new_added_tokens(files.added_tokens, pieces, model_source);

  const int64_t unk_id =
      special_token_id(files.unk_token, model.unk_id, "unk_token", pieces, added, model_source);
  const int64_t bos_id =
      special_token_id(files.bos_token, model.bos_id, "bos_token", pieces, added, model_source);
  const int64_t eos_id =
      special_token_id(files.eos_token, model.eos_id, "eos_token", pieces, added, model_source);
  const auto text_of = [&](int64_t id) -> const std::string& {
    const auto index = static_cast<size_t>(id);
    return index < pieces.size() ? pieces[index] : added[index - pieces.size()].first;
  };
  // Ordered by id, as transformers lists them; a token named twice is listed once.
  std::map<int64_t, std::string> specials;
  for (const int64_t id : {unk_id, bos_id, eos_id}) specials.emplace(id, text_of(id));
  for (const auto& [token, id] : added) specials.emplace(id, token);
  json::Value added_json = json::Value::array();
  for (const auto& [id, token] : specials) added_json.push_back(added_token_json(id, token));

  // Top-level keys in tokenizers' order.
  json::Value root = json::Value::object();
  root.set("version", "1.0");
  root.set("truncation", nullptr);
  root.set("padding", nullptr);
  root.set("added_tokens", std::move(added_json));
  root.set("normalizer", normalizer_json());
  root.set("pre_tokenizer", nullptr);
  root.set("post_processor", post_processor_json(text_of(bos_id), bos_id));
  root.set("decoder", decoder_json());
  root.set("model", model_json(model, model_source));
  return root.dump(2) + "\n";
}

}  // namespace zerotune

namespace zerotune {

namespace {

json::Value parse_tokenizer_json(const std::string& json_text, const std::string& source) {
  json::Value root = json::parse(json_text, source);
  ZT_CHECK(root.is_object(), source, ": expected a JSON object, got ",
           json::Value::kind_name(root.kind()));
  return root;
}

int32_t json_token_id(const json::Value& value, const std::string& what) {
  const int64_t id = value.as_int64(what);
  ZT_CHECK(id >= 0 && id < (int64_t{1} << 31), what, " = ", id,
           " is outside the 32-bit token id range");
  return static_cast<int32_t>(id);
}

// id -> token over model.vocab and added_tokens (an added token restating a vocabulary entry
// under the same id, as Mistral's <unk> <s> </s> do, is one token).
std::vector<std::string> vocabulary_of(const json::Value& root, const std::string& source) {
  std::vector<std::pair<int32_t, const std::string*>> entries;
  if (const json::Value* model = root.find("model"); model && model->is_object()) {
    if (const json::Value* vocab = model->find("vocab"); vocab && vocab->is_object()) {
      for (const auto& [token, id] : vocab->members()) {
        entries.emplace_back(
            json_token_id(id, str(source, ": model.vocab[", json::quote(token), "]")), &token);
      }
    }
  }
  if (const json::Value* added = root.find("added_tokens"); added && !added->is_null()) {
    const std::vector<json::Value>& items = added->as_array(source + ": added_tokens");
    for (size_t i = 0; i < items.size(); ++i) {
      const std::string what = str(source, ": added_tokens[", i, "]");
      const json::Value* id = items[i].find("id");
      const json::Value* content = items[i].find("content");
      ZT_CHECK(id && content, what, ": expected {\"id\": ..., \"content\": ...}");
      entries.emplace_back(json_token_id(*id, what + ".id"),
                           &content->as_string(what + ".content"));
    }
  }
  int64_t size = 0;
  for (const auto& [id, token] : entries) size = std::max<int64_t>(size, int64_t{id} + 1);
  std::vector<std::string> out(static_cast<size_t>(size));
  for (const auto& [id, token] : entries) out[static_cast<size_t>(id)] = *token;
  return out;
}

}  // namespace

std::vector<std::string> tokenizer_json_vocabulary(const std::string& json_text,
                                                   const std::string& source) {
  return vocabulary_of(parse_tokenizer_json(json_text, source), source);
}

std::string tokenizer_json_with_added_tokens(const std::string& json_text, const AddedTokens& added,
                                             const std::string& source) {
  if (added.empty()) return json_text;  // byte for byte the file that was loaded
  json::Value root = parse_tokenizer_json(json_text, source);
  const std::vector<std::string> vocabulary = vocabulary_of(root, source);
  json::Value tokens = json::Value::array();
  if (const json::Value* existing = root.find("added_tokens"); existing && !existing->is_null()) {
    for (const json::Value& item : existing->as_array(source + ": added_tokens")) {
      tokens.push_back(item);
    }
  }
  int64_t expected = static_cast<int64_t>(vocabulary.size());
  for (const auto& [token, id] : added) {
    ZT_CHECK(id == expected, source, ": new token ", json::quote(token), " has id ", id,
             ", expected ", expected, " (new tokens follow the vocabulary, in order)");
    ZT_CHECK(!token.empty(), source, ": a new token (id ", id, ") is empty");
    json::Value entry = json::Value::object();
    entry.set("id", int64_t{id});
    entry.set("content", token);
    entry.set("single_word", false);
    entry.set("lstrip", false);
    entry.set("rstrip", false);
    entry.set("normalized", false);
    entry.set("special", true);
    tokens.push_back(std::move(entry));
    ++expected;
  }
  root.set("added_tokens", std::move(tokens));
  return root.dump(2) + "\n";
}

}  // namespace zerotune
