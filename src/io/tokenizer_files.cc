#include "io/tokenizer_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <unordered_map>

#include "core/check.h"
#include "core/files.h"
#include "core/json.h"
#include "io/tokenizer_json.h"

namespace zerotune {

namespace {

namespace fs = std::filesystem;

// A real Llama tokenizer.model is ~0.5 MB; anything near this bound is not one.
constexpr int64_t kMaxModelBytes = int64_t{64} << 20;
constexpr int64_t kMaxJsonBytes = int64_t{16} << 20;
// Llama-3's tokenizer.json is 9 MB, Qwen2.5's 7 MB.
constexpr int64_t kMaxTokenizerJsonBytes = int64_t{256} << 20;
// transformers writes model_max_length = int(1e30) (VERY_LARGE_INTEGER) for "no limit".
constexpr double kUnsetModelMaxLength = 1e18;

std::string read_bounded(const fs::path& path, int64_t max_bytes) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  ZT_CHECK(!ec, path.string(), ": cannot read: ", ec.message());
  ZT_CHECK(static_cast<int64_t>(size) <= max_bytes, path.string(), ": ", size,
           " bytes is over the ", max_bytes, "-byte limit for this file");
  std::ifstream in(path, std::ios::binary);
  ZT_CHECK(in, path.string(), ": cannot open");
  std::string bytes(static_cast<size_t>(size), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  ZT_CHECK(in.gcount() == static_cast<std::streamsize>(size), path.string(),
           ": short read (file changed while reading?)");
  return bytes;
}

// The parsed file, or null when it does not exist.
json::Value read_optional_json(const fs::path& path) {
  if (!fs::exists(path)) return nullptr;
  json::Value root = json::parse(read_bounded(path, kMaxJsonBytes), path.string());
  ZT_CHECK(root.is_object(), path.string(), ": expected a JSON object, got ",
           json::Value::kind_name(root.kind()));
  return root;
}

// ---------------------------------------------------------------------------------------------
// Protobuf wire format (https://protobuf.dev/programming-guides/encoding/), just enough to read
// the fields of sentencepiece_model.proto that tokenizer.json needs.

class WireReader {
 public:
  WireReader(std::string_view bytes, const std::string& source, const char* what)
      : bytes_(bytes), source_(source), what_(what) {}

  bool done() const { return pos_ >= bytes_.size(); }

  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      ZT_CHECK(pos_ < bytes_.size(), source_, ": truncated varint in ", what_, " at byte ", pos_);
      const auto byte = static_cast<unsigned char>(bytes_[pos_++]);
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return value;
    }
    fail(str(source_, ": varint longer than 10 bytes in ", what_, " at byte ", pos_));
  }

  std::string_view bytes(uint64_t count) {
    ZT_CHECK(count <= bytes_.size() - pos_, source_, ": field of ", count, " bytes in ", what_,
             " runs past its end (", bytes_.size() - pos_, " bytes left at byte ", pos_, ")");
    const std::string_view out = bytes_.substr(pos_, count);
    pos_ += count;
    return out;
  }

  // Skips a field's value of `wire_type`; groups (3, 4) are long deprecated and never in a
  // SentencePiece model, so they are an error like any other unknown type.
  void skip(uint32_t wire_type) {
    switch (wire_type) {
      case 0:
        varint();
        return;
      case 1:
        bytes(8);
        return;
      case 2:
        bytes(varint());
        return;
      case 5:
        bytes(4);
        return;
      default:
        fail(str(source_, ": unsupported protobuf wire type ", wire_type, " in ", what_,
                 " at byte ", pos_, " (not a SentencePiece model?)"));
    }
  }

 private:
  std::string_view bytes_;
  const std::string& source_;
  const char* what_;
  size_t pos_ = 0;
};

// Protobuf stores int32 fields as the varint of their sign-extended 64-bit value.
int32_t varint_int32(uint64_t value, const std::string& what) {
  const auto signed_value = static_cast<int64_t>(value);
  ZT_CHECK(signed_value >= std::numeric_limits<int32_t>::min() &&
               signed_value <= std::numeric_limits<int32_t>::max(),
           what, " = ", signed_value, " is outside the int32 range");
  return static_cast<int32_t>(signed_value);
}

