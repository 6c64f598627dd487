// CompletionText: streamed pieces are final (never a broken character, never the start of a stop
// string), concatenate to the whole decode, and end before the first stop string. The decode
// here concatenates each id's bytes and, like SentencePiece's byte fallback, writes U+FFFD for
// every byte that is not part of a whole character.
#include "serve/completion_text.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

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
