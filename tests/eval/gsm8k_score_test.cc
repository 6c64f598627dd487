// GSM8K scoring: the fine-tuning protocol's number after the last "####" (commas, negatives,
// decimals, "$", several "####", none), and lm-evaluation-harness's two filters and exact_match.
// The harness's expected values are what Python's re gives for the patterns of its gsm8k task
// (findall, then the first or last match, the first non-empty group, stripped).
#include "eval/gsm8k_score.h"

#include <gtest/gtest.h>

#include "eval/gsm8k_eval.h"

namespace zerotune {
namespace {

TEST(Gsm8kScore, NormalizesNumbers) {
  EXPECT_EQ(normalize_number("72"), "72");
  EXPECT_EQ(normalize_number("72.0"), "72");
  EXPECT_EQ(normalize_number("72."), "72");
  EXPECT_EQ(normalize_number("072.50"), "72.5");
  EXPECT_EQ(normalize_number("1,234,567"), "1234567");
  EXPECT_EQ(normalize_number("$1,234.50"), "1234.5");
  EXPECT_EQ(normalize_number("-5"), "-5");
  EXPECT_EQ(normalize_number("-0"), "0");
  EXPECT_EQ(normalize_number("-0.00"), "0");
  EXPECT_EQ(normalize_number(".5"), "0.5");
  EXPECT_EQ(normalize_number(""), std::nullopt);
  EXPECT_EQ(normalize_number("-"), std::nullopt);
  EXPECT_EQ(normalize_number("."), std::nullopt);
  EXPECT_EQ(normalize_number("1.2.3"), std::nullopt);
  EXPECT_EQ(normalize_number("5-3"), std::nullopt);
  EXPECT_EQ(normalize_number("abc"), std::nullopt);
}

TEST(Gsm8kScore, TakesTheNumberAfterTheLastMarker) {
  EXPECT_EQ(final_answer("48/2 = 24 clips.\n#### 72"), "72");
  EXPECT_EQ(final_answer("#### 1,000"), "1000");
  EXPECT_EQ(final_answer("#### -12"), "-12");
  EXPECT_EQ(final_answer("#### $18.00"), "18");
  EXPECT_EQ(final_answer("#### 3.75 dollars"), "3.75");
  EXPECT_EQ(final_answer("#### 5.\nmore text"), "5");
  EXPECT_EQ(final_answer("#### 5\n#### 6"), "6");  // the last marker counts
  EXPECT_EQ(final_answer("#### 5\n#### none"), std::nullopt);
  EXPECT_EQ(final_answer("####7"), "7");
  EXPECT_EQ(final_answer("the answer is 72"), std::nullopt);  // no marker
  EXPECT_EQ(final_answer(""), std::nullopt);
  EXPECT_EQ(final_answer("#### "), std::nullopt);
  EXPECT_TRUE(has_answer_marker("a #### b"));
  EXPECT_FALSE(has_answer_marker("a ### b"));
}

TEST(Gsm8kScore, ComparesAsNumbers) {
  const auto same = [](const char* a, const char* b) { return final_answer(a) == final_answer(b); };
  EXPECT_TRUE(same("#### 72.0", "#### 72"));
  EXPECT_TRUE(same("#### $1,072", "#### 1072"));
  EXPECT_TRUE(same("#### -0", "#### 0"));
  EXPECT_FALSE(same("#### -72", "#### 72"));
  EXPECT_FALSE(same("#### 7.2", "#### 72"));
}

TEST(Gsm8kScore, HarnessStrictMatchTakesTheFirstMarkedNumber) {
  EXPECT_EQ(harness_strict_match("She has 5 apples.\n#### 1,234."), "1,234.");
  EXPECT_EQ(harness_strict_match("#### -5\n#### 6"), "-5");
  EXPECT_EQ(harness_strict_match("#### $20"), kHarnessInvalid);  // "$" is not in its class
  EXPECT_EQ(harness_strict_match("The answer is 42."), kHarnessInvalid);
}

TEST(Gsm8kScore, HarnessFlexibleExtractTakesTheLastNumber) {
  EXPECT_EQ(harness_flexible_extract("So 3 + 4 = 7 and then $12.50 total. The answer is 42."),
            "42.");
  EXPECT_EQ(harness_flexible_extract("#### -5\n#### 6"), "6");
  EXPECT_EQ(harness_flexible_extract("It costs $5."), "$5.");
  EXPECT_EQ(harness_flexible_extract("x 7\n"), "7");
  EXPECT_EQ(harness_flexible_extract("1, 2, 3"), "3");
  EXPECT_EQ(harness_flexible_extract("Answer: -3 and 8."), "8.");
  EXPECT_EQ(harness_flexible_extract("no numbers here"), kHarnessInvalid);
}

// Cases where the sign or a short run makes a backtracking engine choose; the expected values are
// what Python's re.findall gives for the harness's patterns.
TEST(Gsm8kScore, HarnessFiltersBacktrackAsPythonsRe) {
  EXPECT_EQ(harness_strict_match("#### -\n#### ,"), ",");
  EXPECT_EQ(harness_strict_match("#### --4 #### -.5"), "-.5");
  EXPECT_EQ(harness_strict_match("5-3"), kHarnessInvalid);
  EXPECT_EQ(harness_flexible_extract("-$5 then --7"), "-7");
  EXPECT_EQ(harness_flexible_extract("5-3"), "-3");
  EXPECT_EQ(harness_flexible_extract("1.2.3 x"), "1.2.3");
  EXPECT_EQ(harness_flexible_extract("\xc3\xa9" "9" "\xc3\xa9"), "9");
  EXPECT_EQ(harness_flexible_extract("-$"), kHarnessInvalid);
  EXPECT_EQ(harness_flexible_extract("x-."), kHarnessInvalid);
  EXPECT_EQ(harness_flexible_extract("$ 7"), "7");
}

TEST(Gsm8kScore, HarnessExactMatchIgnoresItsPatterns) {
  const char* reference = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 1,072";
  EXPECT_TRUE(harness_exact_match("1072", reference));
  EXPECT_TRUE(harness_exact_match("1,072.", reference));
  EXPECT_TRUE(harness_exact_match("$1,072", reference));
  // Python's $ also matches before a final newline: the "." goes, the newline stays.
  EXPECT_TRUE(harness_exact_match("1072.\n", "#### 1072\n"));
  EXPECT_FALSE(harness_exact_match("1072.\n", reference));
  EXPECT_FALSE(harness_exact_match("1072.0", reference));  // strings, not numbers
  EXPECT_FALSE(harness_exact_match(std::string(kHarnessInvalid), reference));
}

TEST(Gsm8kScore, WilsonInterval) {
  // Wilson's score interval at z = 1.96 (the values statistics packages give).
  const Interval half = wilson_interval(5, 10);
  EXPECT_NEAR(half.low, 0.236593, 1e-6);
  EXPECT_NEAR(half.high, 0.763407, 1e-6);
  const Interval none = wilson_interval(0, 8);
  EXPECT_EQ(none.low, 0.0);
  EXPECT_NEAR(none.high, 0.324408, 1e-6);
  const Interval all = wilson_interval(20, 20);
  EXPECT_NEAR(all.low, 0.838875, 1e-6);
  EXPECT_EQ(all.high, 1.0);
}

}  // namespace
}  // namespace zerotune
