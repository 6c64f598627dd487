#include "data/hf_tokenizer.h"

#include <algorithm>

#include "core/check.h"
#include "data/hf_text.h"

namespace zerotune {

namespace {

const json::Value& member_or_null(const json::Value& root, const char* key) {
  static const json::Value null_value;
  const json::Value* v = root.find(key);
  return v ? *v : null_value;
}

bool flag(const json::Value& entry, const char* key, bool fallback, const std::string& path) {
  const json::Value* v = entry.find(key);
  return v && !v->is_null() ? v->as_bool(path + "." + key) : fallback;
}

// "model": BPE only, without the options that change how words are cut (dropout, subword
// prefixes and suffixes), which no model this reads uses.
BpeOptions read_bpe_options(const json::Value& model, const std::string& path) {
  ZT_CHECK(model.is_object(), path, ": expected an object, got ",
           json::Value::kind_name(model.kind()));
  const json::Value* type = model.find("type");
  const std::string type_name = type ? type->as_string(path + ".type") : "BPE";
  ZT_CHECK(type_name == "BPE", path, ".type '", type_name, "' is not supported; supported: BPE");
  const json::Value& dropout = member_or_null(model, "dropout");
  ZT_CHECK(dropout.is_null() || dropout.as_double(path + ".dropout") == 0.0, path,
           ".dropout is not supported (encoding would be random); expected null");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json::Value& v = member_or_null(model, key);
    ZT_CHECK(v.is_null() || v.as_string(str(path, ".", key)).empty(), path, ".", key,
             " is not supported; expected null");
  }
  BpeOptions options;
  if (const json::Value& unk = member_or_null(model, "unk_token"); !unk.is_null()) {
    options.unk_token = unk.as_string(path + ".unk_token");
  }
  options.fuse_unk = flag(model, "fuse_unk", false, path);
  options.byte_fallback = flag(model, "byte_fallback", false, path);
  options.ignore_merges = flag(model, "ignore_merges", false, path);
  return options;
}

int32_t token_id_value(const json::Value& value, const std::string& what) {
  const int64_t id = value.as_int64(what);
  ZT_CHECK(id >= 0 && id < (int64_t{1} << 31), what, " = ", id,
           " is outside the 32-bit token id range");
  return static_cast<int32_t>(id);
}

}  // namespace

TokenIds read_bpe_vocab(const json::Value& model, const std::string& path) {
  const json::Value* vocab = model.find("vocab");
  ZT_CHECK(vocab, path, ": missing \"vocab\"");
  TokenIds out;
  const std::vector<json::Value::Member>& members = vocab->as_object(path + ".vocab");
  out.reserve(members.size());
  for (const auto& [token, id] : members) {
    out.emplace(token, token_id_value(id, str(path, ".vocab[", json::quote(token), "]")));
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> read_bpe_merges(const json::Value& model,
                                                                 const std::string& path) {
  std::vector<std::pair<std::string, std::string>> out;
  const json::Value* merges = model.find("merges");
  if (!merges || merges->is_null()) return out;
  const std::vector<json::Value>& items = merges->as_array(path + ".merges");
  out.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string what = str(path, ".merges[", i, "]");
    if (items[i].is_string()) {
      // "a b": exactly one space, as the library requires of this spelling.
      const std::string& line = items[i].as_string(what);
      const size_t space = line.find(' ');
      ZT_CHECK(space != std::string::npos && line.find(' ', space + 1) == std::string::npos, what,
               " = ", json::quote(line), ": expected two tokens separated by one space");
      out.emplace_back(line.substr(0, space), line.substr(space + 1));
      continue;
    }
    const std::vector<json::Value>& pair = items[i].as_array(what);
    ZT_CHECK(pair.size() == 2, what, ": expected \"a b\" or [\"a\", \"b\"], got ", pair.size(),
             " elements");
    out.emplace_back(pair[0].as_string(what + "[0]"), pair[1].as_string(what + "[1]"));
  }
  return out;
}

std::shared_ptr<const HfTokenizer> HfTokenizer::parse(std::string_view json_text,
                                                      const std::string& source) {
  const json::Value root = json::parse(json_text, source);
  ZT_CHECK(root.is_object(), source, ": expected a JSON object, got ",
           json::Value::kind_name(root.kind()));
  return std::shared_ptr<const HfTokenizer>(new HfTokenizer(root, source));
}

HfTokenizer::HfTokenizer(const json::Value& root, const std::string& source)
    : normalizer_(member_or_null(root, "normalizer"), source + ": normalizer"),
      pre_tokenizer_(member_or_null(root, "pre_tokenizer"), source + ": pre_tokenizer"),
      decoder_(member_or_null(root, "decoder"), source + ": decoder") {
  const json::Value* model = root.find("model");
  ZT_CHECK(model, source, ": missing \"model\"");
  const std::string model_path = source + ": model";
  BpeOptions options = read_bpe_options(*model, model_path);
  unk_token_ = options.unk_token;
  model_ = std::make_unique<BpeModel>(read_bpe_vocab(*model, model_path),
                                      read_bpe_merges(*model, model_path), std::move(options),
                                      model_path);
  ZT_CHECK(unk_token_.empty() || model_->token_to_id(unk_token_) >= 0, model_path, ".unk_token ",
           json::quote(unk_token_), " is not in model.vocab");
  vocab_size_ = model_->id_limit();
  read_added_tokens(root, source);
  read_post_processor(member_or_null(root, "post_processor"), source + ": post_processor");
}

void HfTokenizer::read_added_tokens(const json::Value& root, const std::string& source) {
  const json::Value& list = member_or_null(root, "added_tokens");
  if (list.is_null()) return;
  const std::vector<json::Value>& items = list.as_array(source + ": added_tokens");
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string path = str(source, ": added_tokens[", i, "]");
    HfAddedToken token;
    token.id =
        token_id_value(items[i].find("id") ? *items[i].find("id") : json::Value(), path + ".id");
    token.content = items[i].find("content")
                        ? items[i].find("content")->as_string(path + ".content")
                        : std::string();
    ZT_CHECK(!token.content.empty(), path, ".content must be a non-empty string");
    token.special = flag(items[i], "special", false, path);
    token.normalized = flag(items[i], "normalized", !token.special, path);
    token.flags = {flag(items[i], "lstrip", false, path), flag(items[i], "rstrip", false, path),
                   flag(items[i], "single_word", false, path)};
    vocab_size_ = std::max<int64_t>(vocab_size_, int64_t{token.id} + 1);
    added_.push_back(std::move(token));
  }
  added_ids_.assign(static_cast<size_t>(vocab_size_), 0);
  for (size_t i = 0; i < added_.size(); ++i) {
    const HfAddedToken& token = added_[i];
    added_ids_[static_cast<size_t>(token.id)] = static_cast<int32_t>(i + 1);
    // The library matches a normalized token in normalized text, as the normalizer spells it.
    if (token.normalized) {
      const std::string spelled = normalizer_.apply(token.content);
      if (!spelled.empty())
        has_normalized_tokens_ |= normalized_.add(spelled, token.id, token.flags);
    }
  }
}

