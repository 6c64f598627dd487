#include "data/hf_pipeline.h"

#include <cctype>
#include <string>
#include <utility>

#include "core/check.h"
#include "io/tokenizer_files.h"

namespace zerotune {

namespace {

// GPT-2's split pattern, which ByteLevel applies when use_regex is true.
constexpr char kGpt2Pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

std::string join(const std::vector<std::string_view>& names) {
  std::string out;
  for (const std::string_view name : names) out += (out.empty() ? "" : ", ") + std::string(name);
  return out;
}

bool bool_field(const json::Value& value, const char* key, bool fallback, const std::string& path) {
  const json::Value* v = value.find(key);
  return v && !v->is_null() ? v->as_bool(path + "." + key) : fallback;
}

const std::string& string_field(const json::Value& value, const char* key,
                                const std::string& path) {
  const json::Value* v = value.find(key);
  ZT_CHECK(v, path, ": missing \"", key, "\"");
  return v->as_string(path + "." + key);
}

// A Split / Replace "pattern": {"String": s} or {"Regex": r}; *is_regex says which.
std::string pattern_field(const json::Value& value, const std::string& path, bool* is_regex) {
  const json::Value* pattern = value.find("pattern");
  ZT_CHECK(pattern && pattern->is_object(), path,
           ".pattern: expected {\"String\": ...} or {\"Regex\": ...}");
  if (const json::Value* s = pattern->find("String")) {
    *is_regex = false;
    return s->as_string(path + ".pattern.String");
  }
  const json::Value* r = pattern->find("Regex");
  ZT_CHECK(r, path, ".pattern: expected {\"String\": ...} or {\"Regex\": ...}");
  *is_regex = true;
  return r->as_string(path + ".pattern.Regex");
}

// A literal string as a PCRE2 pattern: every character that is not a letter or digit escaped.
std::string escape_regex(std::string_view literal) {
  std::string out;
  for (const char c : literal) {
    const auto u = static_cast<unsigned char>(c);
    const bool plain =
        u >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!plain) out += '\\';
    out += c;
  }
  return out;
}

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  std::string out;
  size_t pos = 0;
  while (true) {
    const size_t hit = text.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(text, pos, hit - pos);
    out += to;
    pos = hit + from.size();
  }
  if (pos == 0) return;
  out.append(text, pos, std::string::npos);
  text = std::move(out);
}

std::string regex_replace(const Regex& regex, std::string_view text, std::string_view content) {
  std::vector<std::pair<size_t, size_t>> matches;
  regex.find_all(text, matches);
  std::string out;
  size_t pos = 0;
  for (const auto& [begin, end] : matches) {
    out.append(text.substr(pos, begin - pos));
    out += content;
    pos = end;
  }
  out.append(text.substr(pos));
  return out;
}

const std::vector<std::string_view> kNormalizers = {"NFC", "Prepend", "Replace", "Sequence"};
const std::vector<std::string_view> kPreTokenizers = {"Split", "ByteLevel", "Metaspace",
                                                      "Sequence"};
const std::vector<std::string_view> kDecoders = {
    "ByteLevel", "ByteFallback", "Metaspace", "Replace", "Fuse", "Strip", "Sequence"};

}  // namespace

std::string component_type(const json::Value& value, const std::string& path,
                           const std::vector<std::string_view>& supported) {
  ZT_CHECK(value.is_object(), path, ": expected an object with \"type\", got ",
           json::Value::kind_name(value.kind()));
  const std::string& type = string_field(value, "type", path);
  for (const std::string_view name : supported) {
    if (type == name) return type;
  }
  ZT_CHECK(false, path, ".type '", type, "' is not supported; supported: ", join(supported));
  return type;
}

// ---- Normalizer -------------------------------------------------------------------------------

Normalizer::Normalizer(const json::Value& value, const std::string& path) {
  if (!value.is_null()) add(value, path);
}

void Normalizer::add(const json::Value& value, const std::string& path) {
  const std::string type = component_type(value, path, kNormalizers);
  if (type == "Sequence") {
    const json::Value* list = value.find("normalizers");
    ZT_CHECK(list, path, ": a Sequence without \"normalizers\"");
    const std::vector<json::Value>& items = list->as_array(path + ".normalizers");
    for (size_t i = 0; i < items.size(); ++i) add(items[i], str(path, ".normalizers[", i, "]"));
  } else if (type == "NFC") {
    steps_.push_back({NormalizerStep::Kind::nfc, "", "", nullptr});
  } else if (type == "Prepend") {
    steps_.push_back(
        {NormalizerStep::Kind::prepend, string_field(value, "prepend", path), "", nullptr});
  } else {
    bool is_regex = false;
    const std::string pattern = pattern_field(value, path, &is_regex);
    NormalizerStep step{NormalizerStep::Kind::replace, pattern,
                        string_field(value, "content", path), nullptr};
    if (is_regex) step.pattern = std::make_shared<Regex>(pattern, path + ".pattern.Regex");
    steps_.push_back(std::move(step));
  }
}

