#include "data/jinja_text.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace zerotune::jinja::text {
namespace {

// Simple (one code point) case pairs: [first, last] upper-case range, `step` between members
// (1 for contiguous ranges, 2 for alternating upper/lower pairs) and the offset to the lower case.
struct CaseRange {
  char32_t first, last;
  int step;
  int offset;
};

constexpr CaseRange kCaseRanges[] = {
    {0x41, 0x5A, 1, 32},   {0xC0, 0xD6, 1, 32},    {0xD8, 0xDE, 1, 32},    {0x100, 0x12E, 2, 1},
    {0x132, 0x136, 2, 1},  {0x139, 0x147, 2, 1},   {0x14A, 0x176, 2, 1},   {0x179, 0x17D, 2, 1},
    {0x386, 0x386, 1, 38}, {0x388, 0x38A, 1, 37},  {0x38C, 0x38C, 1, 64},  {0x38E, 0x38F, 1, 63},
    {0x391, 0x3A1, 1, 32}, {0x3A3, 0x3AB, 1, 32},  {0x400, 0x40F, 1, 80},  {0x410, 0x42F, 1, 32},
    {0x460, 0x480, 2, 1},  {0x48A, 0x4BE, 2, 1},   {0x4C1, 0x4CD, 2, 1},   {0x4D0, 0x52E, 2, 1},
    {0x531, 0x556, 1, 48}, {0x1E00, 0x1E94, 2, 1}, {0x1EA0, 0x1EFE, 2, 1}, {0xFF21, 0xFF3A, 1, 32},
};

char32_t simple_lower(char32_t c) {
  if (c == 0x178) return 0xFF;   // Ÿ
  if (c == 0x4C0) return 0x4CF;  // Ӏ
  for (const CaseRange& r : kCaseRanges) {
    if (c >= r.first && c <= r.last && (c - r.first) % r.step == 0) {
      return c + r.offset;
    }
  }
  return c;
}

char32_t simple_upper(char32_t c) {
  switch (c) {
    case 0xFF:
      return 0x178;
    case 0x4CF:
      return 0x4C0;
    case 0xB5:
      return 0x39C;  // µ -> Greek capital mu, as Python maps it
    case 0x131:
      return 0x49;  // dotless i
    case 0x17F:
      return 0x53;  // long s
    case 0x3C2:
      return 0x3A3;  // final sigma
    default:
      break;
  }
  for (const CaseRange& r : kCaseRanges) {
    const char32_t upper = c - r.offset;
    if (c >= r.first + r.offset && upper <= r.last && (upper - r.first) % r.step == 0) {
      return upper;
    }
  }
  return c;
}

// Full upper-case mappings that produce more than one code point.
void append_upper(std::u32string& out, char32_t c) {
  if (c == 0xDF) {  // ß
    out += U"SS";
  } else {
    out += simple_upper(c);
  }
}

void append_lower(std::u32string& out, char32_t c) {
  if (c == 0x130) {  // İ: i + combining dot above
    out += U"i\u0307";
  } else {
    out += simple_lower(c);
  }
}

bool is_cased(char32_t c) {
  return simple_lower(c) != c || simple_upper(c) != c || c == 0xDF;
}

bool in_set(char32_t c, const std::u32string* set) {
  return set ? set->find(c) != std::u32string::npos : is_space(c);
}

}  // namespace

