#include "io/tokenizer_files.h"

#include <gtest/gtest.h>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/json.h"
#include "io/tokenizer_json.h"
#include "support/sentencepiece_proto.h"

namespace zerotune {
namespace {

namespace fs = std::filesystem;

// Pieces scored 0, -1, -2, ...: <unk> UNKNOWN, <s> and </s> CONTROL, the rest NORMAL.
std::string fake_model(const std::vector<std::string>& pieces) {
  std::string proto;
  for (size_t i = 0; i < pieces.size(); ++i) {
    put_bytes(proto, 1,
              piece_message({pieces[i], -static_cast<float>(i),
                             i == 0  ? 2
                             : i < 3 ? 3
                                     : 1}));
  }
  put_bytes(proto, 2, std::string("\x08\x01", 2));  // a trainer_spec to skip
  return proto;
}

const std::vector<std::string> kPieces = {"<unk>", "<s>", "</s>", "\xe2\x96\x81the", "a", "b", "c",
                                          "d",     "e",   "f"};

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

json::Value read_json(const fs::path& path) {
  return json::parse(read_text(path), path.string());
}

class TokenizerFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("tokenizer_files_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  TokenizerFiles sample() const {
    TokenizerFiles files;
    files.model_proto = fake_model(kPieces);
    files.added_tokens = {{"<START_Q>", 10}, {"<END_Q>", 11}, {"<START_A>", 12}};
    files.pad_token = "</s>";
    files.model_max_length = 512;
    return files;
  }

  // Message of the error read_tokenizer_files throws, or "" when it does not.
  std::string read_error() const {
    try {
      read_tokenizer_files(dir_.string());
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
};

TEST_F(TokenizerFilesTest, PiecesMatchSentencePieceOnATrainedModel) {
  const fs::path corpus = dir_ / "corpus.txt";
  {
    std::ofstream out(corpus);
    for (int i = 0; i < 200; ++i) {
      out << "Natalia sold " << i << " clips to her friends in April and half as many in May.\n";
    }
  }
  std::string proto;
  const auto status = sentencepiece::SentencePieceTrainer::Train(
      "--input=" + corpus.string() + " --vocab_size=60 --model_type=bpe --minloglevel=2", nullptr,
      &proto);
  ASSERT_TRUE(status.ok()) << status.ToString();
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.LoadFromSerializedProto(proto).ok());

  const std::vector<std::string> pieces = sentencepiece_pieces(proto, "trained");
  ASSERT_EQ(static_cast<int>(pieces.size()), sp.GetPieceSize());
  for (int id = 0; id < sp.GetPieceSize(); ++id) EXPECT_EQ(pieces[id], sp.IdToPiece(id)) << id;
  EXPECT_EQ(tokenizer_token_id(pieces, TokenizerFiles{}, "<s>"), sp.PieceToId("<s>"));
  EXPECT_EQ(tokenizer_token_id(pieces, TokenizerFiles{}, "</s>"), sp.PieceToId("</s>"));
  EXPECT_EQ(tokenizer_token_id(pieces, TokenizerFiles{}, "<unk>"), sp.PieceToId("<unk>"));
}

TEST_F(TokenizerFilesTest, MalformedProtobufIsAnErrorNamingTheFile) {
  const std::string proto = fake_model(kPieces);
  EXPECT_THROW(sentencepiece_pieces(proto.substr(0, proto.size() / 2), "x/tokenizer.model"), Error);
  EXPECT_THROW(sentencepiece_pieces("", "x/tokenizer.model"), Error);  // no pieces
  try {
    sentencepiece_pieces("not a model at all", "x/tokenizer.model");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("x/tokenizer.model"), std::string::npos) << e.what();
  }
}

TEST_F(TokenizerFilesTest, RoundTrip) {
  const TokenizerFiles files = sample();
  write_tokenizer_files(dir_.string(), files);
  const TokenizerFiles back = read_tokenizer_files(dir_.string());
  EXPECT_EQ(back.model_proto, files.model_proto);
  EXPECT_EQ(back.added_tokens, files.added_tokens);
  EXPECT_EQ(back.bos_token, "<s>");
  EXPECT_EQ(back.eos_token, "</s>");
  EXPECT_EQ(back.unk_token, "<unk>");
  EXPECT_EQ(back.pad_token, "</s>");
  EXPECT_EQ(back.model_max_length, 512);
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir_)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"added_tokens.json", "special_tokens_map.json",
                                             "tokenizer.json", "tokenizer.model",
                                             "tokenizer_config.json"}));
}