// One ModelProto.pieces entry: SentencePiece {piece = 1; score = 2 (float); type = 3 (enum)}.
SentencePieceEntry read_piece(std::string_view message, const std::string& source, size_t id) {
  WireReader reader(message, source, "a SentencePiece entry");
  SentencePieceEntry entry;
  while (!reader.done()) {
    const uint64_t tag = reader.varint();
    const auto wire_type = static_cast<uint32_t>(tag & 7);
    const uint64_t field = tag >> 3;
    if (field == 1 && wire_type == 2) {
      const uint64_t size = reader.varint();
      ZT_CHECK(size <= static_cast<uint64_t>(kMaxSentencePieceBytes), source, ": piece ", id,
               " is ", size, " bytes, over the ", kMaxSentencePieceBytes,
               "-byte limit (not a SentencePiece model?)");
      entry.text = std::string(reader.bytes(size));
    } else if (field == 2 && wire_type == 5) {
      const std::string_view bits = reader.bytes(4);
      uint32_t word = 0;  // little-endian on the wire
      for (int k = 3; k >= 0; --k) word = word << 8 | static_cast<unsigned char>(bits[k]);
      std::memcpy(&entry.score, &word, sizeof(float));
    } else if (field == 3 && wire_type == 0) {
      const uint64_t type = reader.varint();
      ZT_CHECK(type >= 1 && type <= 6, source, ": piece ", id, " has type ", type,
               ", expected 1-6 (NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE)");
      entry.type = static_cast<SentencePieceType>(type);
    } else {
      reader.skip(wire_type);
    }
  }
  return entry;
}

// ModelProto.trainer_spec (field 2): model_type = 3, unk_id = 40, bos_id = 41, eos_id = 42,
// unk_piece = 45. Every other field is skipped.
void read_trainer_spec(std::string_view message, const std::string& source,
                       SentencePieceModelInfo& out) {
  WireReader reader(message, source, "the TrainerSpec");
  while (!reader.done()) {
    const uint64_t tag = reader.varint();
    const auto wire_type = static_cast<uint32_t>(tag & 7);
    const uint64_t field = tag >> 3;
    if (field == 3 && wire_type == 0) {
      const uint64_t type = reader.varint();
      ZT_CHECK(type >= 1 && type <= 4, source, ": trainer_spec.model_type is ", type,
               ", expected 1-4 (UNIGRAM, BPE, WORD, CHAR)");
      out.algorithm = static_cast<SentencePieceAlgorithm>(type);
    } else if (field >= 40 && field <= 42 && wire_type == 0) {
      const char* names[] = {"unk_id", "bos_id", "eos_id"};
      int32_t* targets[] = {&out.unk_id, &out.bos_id, &out.eos_id};
      *targets[field - 40] =
          varint_int32(reader.varint(), str(source, ": trainer_spec.", names[field - 40]));
    } else if (field == 45 && wire_type == 2) {
      const uint64_t size = reader.varint();
      ZT_CHECK(size <= static_cast<uint64_t>(kMaxSentencePieceBytes), source,
               ": trainer_spec.unk_piece is ", size, " bytes, over the ", kMaxSentencePieceBytes,
               "-byte limit");
      out.unk_piece = std::string(reader.bytes(size));
    } else {
      reader.skip(wire_type);
    }
  }
}

// The checks SentencePiece makes when it loads a model (a piece is non-empty and defined once),
// plus valid UTF-8 and a finite score, which tokenizer.json (JSON text) needs.
void check_pieces(const std::vector<SentencePieceEntry>& pieces, const std::string& source) {
  ZT_CHECK(!pieces.empty(), source, ": no vocabulary pieces (not a SentencePiece model)");
  std::unordered_map<std::string_view, size_t> first_id;
  first_id.reserve(pieces.size());
  for (size_t id = 0; id < pieces.size(); ++id) {
    const std::string& text = pieces[id].text;
    ZT_CHECK(!text.empty(), source, ": piece ", id, " is empty");
    ZT_CHECK(utf8_length(text) >= 0, source, ": piece ", id, " is not valid UTF-8");
    ZT_CHECK(std::isfinite(pieces[id].score), source, ": piece ", id, " ", json::quote(text),
             " has score ", pieces[id].score, ", expected a finite number");
    const auto [it, inserted] = first_id.emplace(text, id);
    ZT_CHECK(inserted, source, ": piece ", id, " ", json::quote(text), " is also piece ",
             it->second, " (a SentencePiece model defines each piece once)");
  }
}

