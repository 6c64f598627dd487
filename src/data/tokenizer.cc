#include "data/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <numeric>
#include <unordered_map>
#include <utility>

#include "core/check.h"
#include "core/rng.h"
#include "core/json.h"

namespace zerotune {

namespace {

// Llama's tokenizer.model is 0.5 MB and tokens.json a few hundred bytes; anything near these
// bounds is the wrong file, and the bound keeps a mistaken path from being read into memory whole.
constexpr int64_t kMaxModelBytes = int64_t{256} << 20;
constexpr int64_t kMaxTokensJsonBytes = int64_t{16} << 20;

std::string read_bounded(const std::string& path, int64_t max_bytes, const char* expected) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  ZT_CHECK(in, path, ": cannot open; expected ", expected);
  const std::streamoff size = in.tellg();
  ZT_CHECK(size >= 0 && size <= max_bytes, path, ": ", static_cast<int64_t>(size),
           " bytes is not plausible for ", expected, " (limit ", max_bytes, ")");
  std::string bytes(static_cast<size_t>(size), '\0');
  in.seekg(0);
  in.read(bytes.data(), size);
  ZT_CHECK(in.gcount() == size, path, ": read error");
  return bytes;
}

}  // namespace

// ---- SpecialTokenSplitter ---------------------------------------------------------------------

bool SpecialTokenSplitter::add(const std::string& token, int32_t id) {
  ZT_CHECK(!token.empty(), "SpecialTokenSplitter: empty token");
  if (!ids_.emplace(token, id).second) return false;
  tokens_.push_back({token, id});
  std::vector<uint32_t>& bucket = by_first_byte_[static_cast<unsigned char>(token[0])];
  bucket.push_back(static_cast<uint32_t>(tokens_.size() - 1));
  std::stable_sort(bucket.begin(), bucket.end(), [this](uint32_t a, uint32_t b) {
    return tokens_[a].text.size() > tokens_[b].text.size();
  });
  return true;
}

int32_t SpecialTokenSplitter::id_of(std::string_view token) const {
  const auto it = ids_.find(std::string(token));
  return it == ids_.end() ? -1 : it->second;
}

void SpecialTokenSplitter::split(std::string_view text, std::vector<Segment>& out) const {
  size_t segment_start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const Token* match = nullptr;
    for (const uint32_t index : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
      const Token& t = tokens_[index];
      if (text.compare(pos, t.text.size(), t.text) == 0) {
        match = &t;
        break;
      }
    }
    if (!match) {
      ++pos;
      continue;
    }
    if (pos > segment_start) out.push_back({text.substr(segment_start, pos - segment_start), -1});
    out.push_back({std::string_view(), match->id});
    pos += match->text.size();
    segment_start = pos;
  }
  if (segment_start < text.size()) out.push_back({text.substr(segment_start), -1});
}

// ---- Tokenizer --------------------------------------------------------------------------------

struct Tokenizer::Model {
  sentencepiece::SentencePieceProcessor processor;
  std::string proto;  // the bytes as loaded, so that a saved checkpoint carries the same file
};

Tokenizer Tokenizer::from_files(const TokenizerFiles& files) {
  return from_files(files, "tokenizer.model");
}

Tokenizer Tokenizer::load(const std::string& model_file_or_folder) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(model_file_or_folder, ec)) {
    return from_files(read_tokenizer_files(model_file_or_folder),
                      (fs::path(model_file_or_folder) / "tokenizer.model").string());
  }
  ZT_CHECK(fs::is_regular_file(model_file_or_folder, ec), model_file_or_folder,
           ": no such file or folder; expected a SentencePiece tokenizer.model or a folder "
           "holding one");
  TokenizerFiles files;
  files.model_proto =
      read_bounded(model_file_or_folder, kMaxModelBytes, "a SentencePiece tokenizer.model");
  // A bare model names no special tokens: use its own unk/bos/eos pieces, whatever their text.
  files.bos_token.clear();
  files.eos_token.clear();
  files.unk_token.clear();
  return from_files(files, model_file_or_folder);
}