TEST_F(TokenizerFilesTest, WrittenJsonHasTheFieldsTransformersReads) {
  write_tokenizer_files(dir_.string(), sample());
  EXPECT_EQ(read_text(dir_ / "tokenizer.model"), fake_model(kPieces));

  const json::Value added = read_json(dir_ / "added_tokens.json");
  ASSERT_EQ(added.size(), 3u);
  EXPECT_EQ(added.find("<START_Q>")->as_int64("id"), 10);
  EXPECT_EQ(added.find("<END_Q>")->as_int64("id"), 11);
  EXPECT_EQ(added.find("<START_A>")->as_int64("id"), 12);

  const json::Value map = read_json(dir_ / "special_tokens_map.json");
  for (const auto& [key, content] :
       std::vector<std::pair<std::string, std::string>>{{"bos_token", "<s>"},
                                                        {"eos_token", "</s>"},
                                                        {"unk_token", "<unk>"},
                                                        {"pad_token", "</s>"}}) {
    const json::Value* entry = map.find(key);
    ASSERT_TRUE(entry != nullptr) << key;
    EXPECT_EQ(entry->find("content")->as_string(key), content);
    EXPECT_FALSE(entry->find("normalized")->as_bool(key));
  }

  const json::Value config = read_json(dir_ / "tokenizer_config.json");
  EXPECT_EQ(config.find("tokenizer_class")->as_string("class"), "LlamaTokenizer");
  EXPECT_TRUE(config.find("legacy")->as_bool("legacy"));
  EXPECT_TRUE(config.find("add_bos_token")->as_bool("bos"));
  EXPECT_FALSE(config.find("add_eos_token")->as_bool("eos"));
  EXPECT_FALSE(config.find("clean_up_tokenization_spaces")->as_bool("clean"));
  EXPECT_EQ(config.find("bos_token")->as_string("bos"), "<s>");
  EXPECT_EQ(config.find("eos_token")->as_string("eos"), "</s>");
  EXPECT_EQ(config.find("unk_token")->as_string("unk"), "<unk>");
  EXPECT_EQ(config.find("pad_token")->as_string("pad"), "</s>");
  EXPECT_EQ(config.find("model_max_length")->as_int64("len"), 512);
  const json::Value& decoder = *config.find("added_tokens_decoder");
  std::vector<std::string> keys;
  for (const auto& [key, entry] : decoder.members()) {
    keys.push_back(key);
    EXPECT_TRUE(entry.find("special")->as_bool(key));
    for (const char* flag : {"lstrip", "normalized", "rstrip", "single_word"}) {
      EXPECT_FALSE(entry.find(flag)->as_bool(flag)) << key;
    }
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"0", "1", "2", "10", "11", "12"}));
  EXPECT_EQ(decoder.find("0")->find("content")->as_string("c"), "<unk>");
  EXPECT_EQ(decoder.find("1")->find("content")->as_string("c"), "<s>");
  EXPECT_EQ(decoder.find("2")->find("content")->as_string("c"), "</s>");
  EXPECT_EQ(decoder.find("11")->find("content")->as_string("c"), "<END_Q>");
}

TEST_F(TokenizerFilesTest, TokenizerJsonIsTheGeneratedOne) {
  const TokenizerFiles files = sample();
  write_tokenizer_files(dir_.string(), files);
  EXPECT_EQ(read_text(dir_ / "tokenizer.json"),
            make_tokenizer_json(files, (dir_ / "tokenizer.model").string()));
  const json::Value root = read_json(dir_ / "tokenizer.json");
  std::vector<int64_t> ids;
  for (const json::Value& t : root.find("added_tokens")->items()) {
    ids.push_back(t.find("id")->as_int64("id"));
  }
  EXPECT_EQ(ids, (std::vector<int64_t>{0, 1, 2, 10, 11, 12}));
}

