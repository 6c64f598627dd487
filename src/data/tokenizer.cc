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
#include "core/json.h"
#include "core/rng.h"
#include "data/hf_tokenizer.h"

namespace zerotune {

namespace {

// Llama's tokenizer.model is 0.5 MB and tokens.json a few hundred bytes; anything near these
// bounds is the wrong file, and the bound keeps a mistaken path from being read into memory whole.
constexpr int64_t kMaxModelBytes = int64_t{256} << 20;
constexpr int64_t kMaxTokensJsonBytes = int64_t{16} << 20;
// Llama-3's tokenizer.json is 9 MB, Qwen2.5's 7 MB.
constexpr int64_t kMaxTokenizerJsonBytes = int64_t{256} << 20;

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

// ---- SentencePiece backend --------------------------------------------------------------------

namespace {

class SentencePieceBackend : public TokenizerBackend {
 public:
  SentencePieceBackend(const std::string& proto, const std::string& source) {
    const sentencepiece::util::Status status = processor_.LoadFromSerializedProto(proto);
    ZT_CHECK(status.ok(), source, ": not a SentencePiece model (", status.ToString(), ")");
    ZT_CHECK(processor_.GetPieceSize() > 0, source, ": the SentencePiece model has no pieces");
  }
  const sentencepiece::SentencePieceProcessor& processor() const { return processor_; }

  int64_t vocab_size() const override { return processor_.GetPieceSize(); }
  int32_t token_to_id(std::string_view token) const override {
    // PieceToId answers unk_id for unknown pieces; only the unk piece itself really is unk.
    const int id = processor_.PieceToId(token);
    return id >= 0 && processor_.IdToPiece(id) == token ? id : -1;
  }
  std::string id_to_token(int32_t id) const override { return processor_.IdToPiece(id); }

  void encode_segment(std::string_view text, bool /*at_start*/,
                      std::vector<int32_t>& out) const override {
    std::vector<int> ids;
    const sentencepiece::util::Status status = processor_.Encode(text, &ids);
    ZT_CHECK(status.ok(), "Tokenizer: SentencePiece failed to encode ", text.size(),
             " bytes: ", status.ToString());
    out.insert(out.end(), ids.begin(), ids.end());
  }

  // Each run of SentencePiece ids between special tokens is decoded on its own.
  std::string decode(const std::vector<int32_t>& ids,
                     const SpecialTokenSplitter& specials) const override {
    std::string out;
    std::vector<int> run;
    const auto flush = [&] {
      if (run.empty()) return;
      std::string text;
      const sentencepiece::util::Status status = processor_.Decode(run, &text);
      ZT_CHECK(status.ok(), "Tokenizer::decode: ", status.ToString());
      out += text;
      run.clear();
    };
    for (const int32_t id : ids) {
      if (const std::string* content = specials.content_of(id)) {
        flush();
        out += *content;
      } else {
        run.push_back(id);
      }
    }
    flush();
    return out;
  }

 private:
  sentencepiece::SentencePieceProcessor processor_;
};

}  // namespace

// ---- Tokenizer --------------------------------------------------------------------------------

Tokenizer Tokenizer::from_files(const TokenizerFiles& files) {
  return from_files(files, files.tokenizer_json.empty() ? "tokenizer.model" : "tokenizer.json");
}

Tokenizer Tokenizer::load(const std::string& model_file_or_folder) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(model_file_or_folder, ec)) {
    TokenizerFiles files = read_tokenizer_files(model_file_or_folder);
    const char* name = files.tokenizer_json.empty() ? "tokenizer.model" : "tokenizer.json";
    return from_files(files, (fs::path(model_file_or_folder) / name).string());
  }
  ZT_CHECK(fs::is_regular_file(model_file_or_folder, ec), model_file_or_folder,
           ": no such file or folder; expected a tokenizer.model, a tokenizer.json or a folder "
           "holding one");
  TokenizerFiles files;
  // A bare file names no special tokens: the model's own (SentencePiece's unk/bos/eos pieces;
  // tokenizer.json's post-processor BOS and a conventional EOS).
  files.bos_token.clear();
  files.eos_token.clear();
  files.unk_token.clear();
  if (fs::path(model_file_or_folder).extension() == ".json") {
    files.tokenizer_json =
        read_bounded(model_file_or_folder, kMaxTokenizerJsonBytes, "a tokenizer.json");
  } else {
    files.model_proto =
        read_bounded(model_file_or_folder, kMaxModelBytes, "a SentencePiece tokenizer.model");
  }
  return from_files(files, model_file_or_folder);
}

