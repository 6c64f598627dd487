#include "eval/gsm8k_score.h"

#include <algorithm>
#include <cctype>
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

bool in_strict_class(char c) {
  return is_digit(c) || c == '.' || c == ',';
}

bool in_flexible_class(char c) {
  return in_strict_class(c) || c == '$';
}

// The length of "-?C{min_run,}" matched at `pos` (C the class, greedy; the sign is dropped when
// the run after it is too short, as a backtracking engine does), or 0 where it does not match.
size_t signed_run_at(std::string_view s, size_t pos, bool (*in_class)(char), size_t min_run) {
  const auto run_from = [&](size_t from) {
    size_t end = from;
    while (end < s.size() && in_class(s[end])) ++end;
    return end - from;
  };
  if (pos < s.size() && s[pos] == '-') {
    if (const size_t run = run_from(pos + 1); run >= min_run) return run + 1;
  }
  const size_t run = run_from(pos);
  return run >= min_run ? run : 0;
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

// The harness's regex filters are Python's re.findall, then the first or the last match; their
// patterns are simple enough to scan for directly. Every class character is ASCII, so stepping
// over UTF-8 byte by byte finds the same matches as Python's code-point scan.
std::string harness_strict_match(std::string_view completion) {
  // "#### (\-?[0-9\.\,]+)", the first match: the first "#### " followed by a number.
  const std::string_view marker = "#### ";
  for (size_t at = completion.find(marker); at != std::string_view::npos;
       at = completion.find(marker, at + 1)) {
    const size_t number = at + marker.size();
    if (const size_t n = signed_run_at(completion, number, in_strict_class, 1); n > 0) {
      return std::string(completion.substr(number, n));
    }
  }
  return std::string(kHarnessInvalid);
}

std::string harness_flexible_extract(std::string_view completion) {
  // "(-?[$0-9.,]{2,})|(-?[0-9]+)", the last of the non-overlapping matches.
  std::string_view last;
  size_t pos = 0;
  while (pos < completion.size()) {
    size_t n = signed_run_at(completion, pos, in_flexible_class, 2);
    if (n == 0) n = signed_run_at(completion, pos, is_digit, 1);
    if (n == 0) {
      ++pos;
      continue;
    }
    last = completion.substr(pos, n);
    pos += n;
  }
  return last.empty() ? std::string(kHarnessInvalid) : std::string(last);
}

bool harness_exact_match(std::string_view prediction, std::string_view reference) {
  return harness_ignored(prediction) == harness_ignored(reference);
}

}  // namespace zerotune