Tokenizer Tokenizer::from_files(const TokenizerFiles& files, const std::string& source) {
  auto model = std::make_shared<Model>();
  model->proto = files.model_proto;
  const sentencepiece::util::Status status = model->processor.LoadFromSerializedProto(model->proto);
  ZT_CHECK(status.ok(), source, ": not a SentencePiece model (", status.ToString(), ")");
  const int pieces = model->processor.GetPieceSize();
  ZT_CHECK(pieces > 0, source, ": the SentencePiece model has no pieces");

  Tokenizer t;
  t.model_ = std::move(model);
  t.base_vocab_size_ = pieces;
  t.model_max_length_ = files.model_max_length;
  const sentencepiece::SentencePieceProcessor& sp = t.model_->processor;

  // Added tokens first, so that a bos/eos named by special_tokens_map.json may be one of them.
  // Entries below base_vocab name tokens already in the vocabulary, as HF's added_tokens_decoder
  // does for them: their id must be the piece's own, and they are split out of text.
  std::vector<std::pair<std::string, int32_t>> added = files.added_tokens;
  std::stable_sort(added.begin(), added.end(),
                   [](const auto& a, const auto& b) { return a.second < b.second; });
  for (const auto& [token, id] : added) {
    ZT_CHECK(!token.empty(), source, ": added token with id ", id, " is empty");
    if (id < pieces) {
      ZT_CHECK(id >= 0 && sp.IdToPiece(id) == token, source, ": added token \"", token,
               "\" has id ", id, ", but that id is the SentencePiece piece \"",
               id >= 0 ? sp.IdToPiece(id) : std::string("(negative)"), "\"");
      t.specials_.add(token, id);
      continue;
    }
    ZT_CHECK(id == t.vocab_size(), source, ": added token \"", token, "\" has id ", id,
             ", expected ", t.vocab_size(),
             " (added tokens take the ids after the SentencePiece vocabulary, in order)");
    ZT_CHECK(t.piece_to_id(token) < 0, source, ": added token \"", token, "\" (id ", id,
             ") is already in the vocabulary with id ", t.piece_to_id(token));
    t.added_.push_back(token);
    t.specials_.add(token, id);
  }

  t.unk_id_ = t.resolve_special(files.unk_token, sp.unk_id(), "unk_token", source);
  t.bos_id_ = t.resolve_special(files.bos_token, sp.bos_id(), "bos_token", source);
  t.eos_id_ = t.resolve_special(files.eos_token, sp.eos_id(), "eos_token", source);
  t.unk_token_ = t.id_to_piece(t.unk_id_);
  t.bos_token_ = t.id_to_piece(t.bos_id_);
  t.eos_token_ = t.id_to_piece(t.eos_id_);
  // HF registers unk/bos/eos as added tokens too, so "<s>" written in text becomes id 1.
  for (const int32_t id : {t.unk_id_, t.bos_id_, t.eos_id_}) t.specials_.add(t.id_to_piece(id), id);
  return t;
}

int32_t Tokenizer::resolve_special(const std::string& token, int sp_default, const char* field,
                                   const std::string& source) const {
  if (token.empty()) {
    ZT_CHECK(sp_default >= 0, source, ": the SentencePiece model defines no ", field,
             " piece and none is named");
    return sp_default;
  }
  const int32_t id = piece_to_id(token);
  ZT_CHECK(id >= 0, source, ": ", field, " \"", token,
           "\" is neither a SentencePiece piece nor an added token");
  return id;
}

int32_t Tokenizer::piece_to_id(std::string_view piece) const {
  const int32_t special = specials_.id_of(piece);
  if (special >= 0) return special;
  const sentencepiece::SentencePieceProcessor& sp = model_->processor;
  // PieceToId answers unk_id for unknown pieces; only the unk piece itself really is unk.
  const int id = sp.PieceToId(piece);
  return id >= 0 && sp.IdToPiece(id) == piece ? id : -1;
}

std::string Tokenizer::id_to_piece(int32_t id) const {
  ZT_CHECK(id >= 0 && id < vocab_size(), "Tokenizer: id ", id, " is outside the vocabulary [0, ",
           vocab_size(), ")");
  if (id >= base_vocab_size_) return added_[static_cast<size_t>(id - base_vocab_size_)];
  return model_->processor.IdToPiece(id);
}

int64_t Tokenizer::add_special_tokens(const std::vector<std::string>& tokens) {
  int64_t added = 0;
  for (const std::string& token : tokens) {
    ZT_CHECK(!token.empty(), "add_special_tokens: empty token");
    if (specials_.contains(token)) continue;  // HF: already in _added_tokens_encoder
    const int32_t existing = piece_to_id(token);
    if (existing >= 0) {
      specials_.add(token, existing);  // keeps its id, but is split out of text from now on
      continue;
    }
    ZT_CHECK(vocab_size() < std::numeric_limits<int32_t>::max(), "add_special_tokens: too many");
    specials_.add(token, static_cast<int32_t>(vocab_size()));
    added_.push_back(token);
    ++added;
  }
  return added;
}

