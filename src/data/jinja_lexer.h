// Template source to tokens, as jinja2's lexer splits it with trim_blocks and lstrip_blocks on:
// newlines normalised to \n and one trailing newline dropped, `{%- -%}` whitespace control,
// `+%}` / `{%+` opt-outs, {% raw %} and comments, Python string-literal escapes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/jinja.h"

namespace zerotune::jinja {

struct Token {
  enum class Type : uint8_t {
    data,
    block_begin,
    block_end,
    variable_begin,
    variable_end,
    name,
    string,
    integer,
    floating,
    op,
    eof
  };
  Type type;
  int line;
  std::string text;  // template text, a name, a decoded string literal or an operator's spelling
  int64_t integer = 0;
  double floating = 0;
};

// Throws TemplateError("origin:line: ...") on malformed source.
std::vector<Token> tokenize(std::string_view source, const std::string& origin,
                            const Limits& limits);

}  // namespace zerotune::jinja
