// The tokenizer.json backend on small hand-written files, whose expected ids follow from the
// definitions (BPE merges by rank, byte fallback, the added-token flags); the id-for-id check
// against Hugging Face's library itself is tests/tokenizers/check_hf_tokenizers.py.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/json.h"
#include "data/hf_text.h"
#include "data/tokenizer.h"
#include "io/tokenizer_files.h"
#include "support/errors.h"

namespace zerotune {
namespace {

namespace fs = std::filesystem;

// A tokenizer.json with a BPE model over `vocab` (ids in order) and `merges` ("a b"), no
// normalizer, pre-tokenizer or decoder unless set afterwards.
json::Value bpe_json(const std::vector<std::string>& vocab,
                     const std::vector<std::string>& merges) {
  json::Value v = json::Value::object();
  for (size_t i = 0; i < vocab.size(); ++i) v.set(vocab[i], static_cast<int64_t>(i));
  json::Value m = json::Value::array();
  for (const std::string& merge : merges) m.push_back(merge);
  json::Value model = json::Value::object();
  model.set("type", "BPE");
  model.set("vocab", std::move(v));
  model.set("merges", std::move(m));
  json::Value root = json::Value::object();
  root.set("version", "1.0");
  root.set("added_tokens", json::Value::array());
  root.set("model", std::move(model));
  return root;
}

json::Value parsed(const std::string& text) {
  return json::parse(text, "test");
}

Tokenizer tokenizer_of(const json::Value& root, const std::string& eos = "") {
  TokenizerFiles files;
  files.tokenizer_json = root.dump();
  files.bos_token.clear();
  files.unk_token.clear();
  files.eos_token = eos;
  files.tokenizer_config = "{}";  // a folder's: no conventional EOS is looked for
  return Tokenizer::from_files(files);
}

TEST(HfTextTest, LossyUtf8ReplacesEachMaximalSubpart) {
  // The Unicode Standard's example (chapter 3, "U+FFFD Substitution of Maximal Subparts").
  const std::string ill = "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64";
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(utf8_lossy(ill), "a" + r + r + r + "b" + r + "c" + r + r + "d");
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), r + r + r);  // a surrogate: three subparts
  EXPECT_EQ(utf8_lossy("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));
  EXPECT_TRUE(is_valid_utf8("\xF0\x9F\x98\x80"));
}

TEST(HfTextTest, NfcComposesAndByteLevelIsGpt2sAlphabet) {
  EXPECT_EQ(nfc("e\xCC\x81"), "\xC3\xA9");  // e + COMBINING ACUTE -> é
  std::string spelled;
  ByteLevelAlphabet::get().encode(" \n!", spelled);
  EXPECT_EQ(spelled, "\xC4\xA0\xC4\x8A!");  // Ġ Ċ !
  std::string bytes;
  ByteLevelAlphabet::get().decode(spelled, bytes);
  EXPECT_EQ(bytes, " \n!");
}

TEST(HfTokenizerTest, MergesApplyByRankLowestFirst) {
  const std::vector<std::string> vocab = {"a", "b", "c", "ab", "bc", "EOS"};
  // Whichever pair ranks first is merged first, wherever it stands in the word.
  EXPECT_EQ(tokenizer_of(bpe_json(vocab, {"b c", "a b"}), "EOS").encode("abc"),
            (std::vector<int32_t>{0, 4}));
  EXPECT_EQ(tokenizer_of(bpe_json(vocab, {"a b", "b c"}), "EOS").encode("abc"),
            (std::vector<int32_t>{3, 2}));
  // Equal pairs: the leftmost first ("aaa" -> "aa" + "a").
  const Tokenizer t = tokenizer_of(bpe_json({"a", "aa", "EOS"}, {"a a"}), "EOS");
  EXPECT_EQ(t.encode("aaa"), (std::vector<int32_t>{1, 0}));
  // Pairs spelled as arrays mean the same as "a b" strings.
  json::Value pairs = bpe_json(vocab, {});
  json::Value model = *pairs.find("model");
  model.set("merges", parsed(R"([["b", "c"], ["a", "b"]])"));
  pairs.set("model", std::move(model));
  EXPECT_EQ(tokenizer_of(pairs, "EOS").encode("abc"), (std::vector<int32_t>{0, 4}));
}

TEST(HfTokenizerTest, IgnoreMergesTakesAWholeWordFromTheVocabulary) {
  json::Value root = bpe_json({"a", "b", "c", "ab", "abc", "EOS"}, {"a b"});
  EXPECT_EQ(tokenizer_of(root, "EOS").encode("abc"), (std::vector<int32_t>{3, 2}));
  json::Value model = *root.find("model");
  model.set("ignore_merges", true);
  root.set("model", std::move(model));
  EXPECT_EQ(tokenizer_of(root, "EOS").encode("abc"), (std::vector<int32_t>{4}));
}

TEST(HfTokenizerTest, ByteFallbackAndFusedUnknowns) {
  // "é" is not in the vocabulary but its bytes C3 A9 are; "ü" (C3 BC) has no BC byte token.
  json::Value root = bpe_json({"<unk>", "a", "<0xC3>", "<0xA9>", "EOS"}, {});
  json::Value model = *root.find("model");
  model.set("unk_token", "<unk>");
  model.set("byte_fallback", true);
  model.set("fuse_unk", true);
  root.set("model", std::move(model));
  const Tokenizer t = tokenizer_of(root, "EOS");
  EXPECT_EQ(t.encode("a\xC3\xA9"), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(t.encode("\xC3\xBC\xC3\xBC"
                     "a"),
            (std::vector<int32_t>{0, 1}));  // one fused <unk>
}

TEST(HfTokenizerTest, AddedTokenFlagsAndTemplate) {
  json::Value root = bpe_json({"a", " ", "<s>", "</s>", "<m>"}, {});
  root.set("added_tokens", parsed(R"([
    {"id": 2, "content": "<s>", "special": true, "normalized": false},
    {"id": 3, "content": "</s>", "special": true, "normalized": false},
    {"id": 4, "content": "<m>", "special": true, "normalized": false, "lstrip": true,
     "rstrip": true}])"));
  root.set("post_processor", parsed(R"({"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
    "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [2], "tokens": ["<s>"]}}})"));
  Tokenizer t = tokenizer_of(root, "</s>");
  // <m> takes the spaces on both sides; the spaces around <s> stay text.
  EXPECT_EQ(t.encode("a  <m>  a <s> a"), (std::vector<int32_t>{0, 4, 0, 1, 2, 1, 0}));
  EXPECT_EQ(t.encode_example("a", 0), (std::vector<int32_t>{2, 0, 3}));
  EXPECT_EQ(t.bos_id(), -1);  // the config names no bos_token
  EXPECT_EQ(t.add_special_tokens({"<new>", "<m>"}), 1);
  EXPECT_EQ(t.piece_to_id("<new>"), 5);
  EXPECT_EQ(t.encode("a<new>a"), (std::vector<int32_t>{0, 5, 0}));
}

TEST(HfTokenizerTest, UnsupportedComponentsAreRefusedByPath) {
  json::Value root = bpe_json({"a", "EOS"}, {});
  root.set("normalizer", parsed(R"({"type": "Sequence", "normalizers": [{"type": "NFC"},
                                    {"type": "Lowercase"}]})"));
  expect_error([&] { tokenizer_of(root, "EOS"); },
               "tokenizer.json: normalizer.normalizers[1].type 'Lowercase' is not supported; "
               "supported: NFC, Prepend, Replace, Sequence");
  root = bpe_json({"a", "EOS"}, {});
  root.set("model", parsed(R"({"type": "Unigram", "vocab": []})"));
  expect_error([&] { tokenizer_of(root, "EOS"); },
               "model.type 'Unigram' is not supported; supported: BPE");
  expect_error([&] { tokenizer_of(bpe_json({"a"}, {"a b"}), "a"); }, "model.merges[0]");
  expect_error([&] { tokenizer_of(bpe_json({"a"}, {}), "EOS"); }, "eos_token \"EOS\"");
}

class TokenizerJsonFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / "zerotune_tokenizer_json_folder";
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "in");
    root_ = bpe_json({"h", "i", " ", "hi", "<|end|>"}, {"h i"});
    root_.set("added_tokens", parsed(R"([{"id": 4, "content": "<|end|>", "special": true,
                                         "normalized": false}])"));
    root_.set("decoder", parsed(R"({"type": "Fuse"})"));  // none would join tokens with spaces
    write("in/tokenizer.json", root_.dump());
    write("in/tokenizer_config.json",
          R"({"eos_token": "<|end|>", "bos_token": null, "chat_template": "{{ x }}"})");
  }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }
  std::string read(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  fs::path dir_;
  json::Value root_;
};