void Tokenizer::append_sentencepiece_ids(std::string_view segment,
                                         std::vector<int32_t>& out) const {
  std::vector<int> ids;
  const sentencepiece::util::Status status = model_->processor.Encode(segment, &ids);
  ZT_CHECK(status.ok(), "Tokenizer: SentencePiece failed to encode ", segment.size(),
           " bytes: ", status.ToString());
  out.insert(out.end(), ids.begin(), ids.end());
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  std::vector<SpecialTokenSplitter::Segment> segments;
  specials_.split(text, segments);
  for (const SpecialTokenSplitter::Segment& s : segments) {
    if (s.token_id >= 0) {
      out.push_back(s.token_id);
    } else {
      append_sentencepiece_ids(s.text, out);
    }
  }
  return out;
}

std::vector<int32_t> Tokenizer::encode_example(std::string_view text, int64_t ctx_len,
                                               bool* truncated, int64_t* full_length) const {
  ZT_CHECK(ctx_len >= 0, "encode_example: ctx_len must be >= 0 (0: no limit), got ", ctx_len);
  std::vector<int32_t> ids;
  ids.push_back(bos_id_);
  const std::vector<int32_t> body = encode(text);
  ids.insert(ids.end(), body.begin(), body.end());
  ids.push_back(eos_id_);
  if (full_length) *full_length = static_cast<int64_t>(ids.size());
  const bool cut = ctx_len > 0 && static_cast<int64_t>(ids.size()) > ctx_len;
  if (cut) ids.resize(static_cast<size_t>(ctx_len));
  if (truncated) *truncated = cut;
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, BosEos bos_eos) const {
  std::string out;
  std::vector<int> run;  // SentencePiece ids since the last special token
  const auto flush = [&] {
    if (run.empty()) return;
    std::string text;
    const sentencepiece::util::Status status = model_->processor.Decode(run, &text);
    ZT_CHECK(status.ok(), "Tokenizer::decode: ", status.ToString());
    out += text;
    run.clear();
  };
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    ZT_CHECK(id >= 0 && id < vocab_size(), "Tokenizer::decode: ids[", i, "] = ", id,
             " is outside the vocabulary [0, ", vocab_size(), ")");
    if (bos_eos == BosEos::skip && (id == bos_id_ || id == eos_id_)) continue;
    const std::string piece = id_to_piece(id);
    if (specials_.id_of(piece) == id) {
      flush();
      out += piece;
    } else {
      run.push_back(id);
    }
  }
  flush();
  return out;
}

TokenizerFiles Tokenizer::files() const {
  TokenizerFiles files;
  files.model_proto = model_->proto;
  for (size_t i = 0; i < added_.size(); ++i) {
    files.added_tokens.emplace_back(added_[i], static_cast<int32_t>(base_vocab_size_ + i));
  }
  files.bos_token = bos_token_;
  files.eos_token = eos_token_;
  files.unk_token = unk_token_;
  files.pad_token = eos_token_;
  files.model_max_length = model_max_length_;
  return files;
}

// ---- tokens.json ------------------------------------------------------------------------------

std::vector<std::string> read_special_tokens_json(const std::string& path) {
  const json::Value doc =
      json::parse(read_bounded(path, kMaxTokensJsonBytes, "a tokens.json"), path);
  ZT_CHECK(doc.is_object(), path, ": expected an object {\"tokens\": [...]}, got ",
           json::Value::kind_name(doc.kind()));
  const json::Value* list = doc.find("tokens");
  ZT_CHECK(list, path, ": missing \"tokens\"; expected {\"tokens\": [\"<START_Q>\", ...]}");
  const std::vector<json::Value>& items = list->as_array(str(path, ": \"tokens\""));
  std::vector<std::string> tokens;
  tokens.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string what = str(path, ": \"tokens\"[", i, "]");
    const std::string& token = items[i].as_string(what);
    ZT_CHECK(!token.empty(), what, " is empty; expected a token such as \"<START_Q>\"");
    tokens.push_back(token);
  }
  return tokens;
}