// ---------------------------------------------------------------------------------------------
// Reading

// A special token in either spelling transformers writes: "<s>" or {"content": "<s>", ...}
// (AddedToken). Null means "none" (empty).
std::string token_content(const json::Value& value, const std::string& what) {
  if (value.is_null()) return "";
  if (value.is_string()) return value.as_string(what);
  ZT_CHECK(value.is_object(), what, " must be a string, null or an object with \"content\", got ",
           json::Value::kind_name(value.kind()));
  const json::Value* content = value.find("content");
  ZT_CHECK(content != nullptr, what, " is an object without \"content\"");
  return content->as_string(what + ".content");
}

void read_special_tokens(const json::Value& root, const std::string& source, TokenizerFiles& out) {
  const std::pair<const char*, std::string*> fields[] = {{"bos_token", &out.bos_token},
                                                         {"eos_token", &out.eos_token},
                                                         {"unk_token", &out.unk_token},
                                                         {"pad_token", &out.pad_token}};
  for (const auto& [key, target] : fields) {
    if (const json::Value* v = root.find(key))
      *target = token_content(*v, str(source, ": \"", key, "\""));
  }
}

using AddedTokens = std::vector<std::pair<std::string, int32_t>>;

// The tokens that get new ids, sorted by id, after checking that they take base, base+1, ...
// (naming the first that does not). Entries below base that restate a SentencePiece piece with its
// own id, which some exports list, are dropped; any other id below base is an error.
AddedTokens new_tokens_only(AddedTokens tokens, const std::vector<std::string>& pieces,
                            const std::string& source) {
  std::stable_sort(tokens.begin(), tokens.end(),
                   [](const auto& a, const auto& b) { return a.second < b.second; });
  const auto base = static_cast<int64_t>(pieces.size());
  AddedTokens out;
  for (const auto& [token, id] : tokens) {
    if (id >= 0 && id < base && pieces[static_cast<size_t>(id)] == token) continue;
    const int64_t expected = base + static_cast<int64_t>(out.size());
    ZT_CHECK(id == expected, source, ": ", json::quote(token), " has id ", id, ", expected ",
             expected,
             " (added token ids must run consecutively from the tokenizer.model "
             "vocabulary size ",
             base, ")");
    ZT_CHECK(!token.empty(), source, ": an added token (id ", expected, ") is empty");
    out.emplace_back(token, id);
  }
  return out;
}

int32_t added_token_id(const json::Value& value, const std::string& what) {
  const int64_t id = value.as_int64(what);
  ZT_CHECK(id >= 0 && id < (int64_t{1} << 31), what, " = ", id,
           " is outside the 32-bit token id range");
  return static_cast<int32_t>(id);
}

AddedTokens read_added_tokens_json(const json::Value& root, const std::string& source,
                                   const std::vector<std::string>& pieces) {
  AddedTokens tokens;
  for (const auto& [token, id] : root.members()) {
    tokens.emplace_back(token, added_token_id(id, str(source, ": ", json::quote(token))));
  }
  return new_tokens_only(std::move(tokens), pieces, source);
}

// transformers >= 4.34 may save added tokens only in tokenizer_config.json's
// added_tokens_decoder ({"32000": {"content": ...}}); entries below the SentencePiece vocabulary
// size declare its control tokens and are not added tokens.
AddedTokens read_added_tokens_decoder(const json::Value& decoder, const std::string& source,
                                      const std::vector<std::string>& pieces) {
  const std::string what = source + ": \"added_tokens_decoder\"";
  const auto base = static_cast<int64_t>(pieces.size());
  AddedTokens tokens;
  for (const auto& [key, entry] : decoder.as_object(what)) {
    const std::string entry_what = str(what, "[", json::quote(key), "]");
    int64_t id = -1;
    const auto [end, error] = std::from_chars(key.data(), key.data() + key.size(), id);
    ZT_CHECK(error == std::errc() && end == key.data() + key.size() && id >= 0 &&
                 id < (int64_t{1} << 31),
             entry_what, ": the key must be a token id");
    if (id < base) continue;
    tokens.emplace_back(token_content(entry, entry_what), static_cast<int32_t>(id));
  }
  return new_tokens_only(std::move(tokens), pieces, what);
}

