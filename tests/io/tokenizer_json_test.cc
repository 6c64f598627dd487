#include "io/tokenizer_json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "core/check.h"
#include "core/json.h"
#include "io/tokenizer_files.h"
#include "support/sentencepiece_proto.h"

namespace zerotune {
namespace {

using Merges = std::vector<std::pair<std::string, std::string>>;

const std::string kMark = "\xe2\x96\x81";  // "▁"

// <unk> <s> </s> (scores -100: the converter must zero them), then pieces that make "<s>" from
// "<" + "s>", and words whose merges tie on score.
std::vector<Piece> small_vocab() {
  return {{"<unk>", -100, 2}, {"<s>", -100, 3},       {"</s>", -100, 3}, {"<0x41>", 0, 6},
          {"a", -1, 1},       {"b", -2, 1},           {"c", -3, 1},      {"ab", -4, 1},
          {"bc", -4, 1},      {"abc", -5, 1},         {"<", -7, 1},      {"s>", -8, 1},
          {kMark, -6, 1},     {kMark + "a", -0.5f, 1}};
}

TokenizerFiles small_files(int model_type) {
  TokenizerFiles files;
  files.model_proto = model_proto(small_vocab(), model_type);
  files.added_tokens = {{"<START_Q>", 14}, {"<END_Q>", 15}};
  files.pad_token = "</s>";
  return files;
}

json::Value tokenizer_json(const TokenizerFiles& files) {
  return json::parse(make_tokenizer_json(files, "x/tokenizer.model"), "tokenizer.json");
}

// The message make_tokenizer_json throws, or "" when it does not.
std::string json_error(const TokenizerFiles& files) {
  try {
    make_tokenizer_json(files, "x/tokenizer.model");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::vector<SentencePieceEntry> entries(const std::vector<Piece>& pieces) {
  std::vector<SentencePieceEntry> out;
  for (const Piece& p : pieces) {
    out.push_back({p.text, p.score, static_cast<SentencePieceType>(p.type)});
  }
  return out;
}

// ---- merges -----------------------------------------------------------------------------------

TEST(TokenizerJson, MergesAreOrderedByScoreThenLeftThenRightLengthInCodePoints) {
  // Expected by hand from transformers' generate_merges: one merge per split of a piece into two
  // pieces; score descending; on equal scores the longer left part first, then the longer right
  // part, lengths in code points ("▁" is 1, not 3 bytes); equal keys keep piece order.
  const std::vector<Piece> vocab = {{"a", -1, 1},           {"b", -2, 1},
                                    {"c", -3, 1},           {"ab", -4, 1},
                                    {"bc", -4, 1},          {"abc", -5, 1},
                                    {"ca", -5, 1},          {kMark, -6, 1},
                                    {kMark + kMark, -5, 1}, {kMark + "a", -0.5f, 1},
                                    {"cab", -5, 1}};
  const Merges expected = {
      {kMark, "a"},                  // -0.5
      {"a", "b"},   {"b", "c"},      // -4, (1, 1): piece order
      {"ab", "c"},  {"ca", "b"},     // -5, (2, 1): "abc" before "cab"
      {"a", "bc"},  {"c", "ab"},     // -5, (1, 2)
      {"c", "a"},   {kMark, kMark},  // -5, (1, 1): "ca" before "▁▁"
  };
  EXPECT_EQ(sentencepiece_bpe_merges(entries(vocab)), expected);
}

TEST(TokenizerJson, SplitsOfOnePieceGoLongestLeftFirstWhateverTheirIds) {
  // "abab" splits as "a"+"bab" (ids 0, 3), "aba"+"b" (2, 1) and "ab"+"ab" (4, 4): id order would
  // list "a"+"bab" first; the length rule lists "aba"+"b", "ab"+"ab", "a"+"bab".
  const std::vector<Piece> vocab = {{"a", -1, 1},   {"b", -2, 1},  {"aba", -3, 1},
                                    {"bab", -4, 1}, {"ab", -5, 1}, {"abab", -6, 1}};
  const Merges expected = {{"ab", "a"},  {"b", "ab"},  {"a", "b"},
                           {"aba", "b"}, {"ab", "ab"}, {"a", "bab"}};
  EXPECT_EQ(sentencepiece_bpe_merges(entries(vocab)), expected);
}

// ---- the whole file ---------------------------------------------------------------------------

TEST(TokenizerJson, BpeModelHasTheConverterFields) {
  const json::Value root = tokenizer_json(small_files(2));
  EXPECT_EQ(root.find("version")->as_string("version"), "1.0");
  EXPECT_TRUE(root.find("truncation")->is_null());
  EXPECT_TRUE(root.find("padding")->is_null());
  EXPECT_TRUE(root.find("pre_tokenizer")->is_null());

  const json::Value& model = *root.find("model");
  EXPECT_EQ(model.find("type")->as_string("type"), "BPE");
  EXPECT_EQ(model.find("unk_token")->as_string("unk"), "<unk>");
  EXPECT_TRUE(model.find("fuse_unk")->as_bool("fuse_unk"));
  EXPECT_TRUE(model.find("byte_fallback")->as_bool("byte_fallback"));
  EXPECT_FALSE(model.find("ignore_merges")->as_bool("ignore_merges"));
  EXPECT_TRUE(model.find("dropout")->is_null());
  const json::Value& vocab = *model.find("vocab");
  ASSERT_EQ(vocab.size(), small_vocab().size());
  for (size_t id = 0; id < small_vocab().size(); ++id) {
    EXPECT_EQ(vocab.find(small_vocab()[id].text)->as_int64("id"), static_cast<int64_t>(id));
  }
  // "<s>" scores 0 in the converter's vocabulary, so "<" + "s>" is the first merge although the
  // proto gives <s> -100.
  std::vector<std::string> merges;
  for (const json::Value& m : model.find("merges")->items()) merges.push_back(m.as_string("m"));
  EXPECT_EQ(merges, (std::vector<std::string>{"< s>", kMark + " a", "a b", "b c", "ab c", "a bc"}));
}

TEST(TokenizerJson, AddedTokensNormalizerDecoderAndBos) {
  const json::Value root = tokenizer_json(small_files(2));
  std::vector<std::pair<int64_t, std::string>> added;
  for (const json::Value& t : root.find("added_tokens")->items()) {
    added.emplace_back(t.find("id")->as_int64("id"), t.find("content")->as_string("content"));
    EXPECT_TRUE(t.find("special")->as_bool("special"));
    for (const char* flag : {"normalized", "lstrip", "rstrip", "single_word"}) {
      EXPECT_FALSE(t.find(flag)->as_bool(flag)) << flag;
    }
  }
  EXPECT_EQ(added, (std::vector<std::pair<int64_t, std::string>>{
                       {0, "<unk>"}, {1, "<s>"}, {2, "</s>"}, {14, "<START_Q>"}, {15, "<END_Q>"}}));

  const json::Value& normalizers = *root.find("normalizer")->find("normalizers");
  ASSERT_EQ(normalizers.size(), 2u);
  EXPECT_EQ(normalizers.items()[0].find("type")->as_string("t"), "Prepend");
  EXPECT_EQ(normalizers.items()[0].find("prepend")->as_string("p"), kMark);
  EXPECT_EQ(normalizers.items()[1].find("pattern")->find("String")->as_string("s"), " ");
  EXPECT_EQ(normalizers.items()[1].find("content")->as_string("c"), kMark);

  std::vector<std::string> decoders;
  for (const json::Value& d : root.find("decoder")->find("decoders")->items()) {
    decoders.push_back(d.find("type")->as_string("type"));
  }
  EXPECT_EQ(decoders, (std::vector<std::string>{"Replace", "ByteFallback", "Fuse", "Strip"}));
  const json::Value& strip = root.find("decoder")->find("decoders")->items()[3];
  EXPECT_EQ(strip.find("start")->as_int64("start"), 1);
  EXPECT_EQ(strip.find("stop")->as_int64("stop"), 0);

  const json::Value& post = *root.find("post_processor");
  EXPECT_EQ(post.find("type")->as_string("type"), "TemplateProcessing");
  EXPECT_EQ(post.find("single")->size(), 2u);
  EXPECT_EQ(post.find("pair")->size(), 4u);
  const json::Value& bos = *post.find("special_tokens")->find("<s>");
  EXPECT_EQ(bos.find("ids")->items().at(0).as_int64("id"), 1);
}

TEST(TokenizerJson, BosNamedByAnAddedTokenIsUsedAndAnUnknownOneRefused) {
  TokenizerFiles files = small_files(2);
  files.bos_token = "<START_Q>";
  const json::Value root = tokenizer_json(files);
  const json::Value& bos = *root.find("post_processor")->find("special_tokens")->find("<START_Q>");
  EXPECT_EQ(bos.find("ids")->items().at(0).as_int64("id"), 14);

  files.bos_token = "<BOS>";
  const std::string message = json_error(files);
  EXPECT_NE(message.find("x/tokenizer.model: bos_token \"<BOS>\" is neither"), std::string::npos)
      << message;
}

TEST(TokenizerJson, UnigramModelKeepsScoresWithSpecialsAtZero) {
  const json::Value root = tokenizer_json(small_files(0));  // model_type unset: UNIGRAM
  const json::Value& model = *root.find("model");
  EXPECT_EQ(model.find("type")->as_string("type"), "Unigram");
  EXPECT_EQ(model.find("unk_id")->as_int64("unk_id"), 0);
  EXPECT_TRUE(model.find("byte_fallback")->as_bool("byte_fallback"));
  const std::vector<json::Value>& vocab = model.find("vocab")->items();
  ASSERT_EQ(vocab.size(), small_vocab().size());
  for (size_t id = 0; id < vocab.size(); ++id) {
    EXPECT_EQ(vocab[id].items()[0].as_string("piece"), small_vocab()[id].text);
    const double expected = id < 3 ? 0.0 : small_vocab()[id].score;
    EXPECT_EQ(vocab[id].items()[1].as_double("score"), expected) << id;
  }
}

TEST(TokenizerJson, MergesOfPiecesWithSpacesArePairs) {
  std::vector<Piece> pieces = small_vocab();
  pieces.push_back({"x y", -9, 1});
  pieces.push_back({"x", -10, 1});
  pieces.push_back({" y", -11, 1});
  TokenizerFiles files = small_files(2);
  files.model_proto = model_proto(pieces, 2);
  files.added_tokens.clear();
  const json::Value root = tokenizer_json(files);
  const std::vector<json::Value>& merges = root.find("model")->find("merges")->items();
  ASSERT_FALSE(merges.empty());
  const json::Value& last = merges.back();
  ASSERT_TRUE(last.is_array());
  EXPECT_EQ(last.items()[0].as_string("left"), "x");
  EXPECT_EQ(last.items()[1].as_string("right"), " y");
}

// ---- bad input --------------------------------------------------------------------------------

TEST(TokenizerJson, MalformedModelsAreRefusedNamingTheFile) {
  const std::string good = model_proto(small_vocab(), 2);
  std::vector<Piece> bad_type = small_vocab();
  bad_type[4].type = 9;
  std::vector<Piece> repeated = small_vocab();
  repeated[5].text = "a";
  std::vector<Piece> not_utf8 = small_vocab();
  not_utf8[5].text = "\xff\xfe";
  std::vector<Piece> nan_score = small_vocab();
  nan_score[5].score = std::numeric_limits<float>::quiet_NaN();
  std::vector<Piece> too_long = small_vocab();
  too_long[5].text = std::string(kMaxSentencePieceBytes + 1, 'z');
  std::vector<Piece> empty = small_vocab();
  empty[5].text.clear();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {good.substr(0, good.size() - 3), "runs past its end"},
      {"", "no vocabulary pieces"},
      {model_proto(bad_type, 2), "piece 4 has type 9"},
      {model_proto(repeated, 2), "piece 5 \"a\" is also piece 4"},
      {model_proto(not_utf8, 2), "piece 5 is not valid UTF-8"},
      {model_proto(nan_score, 2), "piece 5 \"b\" has score"},
      {model_proto(too_long, 2), "piece 5 is 1025 bytes"},
      {model_proto(empty, 2), "piece 5 is empty"},
      {model_proto(small_vocab(), 3), "model_type 3 (WORD or CHAR)"},
      {model_proto(small_vocab(), 7), "model_type is 7"},
  };
  for (const auto& [proto, expected] : cases) {
    TokenizerFiles files = small_files(2);
    files.model_proto = proto;
    files.added_tokens.clear();
    const std::string message = json_error(files);
    EXPECT_EQ(message.rfind("x/tokenizer.model: ", 0), 0u) << expected << ": " << message;
    EXPECT_NE(message.find(expected), std::string::npos) << expected << ": " << message;
  }
}

TEST(TokenizerJson, AddedTokenIdsMustFollowTheVocabulary) {
  TokenizerFiles files = small_files(2);
  files.added_tokens = {{"<START_Q>", 15}};
  const std::string message = json_error(files);
  EXPECT_NE(message.find("\"<START_Q>\" has id 15, expected 14"), std::string::npos) << message;
}

}  // namespace
}  // namespace zerotune