TEST_F(TokenizerFilesTest, UnsetPadAndLengthAreLeftOut) {
  TokenizerFiles files = sample();
  files.pad_token.clear();
  files.model_max_length = 0;
  files.added_tokens.clear();
  write_tokenizer_files(dir_.string(), files);
  const json::Value config = read_json(dir_ / "tokenizer_config.json");
  EXPECT_EQ(config.find("pad_token"), nullptr);
  EXPECT_EQ(config.find("model_max_length"), nullptr);
  EXPECT_EQ(read_json(dir_ / "added_tokens.json").size(), 0u);
  EXPECT_EQ(read_json(dir_ / "special_tokens_map.json").find("pad_token"), nullptr);
  const TokenizerFiles back = read_tokenizer_files(dir_.string());
  EXPECT_TRUE(back.pad_token.empty());
  EXPECT_EQ(back.model_max_length, 0);
  EXPECT_TRUE(back.added_tokens.empty());
}

TEST_F(TokenizerFilesTest, ReadsBothSpecialTokenFormsAndMapOverridesConfig) {
  write_text(dir_ / "tokenizer.model", fake_model(kPieces));
  // transformers' older AddedToken objects in tokenizer_config.json, plain strings in the map;
  // int(1e30) is transformers' "no limit".
  write_text(dir_ / "tokenizer_config.json", R"({
    "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false},
    "eos_token": "<eos-from-config>", "unk_token": {"content": "<unk>"}, "pad_token": null,
    "model_max_length": 1000000000000000019884624838656})");
  write_text(dir_ / "special_tokens_map.json",
             R"({"eos_token": {"content": "</s>", "normalized": false}, "pad_token": "<unk>"})");
  const TokenizerFiles files = read_tokenizer_files(dir_.string());
  EXPECT_EQ(files.bos_token, "<s>");
  EXPECT_EQ(files.eos_token, "</s>");
  EXPECT_EQ(files.unk_token, "<unk>");
  EXPECT_EQ(files.pad_token, "<unk>");
  EXPECT_EQ(files.model_max_length, 0);
  EXPECT_TRUE(files.added_tokens.empty());
}

TEST_F(TokenizerFilesTest, AddedTokensFromTheConfigDecoderWhenNoAddedTokensJson) {
  write_text(dir_ / "tokenizer.model", fake_model(kPieces));
  write_text(dir_ / "tokenizer_config.json", R"({"added_tokens_decoder": {
    "0": {"content": "<unk>", "special": true}, "11": {"content": "<b>", "special": true},
    "10": {"content": "<a>", "special": true}}})");
  const TokenizerFiles files = read_tokenizer_files(dir_.string());
  EXPECT_EQ(files.added_tokens,
            (std::vector<std::pair<std::string, int32_t>>{{"<a>", 10}, {"<b>", 11}}));
}

TEST_F(TokenizerFilesTest, AddedTokensRestatingPiecesAreAccepted) {
  write_text(dir_ / "tokenizer.model", fake_model(kPieces));
  write_text(dir_ / "added_tokens.json", R"({"<pad>": 10, "</s>": 2})");
  const TokenizerFiles files = read_tokenizer_files(dir_.string());
  EXPECT_EQ(files.added_tokens, (std::vector<std::pair<std::string, int32_t>>{{"<pad>", 10}}));
}

TEST_F(TokenizerFilesTest, MalformedAddedTokensNameFileAndKey) {
  write_text(dir_ / "tokenizer.model", fake_model(kPieces));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"<a>": 10, "<b>": 12})", "\"<b>\" has id 12, expected 11"},  // gap
      {R"({"<a>": 11})", "\"<a>\" has id 11, expected 10"},             // not from the base
      {R"({"<a>": 3})", "\"<a>\" has id 3, expected 10"},               // a piece's id
      {R"({"<a>": 10, "<b>": 10})", "\"<b>\" has id 10, expected 11"},  // duplicate id
      {R"({"<a>": "10"})", "\"<a>\""},                                  // not an integer
      {R"({"<a>": -1})", "\"<a>\" = -1"},                               // negative
      {R"({"<a>": 10,})", "added_tokens.json:1:"},                      // bad JSON
      {R"(["<a>"])", "expected a JSON object"},
  };
  for (const auto& [text, expected] : cases) {
    write_text(dir_ / "added_tokens.json", text);
    const std::string message = read_error();
    EXPECT_NE(message.find("added_tokens.json"), std::string::npos) << text << ": " << message;
    EXPECT_NE(message.find(expected), std::string::npos) << text << ": " << message;
  }
}