// ---- training ---------------------------------------------------------------------------------

namespace {

class VectorSentenceIterator : public sentencepiece::SentenceIterator {
 public:
  explicit VectorSentenceIterator(const std::vector<std::string>& sentences)
      : sentences_(sentences) {}
  bool done() const override { return index_ >= sentences_.size(); }
  void Next() override { ++index_; }
  const std::string& value() const override { return sentences_[index_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& sentences_;
  size_t index_ = 0;
};

}  // namespace

std::string train_sentencepiece(const std::vector<std::string>& texts,
                                const SentencePieceTrainOptions& options) {
  ZT_CHECK(options.vocab_size > 3 && options.vocab_size < std::numeric_limits<int32_t>::max(),
           "train_sentencepiece: vocab_size must be in (3, 2^31), got ", options.vocab_size);
  ZT_CHECK(options.num_threads >= 1, "train_sentencepiece: num_threads must be >= 1, got ",
           options.num_threads);
  ZT_CHECK(options.max_sentences >= 0, "train_sentencepiece: max_sentences must be >= 0, got ",
           options.max_sentences);
  ZT_CHECK(options.seed != std::numeric_limits<uint32_t>::max(),
           "train_sentencepiece: seed 4294967295 is reserved by SentencePiece (random seed)");

  // libsentencepiece (0.1.97) samples input_sentence_size sentences with a fixed internal seed,
  // whatever SetRandomGeneratorSeed says; sampling here makes the seed mean something. The chosen
  // texts keep their order.
  std::vector<size_t> chosen(texts.size());
  std::iota(chosen.begin(), chosen.end(), size_t{0});
  const auto wanted = static_cast<size_t>(options.max_sentences);
  if (wanted > 0 && wanted < chosen.size()) {
    Rng rng(options.seed);
    for (size_t i = 0; i < wanted; ++i) {
      std::swap(chosen[i], chosen[i + rng.below(chosen.size() - i)]);
    }
    chosen.resize(wanted);
    std::sort(chosen.begin(), chosen.end());
  }

  // The special tokens are cut out as encode() cuts them; each remaining piece of text is a
  // training sentence, as it will be an encoding segment.
  SpecialTokenSplitter splitter;
  for (const std::string& token : options.special_tokens) splitter.add(token, 0);
  std::vector<std::string> sentences;
  std::vector<SpecialTokenSplitter::Segment> segments;
  for (const size_t index : chosen) {
    const std::string& text = texts[index];
    segments.clear();
    splitter.split(text, segments);
    for (const auto& s : segments) {
      if (s.token_id < 0) sentences.emplace_back(s.text);
    }
  }
  ZT_CHECK(!sentences.empty(), "train_sentencepiece: no text to train on");

  // Llama-2's trainer_spec and normalizer_spec, as stored in its tokenizer.model.
  const bool bpe = options.model_type == SentencePieceModelType::bpe;
  const std::unordered_map<std::string, std::string> spec = {
      {"model_type", bpe ? "bpe" : "unigram"},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"byte_fallback", "true"},
      {"split_digits", "true"},
      {"split_by_unicode_script", "true"},
      {"split_by_number", "true"},
      {"split_by_whitespace", "true"},
      {"allow_whitespace_only_pieces", "true"},
      {"character_coverage", str(options.character_coverage)},
      {"max_sentencepiece_length", "16"},
      {"max_sentence_length", std::to_string(int64_t{1} << 16)},
      {"input_sentence_size", "0"},  // every sentence given (sampled above)
      {"num_threads", std::to_string(options.num_threads)},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      {"normalization_rule_name", "identity"},
      {"add_dummy_prefix", "true"},
      {"remove_extra_whitespaces", "false"},
      {"minloglevel", "1"},  // SentencePiece's INFO lines are thousands of progress messages
  };
  // SentencePiece's RNG and the minloglevel it sets are process-wide.
  static std::mutex training;
  std::lock_guard<std::mutex> lock(training);
  sentencepiece::SetRandomGeneratorSeed(options.seed);  // for any randomness left inside
  VectorSentenceIterator iterator(sentences);
  std::string proto;
  const sentencepiece::util::Status status =
      sentencepiece::SentencePieceTrainer::Train(spec, &iterator, &proto);
  ZT_CHECK(status.ok(), "SentencePiece training failed: ", status.ToString());
  return proto;
}

}  // namespace zerotune
