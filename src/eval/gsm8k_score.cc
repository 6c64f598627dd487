#include "eval/gsm8k_score.h"

#include <algorithm>
#include <cctype>
#include <regex>
#include <vector>

namespace zerotune {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// "-" digits ["." digits] with at least one digit in all; the parts or nothing.
struct DecimalParts {
  bool negative = false;
  std::string whole, fraction;
};

std::optional<DecimalParts> split_decimal(std::string_view s) {
  DecimalParts parts;
  if (!s.empty() && s.front() == '-') {
    parts.negative = true;
    s.remove_prefix(1);
  }
  const size_t dot = s.find('.');
  parts.whole = std::string(s.substr(0, dot));
  if (dot != std::string_view::npos) parts.fraction = std::string(s.substr(dot + 1));
  const auto digits = [](const std::string& t) {
    return std::all_of(t.begin(), t.end(), is_digit);
  };
  if (!digits(parts.whole) || !digits(parts.fraction)) return std::nullopt;
  if (parts.whole.empty() && parts.fraction.empty()) return std::nullopt;
  return parts;
}

}  // namespace

std::optional<std::string> normalize_number(std::string_view text) {
  std::string s;
  for (const char c : text) {
    if (c != ',' && c != '$' && !std::isspace(static_cast<unsigned char>(c))) s += c;
  }
  if (!s.empty() && s.back() == '.') s.pop_back();  // "72." ends a sentence
  std::optional<DecimalParts> parts = split_decimal(s);
  if (!parts) return std::nullopt;
  std::string& whole = parts->whole;
  std::string& fraction = parts->fraction;
  whole.erase(0, std::min(whole.find_first_not_of('0'), whole.size()));
  fraction.erase(std::min(fraction.find_last_not_of('0') + 1, fraction.size()));
  if (whole.empty()) whole = "0";
  const bool zero = whole == "0" && fraction.empty();
  std::string out = parts->negative && !zero ? "-" : "";  // "-0" is 0
  out += whole;
  if (!fraction.empty()) out += "." + fraction;
  return out;
}

bool has_answer_marker(std::string_view text) {
  return text.find("####") != std::string_view::npos;
}

std::optional<std::string> final_answer(std::string_view text) {
  const size_t marker = text.rfind("####");
  if (marker == std::string_view::npos) return std::nullopt;
  std::string_view rest = text.substr(marker + 4);
  size_t begin = 0;
  while (begin < rest.size() && std::isspace(static_cast<unsigned char>(rest[begin]))) ++begin;
  size_t end = begin;
  while (end < rest.size() && (is_digit(rest[end]) || rest[end] == '-' || rest[end] == '$' ||
                               rest[end] == '.' || rest[end] == ',')) {
    ++end;
  }
  return normalize_number(rest.substr(begin, end - begin));
}

namespace {

// The harness's regex filter: Python's re.findall, then the first match (select >= 0) or the last;
// of a match with several groups, the first non-empty one; stripped. ECMAScript's alternation and
// greedy repetition choose as Python's backtracking engine does for these patterns.
std::string regex_filter(std::string_view completion, const std::regex& pattern, int select) {
  const std::string text(completion);
  std::vector<std::string> found;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), pattern);
       it != std::sregex_iterator(); ++it) {
    const std::smatch& m = *it;
    std::string chosen;
    for (size_t g = 1; g < m.size(); ++g) {
      if (m[g].matched && m[g].length() > 0) {
        chosen = m[g].str();
        break;
      }
    }
    found.push_back(chosen);
  }
  if (found.empty()) return std::string(kHarnessInvalid);
  const std::string& match = select >= 0 ? found.front() : found.back();
  const size_t b = match.find_first_not_of(" \t\n\r\f\v");
  if (b == std::string::npos) return "";
  const size_t e = match.find_last_not_of(" \t\n\r\f\v");
  return match.substr(b, e - b + 1);
}

// The harness's regexes_to_ignore, in its order, then lower case.
std::string harness_ignored(std::string_view text) {
  std::string s;
  for (const char c : text) {
    if (c != ',' && c != '$') s += c;
  }
  // "(?s).*#### ": greedy over newlines, so up to the end of the last "#### ".
  if (const size_t last = s.rfind("#### "); last != std::string::npos) s.erase(0, last + 5);
  // "\.$": Python's $ also matches just before a final newline.
  if (!s.empty() && s.back() == '.') {
    s.pop_back();
  } else if (s.size() >= 2 && s[s.size() - 1] == '\n' && s[s.size() - 2] == '.') {
    s.erase(s.size() - 2, 1);
  }
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

std::string harness_strict_match(std::string_view completion) {
  // The harness's "#### (\-?[0-9\.\,]+)" (the escapes are redundant in Python's syntax).
  static const std::regex pattern("#### (-?[0-9.,]+)");
  return regex_filter(completion, pattern, 0);
}

std::string harness_flexible_extract(std::string_view completion) {
  static const std::regex pattern("(-?[$0-9.,]{2,})|(-?[0-9]+)");
  return regex_filter(completion, pattern, -1);
}

bool harness_exact_match(std::string_view prediction, std::string_view reference) {
  return harness_ignored(prediction) == harness_ignored(reference);
}

}  // namespace zerotune