bool decode(std::string_view s, std::u32string& out) {
  out.clear();
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto byte = static_cast<unsigned char>(s[i]);
    int extra = 0;
    char32_t cp = 0;
    if (byte < 0x80) {
      cp = byte;
    } else if (byte >= 0xC2 && byte <= 0xDF) {
      extra = 1, cp = byte & 0x1F;
    } else if (byte >= 0xE0 && byte <= 0xEF) {
      extra = 2, cp = byte & 0x0F;
    } else if (byte >= 0xF0 && byte <= 0xF4) {
      extra = 3, cp = byte & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size() && extra > 0) return false;  // truncated sequence
    for (int k = 1; k <= extra; ++k) {
      const auto next = static_cast<unsigned char>(s[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (next & 0x3F);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8.
    if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    out += cp;
    i += extra + 1;
  }
  return true;
}

std::u32string decode(std::string_view s) {
  std::u32string out;
  if (!decode(s, out)) {
    // Not reachable for checked input; keep the bytes visible rather than dropping them.
    out.clear();
    for (char c : s) out += static_cast<unsigned char>(c);
  }
  return out;
}

std::string encode(std::u32string_view code_points) {
  std::string out;
  out.reserve(code_points.size());
  for (char32_t c : code_points) append_utf8(out, c);
  return out;
}

int64_t length(std::string_view s) {
  int64_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

bool is_line_break(char32_t c) {
  return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) ||
         c == 0x85 || c == 0x2028 || c == 0x2029;
}

bool is_printable(char32_t c) {
  if (c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD) return false;
  if (c == 0x1680 || (c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F)) return false;
  if ((c >= 0x205F && c <= 0x2064) || (c >= 0x2066 && c <= 0x206F) || c == 0x3000) return false;
  if (c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB) || (c >= 0xE000 && c <= 0xF8FF)) return false;
  return c <= 0x10FFFF;
}

bool is_alpha(char32_t c) {
  if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
  return is_cased(c) || c == 0xAA || c == 0xBA || (c >= 0x3040 && c <= 0x30FF) ||
         (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xAC00 && c <= 0xD7A3);
}

bool is_digit(char32_t c) {
  return c >= '0' && c <= '9';
}
bool is_cased_upper(char32_t c) {
  return simple_lower(c) != c;
}
bool is_cased_lower(char32_t c) {
  return simple_upper(c) != c || c == 0xDF;
}

std::string upper(std::string_view s) {
  std::u32string out;
  for (char32_t c : decode(s)) append_upper(out, c);
  return encode(out);
}

std::string lower(std::string_view s) {
  std::u32string out;
  for (char32_t c : decode(s)) append_lower(out, c);
  return encode(out);
}

std::string swapcase(std::string_view s) {
  std::u32string out;
  for (char32_t c : decode(s)) {
    if (is_cased_upper(c)) {
      append_lower(out, c);
    } else {
      append_upper(out, c);
    }
  }
  return encode(out);
}

// Python's title(): a cased character after an uncased one starts a word (upper), every other
// cased character is lowered.
std::string title(std::string_view s) {
  std::u32string out;
  bool previous_cased = false;
  for (char32_t c : decode(s)) {
    if (previous_cased) {
      append_lower(out, c);
    } else {
      append_upper(out, c);
    }
    previous_cased = is_cased(c);
  }
  return encode(out);
}

std::string capitalize(std::string_view s) {
  std::u32string out;
  bool first = true;
  for (char32_t c : decode(s)) {
    if (first) {
      append_upper(out, c);
    } else {
      append_lower(out, c);
    }
    first = false;
  }
  return encode(out);
}

std::string strip(std::string_view s, const std::string* chars, StripSide side) {
  const std::u32string cps = decode(s);
  std::u32string set;
  if (chars) set = decode(*chars);
  const std::u32string* set_ptr = chars ? &set : nullptr;
  size_t begin = 0, end = cps.size();
  if (side != StripSide::right) {
    while (begin < end && in_set(cps[begin], set_ptr)) ++begin;
  }
  if (side != StripSide::left) {
    while (end > begin && in_set(cps[end - 1], set_ptr)) --end;
  }
  return encode(std::u32string_view(cps).substr(begin, end - begin));
}

std::vector<std::string> split(std::string_view s, const std::string* sep, int64_t maxsplit) {
  std::vector<std::string> parts;
  if (sep) {
    size_t start = 0;
    while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
      const size_t at = s.find(*sep, start);
      if (at == std::string_view::npos) break;
      parts.emplace_back(s.substr(start, at - start));
      start = at + sep->size();
    }
    parts.emplace_back(s.substr(start));
    return parts;
  }
  const std::u32string cps = decode(s);
  size_t i = 0;
  while (true) {
    while (i < cps.size() && is_space(cps[i])) ++i;
    if (i == cps.size()) break;
    if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
      // The remainder is kept whole, trailing whitespace included, as Python does.
      parts.push_back(encode(std::u32string_view(cps).substr(i)));
      break;
    }
    const size_t start = i;
    while (i < cps.size() && !is_space(cps[i])) ++i;
    parts.push_back(encode(std::u32string_view(cps).substr(start, i - start)));
  }
  return parts;
}