std::string Normalizer::apply(std::string_view text) const {
  std::string out(text);
  for (const NormalizerStep& step : steps_) {
    switch (step.kind) {
      case NormalizerStep::Kind::nfc:
        out = nfc(out);
        break;
      case NormalizerStep::Kind::prepend:
        if (!out.empty()) out = step.text + out;  // the library leaves an empty text empty
        break;
      case NormalizerStep::Kind::replace:
        if (step.pattern) {
          out = regex_replace(*step.pattern, out, step.content);
        } else {
          replace_all(out, step.text, step.content);
        }
        break;
    }
  }
  return out;
}

// ---- PreTokenizer -----------------------------------------------------------------------------

namespace {

using Span = std::pair<size_t, size_t>;

PreTokenizerStep::Behavior parse_behavior(const std::string& name, const std::string& path) {
  using B = PreTokenizerStep::Behavior;
  if (name == "Removed") return B::removed;
  if (name == "Isolated") return B::isolated;
  if (name == "MergedWithPrevious") return B::merged_with_previous;
  if (name == "MergedWithNext") return B::merged_with_next;
  ZT_CHECK(name == "Contiguous", path, ".behavior '", name,
           "' is not supported; supported: Removed, Isolated, MergedWithPrevious, "
           "MergedWithNext, Contiguous");
  return B::contiguous;
}

PreTokenizerStep::Prepend parse_prepend(const json::Value& value, const std::string& path) {
  using P = PreTokenizerStep::Prepend;
  if (const json::Value* scheme = value.find("prepend_scheme"); scheme && !scheme->is_null()) {
    const std::string& name = scheme->as_string(path + ".prepend_scheme");
    if (name == "always") return P::always;
    if (name == "first") return P::first;
    ZT_CHECK(name == "never", path, ".prepend_scheme '", name,
             "' is not supported; supported: always, first, never");
    return P::never;
  }
  // Files written before prepend_scheme existed say add_prefix_space.
  return bool_field(value, "add_prefix_space", true, path) ? P::always : P::never;
}

// The library's SplitDelimiterBehavior applied to the spans (matches and the gaps between them,
// in order) of one piece.
std::vector<Span> apply_behavior(const std::vector<std::pair<Span, bool>>& spans,
                                 PreTokenizerStep::Behavior behavior) {
  using B = PreTokenizerStep::Behavior;
  std::vector<Span> out;
  bool previous_match = false;
  if (behavior == B::merged_with_next) {
    for (size_t k = spans.size(); k-- > 0;) {
      const auto& [span, is_match] = spans[k];
      if (is_match && !previous_match && !out.empty()) {
        out.back().first = span.first;
      } else {
        out.push_back(span);
      }
      previous_match = is_match;
    }
    return {out.rbegin(), out.rend()};
  }
  for (const auto& [span, is_match] : spans) {
    if (behavior == B::removed && is_match) continue;
    const bool merge = (behavior == B::merged_with_previous && is_match && !previous_match) ||
                       (behavior == B::contiguous && is_match == previous_match);
    if (merge && !out.empty()) {
      out.back().second = span.second;
    } else {
      out.push_back(span);
    }
    previous_match = is_match;
  }
  return out;
}

// Splits each piece at the matches of `regex` with `behavior`.
void split_pieces(std::vector<PreToken>& pieces, const Regex& regex,
                  PreTokenizerStep::Behavior behavior, bool invert) {
  std::vector<PreToken> out;
  std::vector<Span> matches;
  std::vector<std::pair<Span, bool>> spans;
  for (PreToken& piece : pieces) {
    matches.clear();
    spans.clear();
    regex.find_all(piece.text, matches);
    size_t pos = 0;
    for (const Span& m : matches) {
      if (m.first > pos) spans.push_back({{pos, m.first}, invert});
      spans.push_back({m, !invert});
      pos = m.second;
    }
    if (pos < piece.text.size()) spans.push_back({{pos, piece.text.size()}, invert});
    for (const Span& s : apply_behavior(spans, behavior)) {
      out.push_back(
          {piece.text.substr(s.first, s.second - s.first), piece.at_start && s.first == 0});
    }
  }
  pieces = std::move(out);
}

void metaspace(std::vector<PreToken>& pieces, const PreTokenizerStep& step) {
  using P = PreTokenizerStep::Prepend;
  for (PreToken& piece : pieces) {
    replace_all(piece.text, " ", step.replacement);
    const bool starts = piece.text.compare(0, step.replacement.size(), step.replacement) == 0;
    if (!starts && (step.prepend == P::always || (step.prepend == P::first && piece.at_start))) {
      piece.text = step.replacement + piece.text;
    }
  }
  if (step.split_on_replacement) {
    split_pieces(pieces, *step.pattern, PreTokenizerStep::Behavior::merged_with_next, false);
  }
}

void byte_level(std::vector<PreToken>& pieces, const PreTokenizerStep& step) {
  if (step.add_prefix_space) {
    for (PreToken& piece : pieces) {
      if (piece.text.empty() || piece.text[0] != ' ') piece.text.insert(0, 1, ' ');
    }
  }
  if (step.pattern)
    split_pieces(pieces, *step.pattern, PreTokenizerStep::Behavior::isolated, false);
  const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::get();
  std::string mapped;
  for (PreToken& piece : pieces) {
    mapped.clear();
    alphabet.encode(piece.text, mapped);
    piece.text.swap(mapped);
  }
}

}  // namespace