TEST_F(TokenizerFilesTest, MissingOrOversizedModelIsAnError) {
  EXPECT_NE(read_error().find("no tokenizer.json or tokenizer.model"), std::string::npos)
      << read_error();
  write_text(dir_ / "tokenizer.model", "");
  fs::resize_file(dir_ / "tokenizer.model", (uint64_t{64} << 20) + 1);  // sparse, instant
  EXPECT_NE(read_error().find("limit"), std::string::npos) << read_error();
}

TEST_F(TokenizerFilesTest, BadSpecialTokenFieldIsAnError) {
  write_text(dir_ / "tokenizer.model", fake_model(kPieces));
  write_text(dir_ / "special_tokens_map.json", R"({"bos_token": 1})");
  const std::string message = read_error();
  EXPECT_NE(message.find("special_tokens_map.json: \"bos_token\""), std::string::npos) << message;
  write_text(dir_ / "special_tokens_map.json", R"({"bos_token": {"lstrip": false}})");
  EXPECT_NE(read_error().find("without \"content\""), std::string::npos) << read_error();
}

TEST_F(TokenizerFilesTest, WriteChecksBeforeWritingAnything) {
  TokenizerFiles files = sample();
  files.added_tokens = {{"<a>", 10}, {"<b>", 13}};
  EXPECT_THROW(write_tokenizer_files(dir_.string(), files), Error);
  files = sample();
  files.model_proto = "garbage";
  EXPECT_THROW(write_tokenizer_files(dir_.string(), files), Error);
  files = sample();
  files.bos_token = "<BOS>";  // no such token: tokenizer.json cannot name it
  EXPECT_THROW(write_tokenizer_files(dir_.string(), files), Error);
  EXPECT_TRUE(fs::is_empty(dir_));
  EXPECT_THROW(write_tokenizer_files((dir_ / "missing").string(), sample()), Error);
}

}  // namespace
}  // namespace zerotune

namespace zerotune {
namespace {

// Which file defines a folder with both: tokenizer.json, unless it is the converted form of
// tokenizer.model (the legacy Llama normalizer without a pre-tokenizer, or Unigram).
TEST_F(TokenizerFilesTest, TokenizerJsonWinsUnlessItIsTheConvertedSentencePieceForm) {
  write_text(dir_ / "tokenizer.model", fake_model(kPieces));
  const std::string bpe = R"("model": {"type": "BPE", "vocab": {}, "merges": []})";
  write_text(dir_ / "tokenizer.json",
             "{" + bpe + R"(, "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581",
                 "prepend_scheme": "first", "split": false}, "normalizer": null})");
  TokenizerFiles files = read_tokenizer_files(dir_.string());
  EXPECT_FALSE(files.tokenizer_json.empty());
  EXPECT_EQ(files.model_proto, fake_model(kPieces));  // carried for the export
  EXPECT_EQ(files.bos_token, "");                     // only what the config files name
  write_text(dir_ / "tokenizer.json",
             "{" + bpe + R"(, "pre_tokenizer": null, "normalizer": {"type": "Sequence",
                 "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                 {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}})");
  files = read_tokenizer_files(dir_.string());
  EXPECT_TRUE(files.tokenizer_json.empty());
  EXPECT_EQ(files.bos_token, "<s>");
  write_text(dir_ / "tokenizer.json", R"({"model": {"type": "Unigram", "vocab": []}})");
  EXPECT_TRUE(read_tokenizer_files(dir_.string()).tokenizer_json.empty());
  fs::remove(dir_ / "tokenizer.model");
  EXPECT_FALSE(read_tokenizer_files(dir_.string()).tokenizer_json.empty());
}

}  // namespace
}  // namespace zerotune