// ---------------------------------------------------------------------------------------------
// Writing

json::Value special_token_object(const std::string& content) {
  json::Value entry = json::Value::object();
  entry.set("content", content);
  entry.set("lstrip", false);
  entry.set("normalized", false);
  entry.set("rstrip", false);
  entry.set("single_word", false);
  return entry;
}

// The fields transformers' AddedToken.__getstate__ writes, for Llama's control tokens.
json::Value added_token_entry(const std::string& content) {
  json::Value entry = special_token_object(content);
  entry.set("special", true);
  return entry;
}

}  // namespace

int64_t utf8_length(std::string_view text) {
  int64_t code_points = 0;
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    size_t length = 0;
    uint32_t min_value = 0, value = 0;
    if (lead < 0x80) {
      length = 1, value = lead;
    } else if ((lead & 0xe0) == 0xc0) {
      length = 2, value = lead & 0x1fu, min_value = 0x80;
    } else if ((lead & 0xf0) == 0xe0) {
      length = 3, value = lead & 0x0fu, min_value = 0x800;
    } else if ((lead & 0xf8) == 0xf0) {
      length = 4, value = lead & 0x07u, min_value = 0x10000;
    } else {
      return -1;
    }
    if (length > text.size() - i) return -1;
    for (size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xc0) != 0x80) return -1;
      value = value << 6 | (next & 0x3fu);
    }
    if (value < min_value || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)) return -1;
    i += length;
    ++code_points;
  }
  return code_points;
}

SentencePieceModelInfo read_sentencepiece_model(std::string_view model_proto,
                                                const std::string& source) {
  WireReader reader(model_proto, source, "the ModelProto");
  SentencePieceModelInfo out;
  while (!reader.done()) {
    const uint64_t tag = reader.varint();
    const auto wire_type = static_cast<uint32_t>(tag & 7);
    ZT_CHECK((tag >> 3) != 0, source, ": protobuf field number 0 (not a SentencePiece model?)");
    if ((tag >> 3) == 1 && wire_type == 2) {
      ZT_CHECK(static_cast<int64_t>(out.pieces.size()) < kMaxSentencePieces, source, ": more than ",
               kMaxSentencePieces, " pieces (not a tokenizer?)");
      out.pieces.push_back(read_piece(reader.bytes(reader.varint()), source, out.pieces.size()));
    } else if ((tag >> 3) == 2 && wire_type == 2) {
      read_trainer_spec(reader.bytes(reader.varint()), source, out);
    } else {
      reader.skip(wire_type);
    }
  }
  check_pieces(out.pieces, source);
  return out;
}

std::vector<std::string> sentencepiece_pieces(std::string_view model_proto,
                                              const std::string& source) {
  SentencePieceModelInfo model = read_sentencepiece_model(model_proto, source);
  std::vector<std::string> pieces;
  pieces.reserve(model.pieces.size());
  for (SentencePieceEntry& piece : model.pieces) pieces.push_back(std::move(piece.text));
  return pieces;
}

AddedTokens new_added_tokens(AddedTokens added_tokens, const std::vector<std::string>& pieces,
                             const std::string& source) {
  return new_tokens_only(std::move(added_tokens), pieces, source);
}

int64_t tokenizer_token_id(const std::vector<std::string>& pieces, const TokenizerFiles& files,
                           std::string_view token) {
  if (token.empty()) return -1;
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (pieces[i] == token) return static_cast<int64_t>(i);
  }
  for (const auto& [added, id] : files.added_tokens) {
    if (added == token) return id;
  }
  return -1;
}

bool has_tokenizer_files(const std::string& dir) {
  return fs::exists(fs::path(dir) / "tokenizer.json") ||
         fs::exists(fs::path(dir) / "tokenizer.model");
}