PreTokenizer::PreTokenizer(const json::Value& value, const std::string& path) {
  if (!value.is_null()) add(value, path);
}

void PreTokenizer::add(const json::Value& value, const std::string& path) {
  using Kind = PreTokenizerStep::Kind;
  const std::string type = component_type(value, path, kPreTokenizers);
  PreTokenizerStep step;
  if (type == "Sequence") {
    const json::Value* list = value.find("pretokenizers");
    ZT_CHECK(list, path, ": a Sequence without \"pretokenizers\"");
    const std::vector<json::Value>& items = list->as_array(path + ".pretokenizers");
    for (size_t i = 0; i < items.size(); ++i) add(items[i], str(path, ".pretokenizers[", i, "]"));
    return;
  } else if (type == "Split") {
    step.kind = Kind::split;
    bool is_regex = false;
    const std::string pattern = pattern_field(value, path, &is_regex);
    step.pattern =
        std::make_shared<Regex>(is_regex ? pattern : escape_regex(pattern), path + ".pattern");
    step.behavior = parse_behavior(string_field(value, "behavior", path), path);
    step.invert = bool_field(value, "invert", false, path);
  } else if (type == "ByteLevel") {
    step.kind = Kind::byte_level;
    step.add_prefix_space = bool_field(value, "add_prefix_space", true, path);
    if (bool_field(value, "use_regex", true, path)) {
      step.pattern = std::make_shared<Regex>(kGpt2Pattern, path + " (GPT-2 pattern)");
    }
  } else {
    step.kind = Kind::metaspace;
    step.replacement = string_field(value, "replacement", path);
    ZT_CHECK(utf8_length(step.replacement) == 1, path, ".replacement must be one character");
    step.prepend = parse_prepend(value, path);
    step.split_on_replacement = bool_field(value, "split", true, path);
    step.pattern = std::make_shared<Regex>(escape_regex(step.replacement), path + ".replacement");
  }
  steps_.push_back(std::move(step));
}

void PreTokenizer::apply(std::vector<PreToken>& pieces) const {
  for (const PreTokenizerStep& step : steps_) {
    switch (step.kind) {
      case PreTokenizerStep::Kind::split:
        split_pieces(pieces, *step.pattern, step.behavior, step.invert);
        break;
      case PreTokenizerStep::Kind::byte_level:
        byte_level(pieces, step);
        break;
      case PreTokenizerStep::Kind::metaspace:
        metaspace(pieces, step);
        break;
    }
  }
}

// ---- Decoder ----------------------------------------------------------------------------------

Decoder::Decoder(const json::Value& value, const std::string& path) {
  none_ = value.is_null();
  if (!none_) add(value, path);
}