TEST_F(TokenizerJsonFolderTest, LoadsWithoutTokenizerModelAndPrefersTokenizerJson) {
  const Tokenizer t = Tokenizer::load((dir_ / "in").string());
  EXPECT_EQ(t.vocab_size(), 5);
  EXPECT_EQ(t.encode("hi hi<|end|>"), (std::vector<int32_t>{3, 2, 3, 4}));
  EXPECT_EQ(t.bos_id(), -1);
  EXPECT_EQ(t.eos_id(), 4);
  EXPECT_EQ(t.pad_id(), 4);  // no pad_token: eos, as the fine-tuning job pads
  EXPECT_EQ(t.encode_example("hi", 0), (std::vector<int32_t>{3, 4}));
  EXPECT_EQ(t.decode(t.encode("hi hi<|end|>"), BosEos::keep), "hi hi<|end|>");
  // A tokenizer.model beside it is carried, not used: a garbage one would not even load.
  write("in/tokenizer.model", "not a protobuf");
  EXPECT_EQ(Tokenizer::load((dir_ / "in").string()).vocab_size(), 5);
}

TEST_F(TokenizerJsonFolderTest, ExportCarriesNewTokensAndKeepsTheConfig) {
  Tokenizer t = Tokenizer::load((dir_ / "in").string());
  t.add_special_tokens({"<START_Q>", "<END_Q>"});
  fs::create_directories(dir_ / "out");
  write_tokenizer_files((dir_ / "out").string(), t.files());
  const json::Value written = json::parse(read(dir_ / "out" / "tokenizer.json"), "out");
  const std::vector<json::Value>& added = written.find("added_tokens")->items();
  ASSERT_EQ(added.size(), 3u);
  EXPECT_EQ(added[1].find("content")->as_string("c"), "<START_Q>");
  EXPECT_EQ(added[1].find("id")->as_int64("id"), 5);
  EXPECT_TRUE(added[2].find("special")->as_bool("s"));
  EXPECT_FALSE(added[2].find("normalized")->as_bool("n"));
  const json::Value config = json::parse(read(dir_ / "out" / "tokenizer_config.json"), "cfg");
  EXPECT_EQ(config.find("chat_template")->as_string("t"), "{{ x }}");
  EXPECT_EQ(config.find("added_tokens_decoder")->find("6")->find("content")->as_string("c"),
            "<END_Q>");
  EXPECT_EQ(config.find("pad_token")->as_string("p"), "<|end|>");
  const Tokenizer back = Tokenizer::load((dir_ / "out").string());
  EXPECT_EQ(back.vocab_size(), 7);
  EXPECT_EQ(back.encode("hi<START_Q>hi<END_Q>"), t.encode("hi<START_Q>hi<END_Q>"));
  EXPECT_EQ(back.encode("hi<START_Q>hi<END_Q>"), (std::vector<int32_t>{3, 5, 3, 6}));
}

}  // namespace
}  // namespace zerotune
