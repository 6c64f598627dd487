// CompletionText: streamed pieces are final (never a broken character, never the start of a stop
// string), concatenate to the whole decode, and end before the first stop string. The first
// tests decode by concatenating each id's bytes and, like SentencePiece's byte fallback, write
// U+FFFD for every byte that is not part of a whole character; then real SentencePiece
// tokenizers (one trained here, Llama-2's when ../shared/data has it) decode.
#include "serve/completion_text.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/rng.h"
#include "data/tokenizer.h"

namespace zerotune::serve {
namespace {

// Each test gives its tokens' bytes; the decode joins them and repairs invalid UTF-8.
DecodeTokens byte_decoder(std::map<int32_t, std::string> pieces) {
  return [pieces](const std::vector<int32_t>& ids) {
    std::string bytes;
    for (const int32_t id : ids) bytes += pieces.at(id);
    return valid_utf8(bytes);
  };
}

// ../shared/data/llama2-tokenizer/tokenizer.model from the project root, looked for above the
// working directory (ctest runs in build/) and above this source file; "" when absent.
std::string find_llama2_tokenizer() {
  namespace fs = std::filesystem;
  const fs::path relative = fs::path("shared") / "data" / "llama2-tokenizer" / "tokenizer.model";
  for (fs::path start : {fs::current_path(), fs::path(__FILE__).parent_path()}) {
    for (fs::path dir = fs::absolute(start); dir != dir.parent_path(); dir = dir.parent_path()) {
      if (fs::exists(dir / relative)) return (dir / relative).string();
    }
  }
  return "";
}

// Feeds ids 0..n-1 in order; returns the pieces add() returned, then finish()'s as the last.
std::vector<std::string> run(CompletionText& text, int32_t n) {
  std::vector<std::string> pieces;
  for (int32_t id = 0; id < n && !text.stopped(); ++id) pieces.push_back(text.add(id));
  pieces.push_back(text.finish());
  return pieces;
}

TEST(CompletionText, PiecesConcatenateToTheWholeDecode) {
  const DecodeTokens decode = byte_decoder({{0, "Hello"}, {1, ","}, {2, " wor"}, {3, "ld"}});
  CompletionText text(decode, {});
  EXPECT_EQ(run(text, 4), (std::vector<std::string>{"Hello", ",", " wor", "ld", ""}));
  EXPECT_EQ(text.released(), decode({0, 1, 2, 3}));
  EXPECT_FALSE(text.stopped());
}

TEST(CompletionText, HoldsBackAByteSplitCharacter) {
  // "€" is E2 82 AC, one byte per token as byte-fallback tokens give it.
  CompletionText text(byte_decoder({{0, "a"}, {1, "\xE2"}, {2, "\x82"}, {3, "\xAC"}, {4, "b"}}),
                      {});
  EXPECT_EQ(run(text, 5), (std::vector<std::string>{"a", "", "", "\xE2\x82\xAC", "b", ""}));
}

TEST(CompletionText, ReleasesAnIncompleteCharacterAtTheEndAsReplacement) {
  CompletionText text(byte_decoder({{0, "a"}, {1, "\xF0\x9F"}}), {});
  EXPECT_EQ(run(text, 2), (std::vector<std::string>{"a", "", "\xEF\xBF\xBD\xEF\xBF\xBD"}));
}

TEST(CompletionText, StopStringAcrossTokensIsCutWithWhatFollows) {
  CompletionText text(byte_decoder({{0, "Hel"}, {1, "lo"}, {2, " wor"}, {3, "ld"}}), {"o wo"});
  // "Hello" ends with "o", the start of the stop string: the "o" waits.
  EXPECT_EQ(run(text, 4), (std::vector<std::string>{"Hel", "l", "", ""}));
  EXPECT_TRUE(text.stopped());
  EXPECT_EQ(text.released(), "Hell");
}

TEST(CompletionText, HeldBackStartIsReleasedWhenTheStopStringDoesNotFollow) {
  CompletionText text(byte_decoder({{0, "xa"}, {1, "c"}, {2, "a"}}), {"ab"});
  EXPECT_EQ(run(text, 3), (std::vector<std::string>{"x", "ac", "", "a"}));
  EXPECT_FALSE(text.stopped());
  EXPECT_EQ(text.released(), "xaca");
}

TEST(CompletionText, EarliestOfSeveralStopStringsWins) {
  CompletionText text(byte_decoder({{0, "one two three"}}), {"three", "two", ""});
  EXPECT_EQ(run(text, 1), (std::vector<std::string>{"one ", ""}));
  EXPECT_TRUE(text.stopped());
}

TEST(CompletionText, StopStringAtTheVeryStartGivesEmptyText) {
  CompletionText text(byte_decoder({{0, "STOP"}, {1, "more"}}), {"STOP"});
  EXPECT_EQ(text.add(0), "");
  EXPECT_TRUE(text.stopped());
  EXPECT_EQ(text.finish(), "");
  EXPECT_EQ(text.released(), "");
}

TEST(CompletionText, StopStringWithAMultiByteCharacterSplitOverTokens) {
  CompletionText text(byte_decoder({{0, "5 "}, {1, "\xE2"}, {2, "\x82\xAC"}, {3, "!"}}),
                      {"\xE2\x82\xAC"});
  EXPECT_EQ(run(text, 4), (std::vector<std::string>{"5 ", "", "", ""}));
  EXPECT_TRUE(text.stopped());
  EXPECT_EQ(text.released(), "5 ");
}

TEST(CompletionText, FinishCutsAStopStringStillHeldBack) {
  // Generation ends (token limit) while "en" waits as a possible start of "end".
  CompletionText text(byte_decoder({{0, "the en"}}), {"end"});
  EXPECT_EQ(text.add(0), "the ");
  EXPECT_EQ(text.finish(), "en");
  EXPECT_FALSE(text.stopped());
}

// ---- with real SentencePiece tokenizers ------------------------------------------------------

// Feeds `ids` one by one; checks that every piece is whole characters (valid UTF-8, no U+FFFD
// that the text does not have) and that the pieces join to the tokenizer's decode of all ids.
void expect_streams_as_whole_decode(const Tokenizer& tokenizer, const std::vector<int32_t>& ids) {
  const DecodeTokens decode = [&](const std::vector<int32_t>& some) {
    return tokenizer.decode(some, BosEos::skip);
  };
  const std::string whole = decode(ids);
  CompletionText text(decode, {});
  std::string joined;
  for (const int32_t id : ids) {
    const std::string piece = text.add(id);
    EXPECT_EQ(valid_utf8(piece), piece);
    joined += piece;
    EXPECT_EQ(whole.compare(0, joined.size(), joined), 0) << "released text is not a prefix";
  }
  joined += text.finish();
  EXPECT_EQ(joined, whole);
}

// Texts with leading and repeated spaces, newlines, digits, special tokens, and characters the
// tokenizers only spell in byte tokens.
const std::vector<std::string> kTexts = {
    " Tom has 3 apples.\n\n  He buys 12 more: 15 apples in all.",
    "<START_A>caf\xc3\xa9 na\xc3\xafve \xe2\x82\xac"
    "5 \xf0\x9f\x98\x80<END_A> ok",
    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e<START_Q> <END_Q>\t end ",
};

TEST(CompletionText, StreamsAsTheTokenizerDecodesATrainedVocabulary) {
  std::vector<std::string> corpus;
  for (int i = 0; i < 200; ++i) {
    corpus.push_back("Tom has " + std::to_string(i) + " apples and buys " +
                     std::to_string(i * 7 % 13) + " more at the market.");
  }
  SentencePieceTrainOptions options;
  options.vocab_size = 300;  // ASCII only: every other character is spelled in byte tokens
  TokenizerFiles files;
  files.model_proto = train_sentencepiece(corpus, options);
  Tokenizer tokenizer = Tokenizer::from_files(files);
  tokenizer.add_special_tokens({"<START_Q>", "<END_Q>", "<START_A>", "<END_A>"});
  int64_t byte_tokens = 0;
  for (const std::string& t : kTexts) {
    const std::vector<int32_t> ids = tokenizer.encode(t);
    for (const int32_t id : ids) byte_tokens += tokenizer.id_to_piece(id).rfind("<0x", 0) == 0;
    expect_streams_as_whole_decode(tokenizer, ids);
  }
  EXPECT_GT(byte_tokens, 20) << "the texts should spell their non-ASCII characters in bytes";
}

TEST(CompletionText, StreamsAsTheTokenizerDecodesLlama2) {
  const std::string path = find_llama2_tokenizer();
  if (path.empty()) GTEST_SKIP() << "../shared/data/llama2-tokenizer/tokenizer.model not found";
  Tokenizer tokenizer = Tokenizer::load(path);
  tokenizer.add_special_tokens({"<START_Q>", "<END_Q>", "<START_A>", "<END_A>"});
  for (const std::string& t : kTexts) {
    expect_streams_as_whole_decode(tokenizer, tokenizer.encode(t));
  }
  // Random ids: byte tokens in any order, lone continuation bytes, pieces after specials.
  Rng rng(7);
  std::vector<int32_t> ids;
  for (int i = 0; i < 400; ++i) {
    ids.push_back(static_cast<int32_t>(rng.below(uint64_t(tokenizer.vocab_size()))));
  }
  expect_streams_as_whole_decode(tokenizer, ids);
}

TEST(Utf8, UnfinishedTailLength) {
  EXPECT_EQ(unfinished_tail_length(""), 0u);
  EXPECT_EQ(unfinished_tail_length("abc"), 0u);
  EXPECT_EQ(unfinished_tail_length("a\xE2\x82"), 2u);
  EXPECT_EQ(unfinished_tail_length("a\xE2\x82\xAC"), 0u);
  EXPECT_EQ(unfinished_tail_length("a\xF0\x9F\x98"), 3u);
  EXPECT_EQ(unfinished_tail_length("a\xEF\xBF\xBD\xEF\xBF\xBD"), 6u);
  EXPECT_EQ(unfinished_tail_length("a\xEF\xBF\xBD\xC3"), 4u);
  EXPECT_EQ(unfinished_tail_length("\xC3\xA9"), 0u);
}

TEST(Utf8, InvalidBytesBecomeReplacementCharacters) {
  EXPECT_EQ(valid_utf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(valid_utf8("a\xFF"
                       "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(valid_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong '/'
  EXPECT_EQ(valid_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(valid_utf8("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");
  EXPECT_EQ(valid_utf8("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

}  // namespace
}  // namespace zerotune::serve