std::vector<std::string> rsplit(std::string_view s, const std::string* sep, int64_t maxsplit) {
  if (maxsplit < 0) return split(s, sep, maxsplit);
  std::vector<std::string> parts;
  if (sep) {
    size_t end = s.size();
    while (static_cast<int64_t>(parts.size()) < maxsplit) {
      if (end < sep->size()) break;
      const size_t at = s.rfind(*sep, end - sep->size());
      if (at == std::string_view::npos) break;
      parts.emplace_back(s.substr(at + sep->size(), end - at - sep->size()));
      end = at;
    }
    parts.emplace_back(s.substr(0, end));
  } else {
    const std::u32string cps = decode(s);
    size_t i = cps.size();
    while (true) {
      while (i > 0 && is_space(cps[i - 1])) --i;
      if (i == 0) break;
      if (static_cast<int64_t>(parts.size()) == maxsplit) {
        parts.push_back(encode(std::u32string_view(cps).substr(0, i)));
        break;
      }
      const size_t end = i;
      while (i > 0 && !is_space(cps[i - 1])) --i;
      parts.push_back(encode(std::u32string_view(cps).substr(i, end - i)));
    }
  }
  return {parts.rbegin(), parts.rend()};
}

std::vector<std::string> splitlines(std::string_view s, bool keepends) {
  const std::u32string cps = decode(s);
  std::vector<std::string> lines;
  size_t start = 0, i = 0;
  while (i < cps.size()) {
    if (!is_line_break(cps[i])) {
      ++i;
      continue;
    }
    size_t end_of_break = i + 1;
    if (cps[i] == '\r' && i + 1 < cps.size() && cps[i + 1] == '\n') end_of_break = i + 2;
    const size_t stop = keepends ? end_of_break : i;
    lines.push_back(encode(std::u32string_view(cps).substr(start, stop - start)));
    start = i = end_of_break;
  }
  if (start < cps.size()) lines.push_back(encode(std::u32string_view(cps).substr(start)));
  return lines;
}

std::string replace(std::string_view s, std::string_view old_part, std::string_view new_part,
                    int64_t count) {
  std::string out;
  if (old_part.empty()) {
    // Python inserts `new` before every code point and at the end.
    const std::u32string cps = decode(s);
    int64_t done = 0;
    for (char32_t c : cps) {
      if (count < 0 || done < count) out += new_part, ++done;
      append_utf8(out, c);
    }
    if (count < 0 || done < count) out += new_part;
    return out;
  }
  size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    const size_t at = s.find(old_part, start);
    if (at == std::string_view::npos) break;
    out.append(s.substr(start, at - start));
    out.append(new_part);
    start = at + old_part.size();
    ++done;
  }
  out.append(s.substr(start));
  return out;
}

std::string float_repr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buf[64];
  const auto result = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  const std::string sci(buf, result.ptr);
  // sci is [-]d[.ddd]e(+|-)XX: split into sign, digits and the decimal exponent.
  const size_t e_pos = sci.find('e');
  std::string mantissa = sci.substr(0, e_pos);
  const int exponent = std::atoi(sci.c_str() + e_pos + 1);
  std::string sign;
  if (mantissa[0] == '-') sign = "-", mantissa.erase(0, 1);
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits += c;
  }
  const int decpt = exponent + 1;  // value = 0.digits * 10^decpt
  std::string out = sign;
  if (decpt <= -4 || decpt > 16) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char exp_buf[16];
    std::snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", exponent < 0 ? '-' : '+',
                  std::abs(exponent));
    return out + exp_buf;
  }
  if (decpt <= 0) {
    return out + "0." + std::string(-decpt, '0') + digits;
  }
  if (static_cast<size_t>(decpt) >= digits.size()) {
    return out + digits + std::string(decpt - digits.size(), '0') + ".0";
  }
  return out + digits.substr(0, decpt) + "." + digits.substr(decpt);
}

std::string string_repr(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : decode(s)) {
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (!is_printable(c)) {
      char buf[16];
      if (c < 0x100) {
        std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(c));
      } else if (c < 0x10000) {
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
      } else {
        std::snprintf(buf, sizeof(buf), "\\U%08x", static_cast<unsigned>(c));
      }
      out += buf;
    } else {
      append_utf8(out, c);
    }
  }
  out += quote;
  return out;
}

}  // namespace zerotune::jinja::text