void HfTokenizer::read_post_processor(const json::Value& value, const std::string& path) {
  if (value.is_null()) return;
  const std::string type =
      component_type(value, path, {"TemplateProcessing", "ByteLevel", "Sequence"});
  if (type == "TemplateProcessing") {
    read_template(value, path);
  } else if (type == "Sequence") {
    const json::Value* list = value.find("processors");
    ZT_CHECK(list, path, ": a Sequence without \"processors\"");
    const std::vector<json::Value>& items = list->as_array(path + ".processors");
    for (size_t i = 0; i < items.size(); ++i) {
      read_post_processor(items[i], str(path, ".processors[", i, "]"));
    }
  }
  // ByteLevel as a post-processor only trims offsets, which ids do not carry.
}

void HfTokenizer::read_template(const json::Value& value, const std::string& path) {
  const json::Value* single = value.find("single");
  ZT_CHECK(single, path, ": missing \"single\"");
  const json::Value* specials = value.find("special_tokens");
  bool seen_sequence = false;
  const std::vector<json::Value>& items = single->as_array(path + ".single");
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string what = str(path, ".single[", i, "]");
    if (items[i].find("Sequence")) {
      seen_sequence = true;
      continue;
    }
    const json::Value* special = items[i].find("SpecialToken");
    ZT_CHECK(special, what, ": expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    const std::string& name =
        special->find("id") ? special->find("id")->as_string(what + ".id") : std::string();
    const json::Value* entry = specials ? specials->find(name) : nullptr;
    ZT_CHECK(entry, what, ": special token ", json::quote(name), " is not in ", path,
             ".special_tokens");
    const json::Value* ids = entry->find("ids");
    ZT_CHECK(ids, path, ".special_tokens[", json::quote(name), "]: missing \"ids\"");
    for (const json::Value& id : ids->as_array(str(path, ".special_tokens.", name, ".ids"))) {
      (seen_sequence ? suffix_ : prefix_).push_back(token_id_value(id, what));
    }
  }
  ZT_CHECK(seen_sequence, path, ".single: no {\"Sequence\": {\"id\": \"A\"}} item");
}

int32_t HfTokenizer::token_to_id(std::string_view token) const {
  for (const HfAddedToken& t : added_) {
    if (t.content == token) return t.id;
  }
  return model_->token_to_id(token);
}

std::string HfTokenizer::id_to_token(int32_t id) const {
  if (id >= 0 && static_cast<size_t>(id) < added_ids_.size() &&
      added_ids_[static_cast<size_t>(id)]) {
    return added_[static_cast<size_t>(added_ids_[static_cast<size_t>(id)] - 1)].content;
  }
  const std::string* token = model_->id_to_token(id);
  return token ? *token : std::string();
}

void HfTokenizer::encode_normalized(std::string text, bool at_start,
                                    std::vector<int32_t>& out) const {
  std::vector<PreToken> pieces;
  pieces.push_back({std::move(text), at_start});
  pre_tokenizer_.apply(pieces);
  for (const PreToken& piece : pieces) {
    if (!piece.text.empty()) model_->encode_word(piece.text, out);
  }
}

void HfTokenizer::encode_segment(std::string_view text, bool at_start,
                                 std::vector<int32_t>& out) const {
  // A Rust String holds valid UTF-8 only: the library sees what a lossy decode of the bytes gives.
  std::string valid = utf8_lossy(text);
  std::string normalized = normalizer_.empty() ? std::move(valid) : normalizer_.apply(valid);
  if (!has_normalized_tokens_) {
    encode_normalized(std::move(normalized), at_start, out);
    return;
  }
  std::vector<SpecialTokenSplitter::Segment> segments;
  normalized_.split(normalized, segments);
  for (const SpecialTokenSplitter::Segment& s : segments) {
    if (s.token_id >= 0) {
      out.push_back(s.token_id);
    } else {
      encode_normalized(std::string(s.text), at_start && s.text.data() == normalized.data(), out);
    }
  }
}

std::string HfTokenizer::decode(const std::vector<int32_t>& ids,
                                const SpecialTokenSplitter& specials) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const int32_t id : ids) {
    if (const std::string* content = specials.content_of(id)) {
      tokens.push_back(*content);
    } else {
      tokens.push_back(id_to_token(id));
    }
  }
  return decoder_.apply(std::move(tokens));
}

}  // namespace zerotune