namespace {

// tokenizer_config.json's model_max_length, 0 when unset.
int64_t read_model_max_length(const json::Value& config, const fs::path& config_path) {
  const json::Value* m = config.find("model_max_length");
  if (!m || m->is_null()) return 0;
  const std::string what = config_path.string() + ": \"model_max_length\"";
  if (m->as_double(what) >= kUnsetModelMaxLength) return 0;
  const int64_t length = m->as_int64(what);
  ZT_CHECK(length > 0, what, " must be positive, got ", length);
  return length;
}

// The special tokens the config files name: tokenizer_config.json, then special_tokens_map.json
// (which transformers lets override it).
void read_config_files(const fs::path& root, TokenizerFiles& out, json::Value* config_out) {
  const fs::path config_path = root / "tokenizer_config.json";
  json::Value config = read_optional_json(config_path);
  if (config.is_object()) {
    read_special_tokens(config, config_path.string(), out);
    out.model_max_length = read_model_max_length(config, config_path);
  }
  const fs::path map_path = root / "special_tokens_map.json";
  const json::Value map = read_optional_json(map_path);
  if (map.is_object()) read_special_tokens(map, map_path.string(), out);
  *config_out = std::move(config);
}

TokenizerFiles read_tokenizer_json_folder(const fs::path& root) {
  TokenizerFiles out;
  const fs::path json_path = root / "tokenizer.json";
  out.tokenizer_json = read_bounded(json_path, kMaxTokenizerJsonBytes);
  if (fs::exists(root / "tokenizer.model")) {
    out.model_proto = read_bounded(root / "tokenizer.model", kMaxModelBytes);
  }
  // Only what the config files name: Qwen2.5 has no BOS, Llama-3 no unk.
  out.bos_token.clear();
  out.eos_token.clear();
  out.unk_token.clear();
  json::Value config;
  read_config_files(root, out, &config);
  if (config.is_object())
    out.tokenizer_config = read_bounded(root / "tokenizer_config.json", kMaxJsonBytes);
  return out;
}

// Whether `normalizer` prepends "▁" (itself, or inside a Sequence): the legacy Llama form.
bool prepends_space_mark(const json::Value& normalizer) {
  if (!normalizer.is_object()) return false;
  const json::Value* type = normalizer.find("type");
  if (!type || !type->is_string()) return false;
  if (type->as_string("type") == "Prepend") {
    const json::Value* prepend = normalizer.find("prepend");
    return prepend && prepend->is_string() && prepend->as_string("prepend") == "\xe2\x96\x81";
  }
  const json::Value* list = normalizer.find("normalizers");
  if (type->as_string("type") != "Sequence" || !list || !list->is_array()) return false;
  for (const json::Value& item : list->items()) {
    if (prepends_space_mark(item)) return true;
  }
  return false;
}

// Whether tokenizer.json is what defines the folder's tokenizer: when there is one, except beside
// a tokenizer.model when it is the converted form of that model, which encodes as SentencePiece
// does: a Unigram model (no Unigram reader here; SentencePiece's Viterbi is the original), or the
// legacy Llama form (a "▁" Prepend normalizer, no pre-tokenizer: what transformers' LlamaConverter
// and zerotune's own export write), where SentencePiece per segment gives the same ids and its
// decode gives every text back. Mistral's Metaspace tokenizer.json is not such a form.
bool tokenizer_json_defines(const fs::path& root) {
  const fs::path json_path = root / "tokenizer.json";
  if (!fs::exists(json_path)) return false;
  if (!fs::exists(root / "tokenizer.model")) return true;
  const json::Value doc =
      json::parse(read_bounded(json_path, kMaxTokenizerJsonBytes), json_path.string());
  if (!doc.is_object()) return true;  // reading it will say what is wrong
  const json::Value* model = doc.find("model");
  const json::Value* type = model && model->is_object() ? model->find("type") : nullptr;
  if (type && type->is_string() && type->as_string("type") == "Unigram") return false;
  const json::Value* pre_tokenizer = doc.find("pre_tokenizer");
  const json::Value* normalizer = doc.find("normalizer");
  const bool legacy = (!pre_tokenizer || pre_tokenizer->is_null()) && normalizer &&
                      prepends_space_mark(*normalizer);
  return !legacy;
}

}  // namespace