Tokenizer Tokenizer::from_files(const TokenizerFiles& files, const std::string& source) {
  Tokenizer t = files.tokenizer_json.empty() ? from_sentencepiece(files, source)
                                             : from_tokenizer_json(files, source);
  // Only the files, not the new tokens: files() lists those from added_.
  auto kept = std::make_shared<TokenizerFiles>();
  kept->model_proto = files.model_proto;
  kept->tokenizer_json = files.tokenizer_json;
  kept->tokenizer_config = files.tokenizer_config;
  t.source_files_ = std::move(kept);
  t.model_max_length_ = files.model_max_length;
  return t;
}

// Added tokens from the files (tokenizer.model's added_tokens.json, a tokenizer_config.json's
// added_tokens_decoder): entries below base_vocab name tokens already in the vocabulary, as HF's
// added_tokens_decoder does for them: their id must be the token's own, and they are split out
// of text. The others take the ids after it, in order.
void Tokenizer::add_file_tokens(const TokenizerFiles& files, const std::string& source) {
  std::vector<std::pair<std::string, int32_t>> added = files.added_tokens;
  std::stable_sort(added.begin(), added.end(),
                   [](const auto& a, const auto& b) { return a.second < b.second; });
  for (const auto& [token, id] : added) {
    ZT_CHECK(!token.empty(), source, ": added token with id ", id, " is empty");
    if (id < base_vocab_size_) {
      const std::string piece = id >= 0 ? backend_->id_to_token(id) : "(negative)";
      ZT_CHECK(id >= 0 && piece == token, source, ": added token \"", token, "\" has id ", id,
               ", but that id is the vocabulary token \"", piece, "\"");
      specials_.add(token, id);
      continue;
    }
    ZT_CHECK(id == vocab_size(), source, ": added token \"", token, "\" has id ", id, ", expected ",
             vocab_size(), " (added tokens take the ids after the model's vocabulary, in order)");
    ZT_CHECK(piece_to_id(token) < 0, source, ": added token \"", token, "\" (id ", id,
             ") is already in the vocabulary with id ", piece_to_id(token));
    added_.push_back(token);
    specials_.add(token, id);
  }
}

Tokenizer Tokenizer::from_sentencepiece(const TokenizerFiles& files, const std::string& source) {
  auto backend = std::make_shared<SentencePieceBackend>(files.model_proto, source);
  const sentencepiece::SentencePieceProcessor& sp = backend->processor();
  Tokenizer t;
  t.backend_ = backend;
  t.base_vocab_size_ = backend->vocab_size();
  // Added tokens first, so that a bos/eos named by special_tokens_map.json may be one of them.
  t.add_file_tokens(files, source);
  t.unk_id_ = t.resolve_special(files.unk_token, sp.unk_id(), "unk_token", source);
  t.bos_id_ = t.resolve_special(files.bos_token, sp.bos_id(), "bos_token", source);
  t.eos_id_ = t.resolve_special(files.eos_token, sp.eos_id(), "eos_token", source);
  t.pad_id_ = t.eos_id_;  // as the fine-tuning job: pad_token = eos_token
  t.unk_token_ = t.id_to_piece(t.unk_id_);
  t.bos_token_ = t.id_to_piece(t.bos_id_);
  t.eos_token_ = t.id_to_piece(t.eos_id_);
  t.pad_token_ = t.eos_token_;
  t.prefix_ids_ = {t.bos_id_};
  // HF registers unk/bos/eos as added tokens too, so "<s>" written in text becomes id 1.
  for (const int32_t id : {t.unk_id_, t.bos_id_, t.eos_id_}) t.specials_.add(t.id_to_piece(id), id);
  return t;
}

