// Python's text semantics for the Jinja interpreter: strings are UTF-8 bytes here but Python
// indexes, strips, splits and prints them by code point, with its own whitespace, line-break and
// number-printing rules. Case mapping covers Latin, Greek, Cyrillic, Armenian and fullwidth Latin
// (what chat templates meet); other scripts have no case and pass through unchanged.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/text.h"

namespace zerotune::jinja::text {

// Code points of valid UTF-8 (the template source and every string value are checked on the way
// in); false when `s` is not valid UTF-8.
bool decode(std::string_view s, std::u32string& out);
std::u32string decode(std::string_view s);  // assumes valid UTF-8
std::string encode(std::u32string_view code_points);
using ::zerotune::append_utf8;  // core/text.h
int64_t length(std::string_view s);  // in code points

bool is_space(char32_t c);       // str.isspace()
bool is_line_break(char32_t c);  // a boundary of str.splitlines()
bool is_printable(char32_t c);   // str.isprintable(), for repr()
bool is_alpha(char32_t c);
bool is_digit(char32_t c);
bool is_cased_upper(char32_t c);
bool is_cased_lower(char32_t c);

std::string upper(std::string_view s);       // str.upper()
std::string lower(std::string_view s);       // str.lower()
std::string title(std::string_view s);       // str.title()
std::string capitalize(std::string_view s);  // str.capitalize()
std::string swapcase(std::string_view s);

// str.strip(chars) / lstrip / rstrip: `chars` null strips whitespace.
enum class StripSide { both, left, right };
std::string strip(std::string_view s, const std::string* chars, StripSide side);
// str.split(sep, maxsplit): null `sep` splits on runs of whitespace and drops empty parts.
std::vector<std::string> split(std::string_view s, const std::string* sep, int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::string* sep, int64_t maxsplit);
std::vector<std::string> splitlines(std::string_view s, bool keepends);
// str.replace(old, new, count); count < 0 replaces all.
std::string replace(std::string_view s, std::string_view old_part, std::string_view new_part,
                    int64_t count);

// repr(float) and str(float): the shortest text that reads back to the same double, in fixed
// notation for exponents -4 ... 15 and with "e+XX" otherwise ("1e+16", "1e-05", "0.1", "2.0").
std::string float_repr(double value);
// repr(str): quotes chosen as Python chooses them, non-printable characters escaped.
std::string string_repr(std::string_view s);

}  // namespace zerotune::jinja::text