TokenizerFiles read_tokenizer_files(const std::string& dir) {
  const fs::path root(dir);
  if (tokenizer_json_defines(root)) return read_tokenizer_json_folder(root);
  TokenizerFiles out;
  const fs::path model_path = root / "tokenizer.model";
  ZT_CHECK(fs::exists(model_path), dir,
           ": no tokenizer.json or tokenizer.model (one of them is required)");
  out.model_proto = read_bounded(model_path, kMaxModelBytes);
  const std::vector<std::string> pieces =
      sentencepiece_pieces(out.model_proto, model_path.string());
  json::Value config;
  read_config_files(root, out, &config);

  const fs::path added_path = root / "added_tokens.json";
  const json::Value added = read_optional_json(added_path);
  if (added.is_object()) {
    out.added_tokens = read_added_tokens_json(added, added_path.string(), pieces);
  } else if (const json::Value* decoder = config.find("added_tokens_decoder");
             decoder && !decoder->is_null()) {
    out.added_tokens =
        read_added_tokens_decoder(*decoder, (root / "tokenizer_config.json").string(), pieces);
  }
  return out;
}

std::vector<std::string> tokenizer_vocabulary(const TokenizerFiles& files,
                                              const std::string& source) {
  if (!files.tokenizer_json.empty()) return tokenizer_json_vocabulary(files.tokenizer_json, source);
  return sentencepiece_pieces(files.model_proto, source);
}

namespace {

// special_tokens_map.json: the special tokens that are set, as AddedToken objects.
json::Value special_tokens_map(const TokenizerFiles& files) {
  json::Value map = json::Value::object();
  const std::pair<const char*, const std::string*> specials[] = {{"bos_token", &files.bos_token},
                                                                 {"eos_token", &files.eos_token},
                                                                 {"pad_token", &files.pad_token},
                                                                 {"unk_token", &files.unk_token}};
  for (const auto& [key, token] : specials) {
    if (!token->empty()) map.set(key, special_token_object(*token));
  }
  return map;
}

void sync_folder(const std::string& dir) {
  // Makes the renames durable; best effort, as some file systems refuse fsync on a directory.
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    (void)::fsync(dir_fd);
    ::close(dir_fd);
  }
}

// The folder's tokenizer_config.json (or a new one) with the new tokens in added_tokens_decoder
// and the special tokens that are set; every other key (chat_template...) as it was.
json::Value tokenizer_json_config(const TokenizerFiles& files, const AddedTokens& added,
                                  const std::string& source) {
  json::Value config = json::Value::object();
  if (!files.tokenizer_config.empty()) {
    config = json::parse(files.tokenizer_config, source);
    ZT_CHECK(config.is_object(), source, ": expected a JSON object");
  }
  json::Value decoder = json::Value::object();
  if (const json::Value* existing = config.find("added_tokens_decoder");
      existing && existing->is_object()) {
    decoder = *existing;
  }
  for (const auto& [token, id] : added) decoder.set(std::to_string(id), added_token_entry(token));
  config.set("added_tokens_decoder", std::move(decoder));
  const std::pair<const char*, const std::string*> specials[] = {{"bos_token", &files.bos_token},
                                                                 {"eos_token", &files.eos_token},
                                                                 {"pad_token", &files.pad_token},
                                                                 {"unk_token", &files.unk_token}};
  for (const auto& [key, token] : specials) {
    if (!token->empty()) config.set(key, *token);
  }
  if (files.model_max_length > 0) config.set("model_max_length", files.model_max_length);
  return config;
}

// A tokenizer.json folder: its tokenizer.json with the new tokens appended, the config files, and
// tokenizer.model as it was loaded.
void write_tokenizer_json_folder(const fs::path& root, const TokenizerFiles& files) {
  const std::string json_source = (root / "tokenizer.json").string();
  ZT_CHECK(static_cast<int64_t>(files.tokenizer_json.size()) <= kMaxTokenizerJsonBytes, json_source,
           ": ", files.tokenizer_json.size(), " bytes is over the ", kMaxTokenizerJsonBytes,
           "-byte limit");
  AddedTokens added = files.added_tokens;
  std::stable_sort(added.begin(), added.end(),
                   [](const auto& a, const auto& b) { return a.second < b.second; });
  const std::string tokenizer_json =
      tokenizer_json_with_added_tokens(files.tokenizer_json, added, json_source);
  const json::Value config =
      tokenizer_json_config(files, added, (root / "tokenizer_config.json").string());
  if (!files.model_proto.empty()) {
    // The slow tokenizer's view: tokenizer.model plus every token after its pieces.
    const std::string model_source = (root / "tokenizer.model").string();
    const size_t pieces = sentencepiece_pieces(files.model_proto, model_source).size();
    const std::vector<std::string> vocabulary =
        tokenizer_json_vocabulary(tokenizer_json, json_source);
    json::Value added_json = json::Value::object();
    for (size_t id = pieces; id < vocabulary.size(); ++id) {
      if (!vocabulary[id].empty()) added_json.set(vocabulary[id], static_cast<int64_t>(id));
    }
    write_file_atomically(model_source, files.model_proto);
    write_file_atomically((root / "added_tokens.json").string(), added_json.dump(2) + "\n");
  }
  write_file_atomically((root / "special_tokens_map.json").string(),
                        special_tokens_map(files).dump(2) + "\n");
  write_file_atomically((root / "tokenizer_config.json").string(), config.dump(2) + "\n");
  write_file_atomically((root / "tokenizer.json").string(), tokenizer_json);
  sync_folder(root.string());
}

}  // namespace