void Decoder::add(const json::Value& value, const std::string& path) {
  using Kind = DecoderStep::Kind;
  const std::string type = component_type(value, path, kDecoders);
  DecoderStep step;
  if (type == "Sequence") {
    const json::Value* list = value.find("decoders");
    ZT_CHECK(list, path, ": a Sequence without \"decoders\"");
    const std::vector<json::Value>& items = list->as_array(path + ".decoders");
    for (size_t i = 0; i < items.size(); ++i) add(items[i], str(path, ".decoders[", i, "]"));
    return;
  }
  if (type == "ByteLevel") step.kind = Kind::byte_level;
  if (type == "ByteFallback") step.kind = Kind::byte_fallback;
  if (type == "Fuse") step.kind = Kind::fuse;
  if (type == "Metaspace") {
    step.kind = Kind::metaspace;
    step.pattern = string_field(value, "replacement", path);
    step.prepend_first = parse_prepend(value, path) != PreTokenizerStep::Prepend::never;
  } else if (type == "Replace") {
    step.kind = Kind::replace;
    bool is_regex = false;
    step.pattern = pattern_field(value, path, &is_regex);
    ZT_CHECK(!is_regex, path, ".pattern: a Regex pattern in a decoder is not supported");
    step.content = string_field(value, "content", path);
  } else if (type == "Strip") {
    step.kind = Kind::strip;
    const std::string& content = string_field(value, "content", path);
    ZT_CHECK(utf8_length(content) == 1, path, ".content must be one character");
    size_t length = 0;
    step.strip_char = next_code_point(content, 0, &length);
    step.start = value.find("start") ? value.find("start")->as_int64(path + ".start") : 0;
    step.stop = value.find("stop") ? value.find("stop")->as_int64(path + ".stop") : 0;
  }
  steps_.push_back(std::move(step));
}

namespace {

std::vector<std::string> byte_fallback(std::vector<std::string> tokens) {
  std::vector<std::string> out;
  std::string bytes;
  size_t byte_tokens = 0;
  const auto flush = [&] {
    if (byte_tokens == 0) return;
    if (is_valid_utf8(bytes)) {
      out.push_back(bytes);
    } else {
      for (size_t k = 0; k < byte_tokens; ++k) out.emplace_back("\xEF\xBF\xBD");
    }
    bytes.clear();
    byte_tokens = 0;
  };
  for (std::string& token : tokens) {
    const bool is_byte = token.size() == 6 && token.compare(0, 3, "<0x") == 0 && token[5] == '>' &&
                         std::isxdigit(static_cast<unsigned char>(token[3])) &&
                         std::isxdigit(static_cast<unsigned char>(token[4]));
    if (is_byte) {
      bytes += static_cast<char>(std::stoi(token.substr(3, 2), nullptr, 16));
      ++byte_tokens;
      continue;
    }
    flush();
    out.push_back(std::move(token));
  }
  flush();
  return out;
}

std::string strip_token(const std::string& token, const DecoderStep& step) {
  std::vector<std::pair<size_t, uint32_t>> chars;  // (byte offset, code point)
  for (size_t pos = 0, length = 0; pos < token.size(); pos += length) {
    chars.emplace_back(pos, next_code_point(token, pos, &length));
  }
  size_t start_cut = 0, stop_cut = chars.size();
  for (size_t i = 0; i < chars.size() && static_cast<int64_t>(i) < step.start; ++i) {
    if (chars[i].second != step.strip_char) break;
    start_cut = i + 1;
  }
  for (size_t i = 0; i < chars.size() && static_cast<int64_t>(i) < step.stop; ++i) {
    if (chars[chars.size() - 1 - i].second != step.strip_char) break;
    stop_cut = chars.size() - 1 - i;
  }
  if (start_cut >= stop_cut) return "";
  const size_t begin = chars[start_cut].first;
  const size_t end = stop_cut < chars.size() ? chars[stop_cut].first : token.size();
  return token.substr(begin, end - begin);
}

std::vector<std::string> fused(const std::vector<std::string>& tokens) {
  std::string all;
  for (const std::string& t : tokens) all += t;
  return {std::move(all)};
}

}  // namespace

std::string Decoder::apply(std::vector<std::string> tokens) const {
  if (none_) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  for (const DecoderStep& step : steps_) {
    switch (step.kind) {
      case DecoderStep::Kind::byte_level: {
        std::string bytes;
        for (const std::string& t : tokens) ByteLevelAlphabet::get().decode(t, bytes);
        tokens = {utf8_lossy(bytes)};
        break;
      }
      case DecoderStep::Kind::byte_fallback:
        tokens = byte_fallback(std::move(tokens));
        break;
      case DecoderStep::Kind::fuse:
        tokens = fused(tokens);
        break;
      case DecoderStep::Kind::replace:
        for (std::string& t : tokens) replace_all(t, step.pattern, step.content);
        break;
      case DecoderStep::Kind::strip:
        for (std::string& t : tokens) t = strip_token(t, step);
        break;
      case DecoderStep::Kind::metaspace:
        for (size_t i = 0; i < tokens.size(); ++i) {
          replace_all(tokens[i], step.pattern, i == 0 && step.prepend_first ? "" : " ");
        }
        break;
    }
  }
  return fused(tokens)[0];
}

}  // namespace zerotune