Tokenizer Tokenizer::from_tokenizer_json(const TokenizerFiles& files, const std::string& source) {
  std::shared_ptr<const HfTokenizer> backend = HfTokenizer::parse(files.tokenizer_json, source);
  Tokenizer t;
  t.backend_ = backend;
  t.base_vocab_size_ = backend->vocab_size();
  for (const HfAddedToken& token : backend->added_tokens()) {
    if (!token.normalized) t.specials_.add(token.content, token.id, token.flags);
  }
  t.add_file_tokens(files, source);
  t.prefix_ids_ = backend->template_prefix();
  t.suffix_ids_ = backend->template_suffix();
  const auto named = [&](const std::string& token, const char* field) -> int32_t {
    if (token.empty()) return -1;
    const int32_t id = t.piece_to_id(token);
    ZT_CHECK(id >= 0, source, ": ", field, " ", json::quote(token),
             " (from the tokenizer config) is not a token of this tokenizer");
    return id;
  };
  t.bos_id_ = named(files.bos_token, "bos_token");
  t.eos_id_ = named(files.eos_token, "eos_token");
  t.pad_id_ = named(files.pad_token, "pad_token");
  t.unk_id_ = named(files.unk_token.empty() ? backend->unk_token() : files.unk_token, "unk_token");
  if (t.bos_id_ < 0 && files.bos_token.empty() && t.prefix_ids_.size() == 1 &&
      files.tokenizer_config.empty()) {
    t.bos_id_ = t.prefix_ids_[0];  // a bare tokenizer.json: its post-processor's BOS
  }
  if (t.eos_id_ < 0 && files.tokenizer_config.empty()) {
    for (const char* conventional : {"</s>", "<|end_of_text|>", "<|endoftext|>"}) {
      if (t.eos_id_ < 0) t.eos_id_ = t.piece_to_id(conventional);
    }
  }
  ZT_CHECK(t.eos_id_ >= 0, source,
           ": no eos_token (tokenizer_config.json \"eos_token\"); "
           "training appends it to every example");
  if (t.pad_id_ < 0) t.pad_id_ = t.eos_id_;
  for (const auto& [id, token] :
       {std::pair{t.bos_id_, &t.bos_token_}, std::pair{t.eos_id_, &t.eos_token_},
        std::pair{t.unk_id_, &t.unk_token_}, std::pair{t.pad_id_, &t.pad_token_}}) {
    if (id >= 0) *token = t.id_to_piece(id);
  }
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
  return backend_->token_to_id(piece);
}

std::string Tokenizer::id_to_piece(int32_t id) const {
  ZT_CHECK(id >= 0 && id < vocab_size(), "Tokenizer: id ", id, " is outside the vocabulary [0, ",
           vocab_size(), ")");
  if (id >= base_vocab_size_) return added_[static_cast<size_t>(id - base_vocab_size_)];
  return backend_->id_to_token(id);
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

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  std::vector<SpecialTokenSplitter::Segment> segments;
  specials_.split(text, segments);
  for (const SpecialTokenSplitter::Segment& s : segments) {
    if (s.token_id >= 0) {
      out.push_back(s.token_id);
    } else {
      backend_->encode_segment(s.text, s.text.data() == text.data(), out);
    }
  }
  return out;
}

std::vector<int32_t> Tokenizer::encode_with_special_tokens(std::string_view text) const {
  std::vector<int32_t> ids = prefix_ids_;
  const std::vector<int32_t> body = encode(text);
  ids.insert(ids.end(), body.begin(), body.end());
  ids.insert(ids.end(), suffix_ids_.begin(), suffix_ids_.end());
  return ids;
}

std::vector<int32_t> Tokenizer::encode_example(std::string_view text, int64_t ctx_len,
                                               bool* truncated, int64_t* full_length) const {
  ZT_CHECK(ctx_len >= 0, "encode_example: ctx_len must be >= 0 (0: no limit), got ", ctx_len);
  std::vector<int32_t> ids = encode_with_special_tokens(text);
  // A template that already ends in EOS (add_eos_token) gets no second one.
  if (suffix_ids_.empty() || suffix_ids_.back() != eos_id_) ids.push_back(eos_id_);
  if (full_length) *full_length = static_cast<int64_t>(ids.size());
  const bool cut = ctx_len > 0 && static_cast<int64_t>(ids.size()) > ctx_len;
  if (cut) ids.resize(static_cast<size_t>(ctx_len));
  if (truncated) *truncated = cut;
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, BosEos bos_eos) const {
  std::vector<int32_t> kept;
  kept.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    ZT_CHECK(id >= 0 && id < vocab_size(), "Tokenizer::decode: ids[", i, "] = ", id,
             " is outside the vocabulary [0, ", vocab_size(), ")");
    if (bos_eos == BosEos::skip && (id == bos_id_ || id == eos_id_)) continue;
    kept.push_back(id);
  }
  return backend_->decode(kept, specials_);
}

TokenizerFiles Tokenizer::files() const {
  TokenizerFiles files;
  files.model_proto = source_files_->model_proto;
  files.tokenizer_json = source_files_->tokenizer_json;
  files.tokenizer_config = source_files_->tokenizer_config;
  for (size_t i = 0; i < added_.size(); ++i) {
    files.added_tokens.emplace_back(added_[i], static_cast<int32_t>(base_vocab_size_ + i));
  }
  files.bos_token = bos_token_;
  files.eos_token = eos_token_;
  files.unk_token = unk_token_;
  files.pad_token = pad_token_;
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
