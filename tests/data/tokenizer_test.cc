#include "data/tokenizer.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/check.h"
#include "io/tokenizer_files.h"

namespace zerotune {
namespace {

namespace fs = std::filesystem;

#define EXPECT_THROW_HAS(statement, needle)                                         \
  do {                                                                              \
    try {                                                                           \
      statement;                                                                    \
      ADD_FAILURE() << "expected an error containing: " << (needle);                \
    } catch (const Error& e) {                                                      \
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what(); \
    }                                                                               \
  } while (0)

std::vector<int32_t> concat(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Word-problem-like sentences over a small alphabet, so that a 320-piece vocabulary (259 of them
// <unk> <s> </s> and the 256 byte pieces) still has room for characters and merges.
std::vector<std::string> make_corpus(int count, uint32_t seed) {
  const std::vector<std::string> words = {
      "the",   "a",    "cat",   "dog",   "sat",   "on",     "mat",  "and",  "ran",
      "to",    "of",   "in",    "she",   "eats",  "three",  "eggs", "for",  "breakfast",
      "every", "day",  "sells", "rest",  "at",    "market", "how",  "many", "dollars",
      "does",  "make", "per",   "janet", "ducks", "lay"};
  std::mt19937 rng(seed);
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    std::string s;
    const int n = 4 + static_cast<int>(rng() % 12);
    for (int w = 0; w < n; ++w) {
      if (w) s += ' ';
      s += words[rng() % words.size()];
    }
    s += " " + std::to_string(rng() % 1000) + (rng() % 2 ? "." : "?");
    out.push_back(s);
  }
  return out;
}

class TokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    SentencePieceTrainOptions options;
    options.vocab_size = 320;
    proto_ = train_sentencepiece(make_corpus(400, 7), options);
  }
  static Tokenizer plain() {
    TokenizerFiles files;
    files.model_proto = proto_;
    return Tokenizer::from_files(files);
  }
  static inline std::string proto_;  // trained once for the suite
};

TEST_F(TokenizerTest, TrainedModelHasLlamaLayout) {
  const Tokenizer t = plain();
  EXPECT_EQ(t.base_vocab_size(), 320);
  EXPECT_EQ(t.vocab_size(), 320);
  EXPECT_EQ(t.id_to_piece(0), "<unk>");
  EXPECT_EQ(t.id_to_piece(1), "<s>");
  EXPECT_EQ(t.id_to_piece(2), "</s>");
  EXPECT_EQ(t.id_to_piece(3), "<0x00>");  // byte_fallback pieces follow the control pieces
  EXPECT_EQ(t.id_to_piece(258), "<0xFF>");
  EXPECT_EQ(t.unk_id(), 0);
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_EQ(t.pad_id(), t.eos_id());
  // split_digits: no piece holds two digits.
  for (int32_t id = 259; id < 320; ++id) {
    const std::string p = t.id_to_piece(id);
    int digits = 0;
    for (char c : p) digits += (c >= '0' && c <= '9');
    EXPECT_LE(digits, 1) << p;
  }
}

TEST_F(TokenizerTest, AddedTokensTakeTheNextIdsInOrder) {
  Tokenizer t = plain();
  const int64_t base = t.base_vocab_size();
  EXPECT_EQ(t.add_special_tokens({"<START_Q>", "<END_Q>", "<START_Q>", "<s>", "<START_A>"}), 3);
  EXPECT_EQ(t.piece_to_id("<START_Q>"), base);
  EXPECT_EQ(t.piece_to_id("<END_Q>"), base + 1);
  EXPECT_EQ(t.piece_to_id("<START_A>"), base + 2);
  EXPECT_EQ(t.piece_to_id("<s>"), 1);  // already in the vocabulary: not re-added
  EXPECT_EQ(t.vocab_size(), base + 3);
  EXPECT_EQ(t.added_tokens(), (std::vector<std::string>{"<START_Q>", "<END_Q>", "<START_A>"}));
  EXPECT_EQ(t.add_special_tokens({"<END_A>", "<END_Q>"}), 1);  // a later call continues
  EXPECT_EQ(t.piece_to_id("<END_A>"), base + 3);
  EXPECT_EQ(t.id_to_piece(static_cast<int32_t>(base + 3)), "<END_A>");
  EXPECT_EQ(t.piece_to_id("<nope>"), -1);
  EXPECT_THROW_HAS(t.add_special_tokens({""}), "empty token");
}

// HF registers a special token that is already a piece under its existing id and splits it out
// of text from then on; it gets no new id.
TEST_F(TokenizerTest, TokenAlreadyInVocabularyKeepsItsIdAndIsSplitOut) {
  Tokenizer t = plain();
  const std::vector<int32_t> before = t.encode("a<0x41>b");
  EXPECT_EQ(t.add_special_tokens({"<0x41>"}), 0);
  EXPECT_EQ(t.vocab_size(), t.base_vocab_size());
  const int32_t byte_a = 3 + 0x41;
  ASSERT_EQ(t.id_to_piece(byte_a), "<0x41>");
  EXPECT_EQ(t.encode("a<0x41>b"), concat({t.encode("a"), {byte_a}, t.encode("b")}));
  EXPECT_NE(before, t.encode("a<0x41>b"));
  EXPECT_TRUE(t.files().added_tokens.empty());  // HF's added_tokens.json does not list it either
}

TEST_F(TokenizerTest, SplitsOnTheLongestTokenAtTheLeftmostMatch) {
  Tokenizer t = plain();
  t.add_special_tokens({"<X>", "<XY>", "<X"});
  const int32_t x = t.piece_to_id("<X>"), xy = t.piece_to_id("<XY>"), x_open = t.piece_to_id("<X");
  EXPECT_EQ(t.encode("<XY>"), (std::vector<int32_t>{xy}));
  EXPECT_EQ(t.encode("<X>Y>"), concat({{x}, t.encode("Y>")}));
  EXPECT_EQ(t.encode("<XZ"), concat({{x_open}, t.encode("Z")}));
  EXPECT_EQ(t.encode("<<X>"), concat({t.encode("<"), {x}}));
  EXPECT_EQ(t.encode("<X<XY>"), (std::vector<int32_t>{x_open, xy}));
}

TEST_F(TokenizerTest, AdjacentSpecialsAndSpecialsAtTheEdges) {
  Tokenizer t = plain();
  t.add_special_tokens({"<START_Q>", "<END_Q>", "<START_A>", "<END_A>"});
  const int32_t sq = t.piece_to_id("<START_Q>"), eq = t.piece_to_id("<END_Q>");
  const int32_t sa = t.piece_to_id("<START_A>"), ea = t.piece_to_id("<END_A>");
  EXPECT_EQ(t.encode("<START_Q><END_Q><START_A><END_A>"), (std::vector<int32_t>{sq, eq, sa, ea}));
  EXPECT_EQ(t.encode("<START_Q>"), (std::vector<int32_t>{sq}));
  EXPECT_EQ(t.encode("<START_Q>how many?<END_Q><START_A>3<END_A>"),
            concat({{sq}, t.encode("how many?"), {eq, sa}, t.encode("3"), {ea}}));
  EXPECT_TRUE(t.encode("").empty());
  // Whitespace next to a special is kept in the neighbouring segment (lstrip = rstrip = False).
  EXPECT_EQ(t.encode("a <END_Q> b"), concat({t.encode("a "), {eq}, t.encode(" b")}));
  EXPECT_NE(t.encode(" b"), t.encode("b"));
}

TEST_F(TokenizerTest, PartialSpecialsAreOrdinaryText) {
  Tokenizer t = plain();
  const Tokenizer base = plain();
  t.add_special_tokens({"<START_Q>", "<END_Q>"});
  for (const char* text : {"<START_", "<START_Q", "START_Q>", "<END_Q <START_Q", "<<END_", "<"}) {
    EXPECT_EQ(t.encode(text), base.encode(text)) << text;
  }
  EXPECT_EQ(t.encode("<START_<END_Q>"),
            concat({base.encode("<START_"), {t.piece_to_id("<END_Q>")}}));
}

// Each segment is encoded on its own, so each gets SentencePiece's dummy-prefix '▁'.
TEST_F(TokenizerTest, EverySegmentGetsItsOwnLeadingSpaceMarker) {
  Tokenizer t = plain();
  t.add_special_tokens({"<X>"});
  const int32_t x = t.piece_to_id("<X>");
  const std::vector<int32_t> cat = t.encode("cat");
  ASSERT_FALSE(cat.empty());
  EXPECT_EQ(t.id_to_piece(cat[0]).rfind("\xe2\x96\x81", 0), 0u) << t.id_to_piece(cat[0]);
  EXPECT_EQ(t.encode("<X>cat"), concat({{x}, cat}));
  EXPECT_EQ(t.encode("the<X>cat"), concat({t.encode("the"), {x}, cat}));
}

TEST_F(TokenizerTest, BosEosAndUnkWrittenInTextBecomeTheirIds) {
  const Tokenizer t = plain();
  EXPECT_EQ(t.encode("a<s>b</s>"), concat({t.encode("a"), {1}, t.encode("b"), {2}}));
  EXPECT_EQ(t.encode("<unk>"), (std::vector<int32_t>{0}));
}

TEST_F(TokenizerTest, EncodeExampleAddsBosEosAndKeepsTheFirstCtxLenIds) {
  const Tokenizer t = plain();
  const std::string text = "janet sells the rest at the market for 2 dollars.";
  const std::vector<int32_t> body = t.encode(text);
  const std::vector<int32_t> full = concat({{1}, body, {2}});
  bool truncated = true;
  int64_t length = 0;
  EXPECT_EQ(t.encode_example(text, 0, &truncated, &length), full);
  EXPECT_FALSE(truncated);
  EXPECT_EQ(length, static_cast<int64_t>(full.size()));
  const auto n = static_cast<int64_t>(full.size());
  EXPECT_EQ(t.encode_example(text, n, &truncated), full);
  EXPECT_FALSE(truncated);
  EXPECT_EQ(t.encode_example(text, n - 1, &truncated),
            std::vector<int32_t>(full.begin(), full.end() - 1));  // </s> is the first to go
  EXPECT_TRUE(truncated);
  EXPECT_EQ(t.encode_example(text, 3, &truncated, &length),
            std::vector<int32_t>(full.begin(), full.begin() + 3));
  EXPECT_TRUE(truncated);
  EXPECT_EQ(length, n);
  EXPECT_EQ(t.encode_example("", 0), (std::vector<int32_t>{1, 2}));
  EXPECT_THROW_HAS(t.encode_example(text, -1), "ctx_len must be >= 0");
}

TEST_F(TokenizerTest, DecodeInvertsEncode) {
  Tokenizer t = plain();
  t.add_special_tokens({"<START_Q>", "<END_Q>"});
  const std::vector<std::string> texts = {"the cat sat on the mat.",
                                          "  two leading and trailing  ",
                                          "tabs\tand\nnewlines\r\n",
                                          "<START_Q>how many?<END_Q>",
                                          "<START_Q><END_Q>",
                                          "a <END_Q> b",
                                          "caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80",
                                          "digits 1234567890",
                                          "<s>literal</s> <unk>",
                                          "",
                                          " ",
                                          "<START_"};
  for (const std::string& text : texts) {
    EXPECT_EQ(t.decode(t.encode(text), BosEos::keep), text) << text;
    EXPECT_EQ(t.decode(t.encode_example(text, 0), BosEos::keep), "<s>" + text + "</s>") << text;
  }
  // Skipping drops every <s> and </s>, those written in the text included.
  EXPECT_EQ(t.decode(t.encode_example("the cat", 0)), "the cat");
  EXPECT_EQ(t.decode(t.encode_example("<s>literal</s> <unk>", 0)), "literal  <unk>");
  // SentencePiece's one lossy case: a literal '▁' in text is its own whitespace marker, so it
  // comes back as a space (python sentencepiece does the same).
  EXPECT_EQ(t.decode(t.encode("a \xe2\x96\x81"
                              "b")),
            "a  b");
  EXPECT_THROW_HAS(t.decode({5, static_cast<int32_t>(t.vocab_size())}),
                   "ids[1] = 322 is outside the vocabulary [0, 322)");
  EXPECT_THROW_HAS(t.decode({-1}), "outside the vocabulary");
}

TEST_F(TokenizerTest, FilesReproduceTheTokenizer) {
  Tokenizer t = plain();
  t.add_special_tokens({"<START_Q>", "<END_Q>", "<s>"});
  const TokenizerFiles files = t.files();
  EXPECT_EQ(files.model_proto, proto_);
  ASSERT_EQ(files.added_tokens.size(), 2u);
  EXPECT_EQ(files.added_tokens[0], (std::pair<std::string, int32_t>{"<START_Q>", 320}));
  EXPECT_EQ(files.added_tokens[1], (std::pair<std::string, int32_t>{"<END_Q>", 321}));
  EXPECT_EQ(files.bos_token, "<s>");
  EXPECT_EQ(files.eos_token, "</s>");
  EXPECT_EQ(files.unk_token, "<unk>");
  EXPECT_EQ(files.pad_token, "</s>");
  const Tokenizer back = Tokenizer::from_files(files);
  EXPECT_EQ(back.vocab_size(), t.vocab_size());
  const std::string text = "<START_Q>how many eggs?<END_Q> 16";
  EXPECT_EQ(back.encode(text), t.encode(text));

  TokenizerFiles gap = files;
  gap.added_tokens[1].second = 323;
  EXPECT_THROW_HAS(Tokenizer::from_files(gap), "has id 323, expected 321");
  TokenizerFiles clash = files;
  clash.added_tokens[0].first = "<0x41>";  // a byte piece, id 68
  EXPECT_THROW_HAS(Tokenizer::from_files(clash), "is already in the vocabulary");
  TokenizerFiles bad_bos = files;
  bad_bos.bos_token = "<bos>";
  EXPECT_THROW_HAS(Tokenizer::from_files(bad_bos), "bos_token \"<bos>\" is neither");
  TokenizerFiles garbage;
  garbage.model_proto = "not a protobuf";
  EXPECT_THROW_HAS(Tokenizer::from_files(garbage), "not a SentencePiece model");
}

TEST_F(TokenizerTest, LoadsAModelFileOrAFolder) {
  const fs::path dir = fs::path(::testing::TempDir()) / "zerotune_tokenizer_load";
  fs::remove_all(dir);
  fs::create_directories(dir / "folder");
  {
    std::ofstream out(dir / "alone.model", std::ios::binary);
    out << proto_;
  }
  const Tokenizer alone = Tokenizer::load((dir / "alone.model").string());
  EXPECT_EQ(alone.vocab_size(), 320);
  Tokenizer t = plain();
  t.add_special_tokens({"<START_Q>", "<END_Q>"});
  write_tokenizer_files((dir / "folder").string(), t.files());
  const Tokenizer folder = Tokenizer::load((dir / "folder").string());
  EXPECT_EQ(folder.vocab_size(), 322);
  EXPECT_EQ(folder.encode("<END_Q>the cat<START_Q>"), t.encode("<END_Q>the cat<START_Q>"));
  EXPECT_THROW_HAS(Tokenizer::load((dir / "missing").string()), "no such file or folder");
  EXPECT_THROW_HAS(Tokenizer::load((dir / "folder" / "tokenizer.model.bak").string()),
                   "no such file or folder");
  // A .json file is read as a tokenizer.json: added_tokens.json is not one.
  EXPECT_THROW_HAS(Tokenizer::load((dir / "folder" / "added_tokens.json").string()),
                   "added_tokens.json: missing \"model\"");
  {
    std::ofstream out(dir / "alone.bin", std::ios::binary);
    out << "not a protobuf";
  }
  EXPECT_THROW_HAS(Tokenizer::load((dir / "alone.bin").string()), "not a SentencePiece model");
}

TEST_F(TokenizerTest, ReadsTokensJsonStrictly) {
  const fs::path dir = fs::path(::testing::TempDir()) / "zerotune_tokens_json";
  fs::create_directories(dir);
  const auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name, std::ios::binary) << text;
    return (dir / name).string();
  };
  EXPECT_EQ(read_special_tokens_json(write("good.json", R"({"tokens": ["<A>", "<B>"], "x": 1})")),
            (std::vector<std::string>{"<A>", "<B>"}));
  EXPECT_TRUE(read_special_tokens_json(write("none.json", R"({"tokens": []})")).empty());
  const std::string bad_item = write("item.json", R"({"tokens": ["<A>", "<B>", 3]})");
  EXPECT_THROW_HAS(read_special_tokens_json(bad_item),
                   bad_item + ": \"tokens\"[2] must be a string");
  EXPECT_THROW_HAS(read_special_tokens_json(write("list.json", R"(["<A>"])")),
                   "list.json: expected an object {\"tokens\": [...]}, got array");
  EXPECT_THROW_HAS(read_special_tokens_json(write("missing.json", R"({"token": ["<A>"]})")),
                   "missing.json: missing \"tokens\"");
  EXPECT_THROW_HAS(read_special_tokens_json(write("str.json", R"({"tokens": "<A>"})")),
                   "str.json: \"tokens\" must be an array");
  EXPECT_THROW_HAS(read_special_tokens_json(write("empty.json", R"({"tokens": ["<A>", ""]})")),
                   "empty.json: \"tokens\"[1] is empty");
  EXPECT_THROW_HAS(read_special_tokens_json(write("broken.json", R"({"tokens": ["<A>",)")),
                   "broken.json:1:");
  EXPECT_THROW_HAS(read_special_tokens_json((dir / "absent.json").string()),
                   "absent.json: cannot open");
}