void write_tokenizer_files(const std::string& dir, const TokenizerFiles& files) {
  const fs::path root(dir);
  ZT_CHECK(fs::is_directory(root), dir,
           ": not a directory (write_tokenizer_files needs it to exist)");
  if (!files.tokenizer_json.empty()) {
    write_tokenizer_json_folder(root, files);
    return;
  }
  const std::string model_source = (root / "tokenizer.model").string();
  ZT_CHECK(static_cast<int64_t>(files.model_proto.size()) <= kMaxModelBytes, model_source, ": ",
           files.model_proto.size(), " bytes is over the ", kMaxModelBytes, "-byte limit");
  const std::vector<std::string> pieces = sentencepiece_pieces(files.model_proto, model_source);
  const AddedTokens added =
      new_tokens_only(files.added_tokens, pieces, (root / "added_tokens.json").string());
  const std::string tokenizer_json = make_tokenizer_json(files, model_source);

  json::Value added_json = json::Value::object();
  for (const auto& [token, id] : added) added_json.set(token, id);

  const json::Value map = special_tokens_map(files);
  const std::pair<const char*, const std::string*> specials[] = {{"bos_token", &files.bos_token},
                                                                 {"eos_token", &files.eos_token},
                                                                 {"pad_token", &files.pad_token},
                                                                 {"unk_token", &files.unk_token}};

  // Keys in the order transformers writes them (json.dumps(sort_keys=True)); ids in id order.
  std::map<int64_t, std::string> decoder_entries;
  for (const auto& [key, token] : specials) {
    const int64_t id = tokenizer_token_id(pieces, files, *token);
    // A special token outside the vocabulary has no id to declare; transformers would add it.
    if (id >= 0) decoder_entries.emplace(id, *token);
  }
  for (const auto& [token, id] : added) decoder_entries.emplace(id, token);
  json::Value decoder = json::Value::object();
  for (const auto& [id, token] : decoder_entries)
    decoder.set(std::to_string(id), added_token_entry(token));

  json::Value config = json::Value::object();
  config.set("add_bos_token", true);
  config.set("add_eos_token", false);
  config.set("added_tokens_decoder", std::move(decoder));
  if (!files.bos_token.empty()) config.set("bos_token", files.bos_token);
  config.set("clean_up_tokenization_spaces", false);
  if (!files.eos_token.empty()) config.set("eos_token", files.eos_token);
  config.set("legacy", true);
  if (files.model_max_length > 0) config.set("model_max_length", files.model_max_length);
  if (!files.pad_token.empty()) config.set("pad_token", files.pad_token);
  config.set("sp_model_kwargs", json::Value::object());
  config.set("tokenizer_class", "LlamaTokenizer");
  if (!files.unk_token.empty()) config.set("unk_token", files.unk_token);

  write_file_atomically((root / "tokenizer.model").string(), files.model_proto);
  write_file_atomically((root / "added_tokens.json").string(), added_json.dump(2) + "\n");
  write_file_atomically((root / "special_tokens_map.json").string(), map.dump(2) + "\n");
  write_file_atomically((root / "tokenizer_config.json").string(), config.dump(2) + "\n");
  write_file_atomically((root / "tokenizer.json").string(), tokenizer_json);
  sync_folder(dir);
}

}  // namespace zerotune
