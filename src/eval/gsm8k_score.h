// Scoring GSM8K answers. Two protocols:
//  - zerotune's (the fine-tuning format): the number after the last "####" of a completion against
//    the reference's, both normalised (thousands commas, "$", a trailing ".", "-0") and compared
//    as decimal numbers, so "72.0" equals "72" and "1,000" equals "1000";
//  - lm-evaluation-harness's gsm8k task: its two filters, strict-match (the first match of
//    `#### (\-?[0-9\.\,]+)`) and flexible-extract (the last match of
//    `(-?[$0-9.,]{2,})|(-?[0-9]+)`), each compared with the reference by the harness's
//    exact_match (regexes_to_ignore ",", "\$", "(?s).*#### ", "\.$"; case ignored; string
//    equality, no numeric parsing).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace zerotune {

// The canonical decimal form of a number as written in an answer: "$1,234.50" -> "1234.5",
// "-0.0" -> "0", "072." -> "72", ".5" -> "0.5". Nothing when the text is not a number.
std::optional<std::string> normalize_number(std::string_view text);

// The number right after the last "####" of `text` (spaces and a "$" may come between),
// normalised; nothing when there is no "####" or no number follows the last one.
std::optional<std::string> final_answer(std::string_view text);

// Whether `text` has a "####" at all (a reference answer must).
bool has_answer_marker(std::string_view text);

// The harness's filters on a completion; "[invalid]" (the harness's fallback) when nothing matches.
std::string harness_strict_match(std::string_view completion);
std::string harness_flexible_extract(std::string_view completion);

// The harness's exact_match of a filtered prediction against the reference answer (the whole
// GSM8K answer text; its "... #### " prefix is one of the ignored patterns).
bool harness_exact_match(std::string_view prediction, std::string_view reference);

// The harness's invalid-match marker.
inline constexpr std::string_view kHarnessInvalid = "[invalid]";

}  // namespace zerotune