TEST_F(TokenizerTest, ManyThreadsEncodeLikeOne) {
  Tokenizer t = plain();
  t.add_special_tokens({"<START_Q>", "<END_Q>"});
  std::vector<std::string> texts = make_corpus(300, 11);
  for (size_t i = 0; i < texts.size(); i += 3) texts[i] = "<START_Q>" + texts[i] + "<END_Q>";
  std::vector<std::vector<int32_t>> serial;
  for (const std::string& text : texts) serial.push_back(t.encode_example(text, 24));
  std::vector<std::vector<std::vector<int32_t>>> results(4);
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      for (const std::string& text : texts) results[k].push_back(t.encode_example(text, 24));
    });
  }
  for (std::thread& th : threads) th.join();
  for (int k = 0; k < 4; ++k) EXPECT_EQ(results[k], serial) << "thread " << k;
}

TEST_F(TokenizerTest, TrainingIsDeterministicAndSkipsSpecialTokens) {
  std::vector<std::string> corpus = make_corpus(300, 3);
  for (std::string& s : corpus) s = "<START_Q>" + s + "<END_Q>";
  for (const SentencePieceModelType type :
       {SentencePieceModelType::bpe, SentencePieceModelType::unigram}) {
    SentencePieceTrainOptions options;
    options.vocab_size = 300;
    options.model_type = type;
    options.special_tokens = {"<START_Q>", "<END_Q>"};
    const std::string first = train_sentencepiece(corpus, options);
    EXPECT_EQ(train_sentencepiece(corpus, options), first);
    TokenizerFiles files;
    files.model_proto = first;
    const Tokenizer t = Tokenizer::from_files(files);
    EXPECT_EQ(t.base_vocab_size(), 300);
    for (int32_t id = 0; id < 300; ++id) {
      EXPECT_EQ(t.id_to_piece(id).find("START"), std::string::npos) << t.id_to_piece(id);
    }
  }
  // --max-sentences draws its sample with the seed: the same seed, the same model.
  SentencePieceTrainOptions sampled;
  sampled.vocab_size = 300;
  sampled.max_sentences = 100;
  sampled.special_tokens = {"<START_Q>", "<END_Q>"};
  sampled.seed = 1;
  const std::string seed1 = train_sentencepiece(corpus, sampled);
  EXPECT_EQ(train_sentencepiece(corpus, sampled), seed1);
  sampled.seed = 2;
  EXPECT_NE(train_sentencepiece(corpus, sampled), seed1);
  SentencePieceTrainOptions tiny;
  tiny.vocab_size = 3;
  EXPECT_THROW_HAS(train_sentencepiece(corpus, tiny), "vocab_size must be in (3, 2^31)");
  EXPECT_THROW_HAS(train_sentencepiece({}, SentencePieceTrainOptions{}), "no text to train on");
}

// ---- the real Llama-2 vocabulary, when ../shared/data is present --------------------------------

std::string find_llama2_model() {
  const fs::path relative = fs::path("llama2-tokenizer") / "tokenizer.model";
  if (const char* env = std::getenv("ZEROTUNE_SHARED_DATA"); env && *env) {
    return fs::exists(fs::path(env) / relative) ? (fs::path(env) / relative).string() : "";
  }
  // ../shared/data from the project root: look beside every folder above the working directory
  // (ctest runs in build/) and above this source file.
  for (fs::path start : {fs::current_path(), fs::path(__FILE__).parent_path()}) {
    for (fs::path dir = fs::absolute(start); !dir.empty(); dir = dir.parent_path()) {
      const fs::path candidate = dir / "shared" / "data" / relative;
      if (fs::exists(candidate)) return candidate.string();
      if (dir == dir.parent_path()) break;
    }
  }
  return "";
}

TEST(Llama2Tokenizer, KnownIds) {
  const std::string path = find_llama2_model();
  if (path.empty()) {
    GTEST_SKIP() << "../shared/data/llama2-tokenizer/tokenizer.model not found (set "
                    "ZEROTUNE_SHARED_DATA to the shared data folder to run this test)";
  }
  Tokenizer t = Tokenizer::load(path);
  EXPECT_EQ(t.base_vocab_size(), 32000);
  EXPECT_EQ(t.encode("Hello world"), (std::vector<int32_t>{15043, 3186}));
  EXPECT_EQ(t.encode_example("Hello world", 0), (std::vector<int32_t>{1, 15043, 3186, 2}));
  EXPECT_EQ(t.encode("\n"), (std::vector<int32_t>{29871, 13}));
  EXPECT_EQ(t.encode("2023"), (std::vector<int32_t>{29871, 29906, 29900, 29906, 29941}));
  EXPECT_EQ(t.encode("  x"), (std::vector<int32_t>{259, 921}));
  EXPECT_EQ(t.add_special_tokens({"<START_Q>", "<END_Q>", "<START_A>", "<END_A>"}), 4);
  EXPECT_EQ(t.vocab_size(), 32004);
  EXPECT_EQ(t.encode("<START_Q>Hello world<END_Q><START_A>inform<END_A>"),
            (std::vector<int32_t>{32000, 15043, 3186, 32001, 32002, 1871, 32003}));
  const std::string text = "h\xc3\xa9llo \xf0\x9f\x98\x80 \xe4\xb8\xad\xe6\x96\x87<END_A>";
  EXPECT_EQ(t.decode(t.encode(text)), text);
}

}  // namespace
}  // namespace zerotune
