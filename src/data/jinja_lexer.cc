#include "data/jinja_lexer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "data/jinja_text.h"

namespace zerotune::jinja {
namespace {

using Type = Token::Type;

// jinja2 splits on \r\n, \r and \n, joins with \n and drops one trailing newline
// (keep_trailing_newline=False).
std::string normalize_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

int count_newlines(std::string_view s) {
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

int hex_value(char32_t c) {
  if (c >= '0' && c <= '9') return static_cast<int>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<int>(c - 'a' + 10);
  if (c >= 'A' && c <= 'F') return static_cast<int>(c - 'A' + 10);
  return -1;
}

class Lexer {
 public:
  Lexer(std::string_view source, const std::string& origin) : origin_(origin) {
    source_ = normalize_newlines(source);
  }

  std::vector<Token> run() {
    while (pos_ < source_.size()) lex_root();
    tokens_.push_back({Type::eof, line_, "", 0, 0});
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void fail(int line, const std::string& message) const {
    throw TemplateError(origin_ + ":" + std::to_string(line) + ": " + message);
  }

  // Python's \s: one whitespace code point at `p`, returning its byte length (0 when none).
  size_t space_at(size_t p) const {
    if (p >= source_.size()) return 0;
    const auto byte = static_cast<unsigned char>(source_[p]);
    if (byte < 0x80) return text::is_space(byte) ? 1 : 0;
    size_t n = 1;
    while (p + n < source_.size() && (static_cast<unsigned char>(source_[p + n]) & 0xC0) == 0x80)
      ++n;
    const std::u32string cp = text::decode(std::string_view(source_).substr(p, n));
    return cp.size() == 1 && text::is_space(cp[0]) ? n : 0;
  }
  size_t skip_spaces(size_t p) const {
    while (size_t n = space_at(p)) p += n;
    return p;
  }
  bool at(size_t p, std::string_view s) const { return source_.compare(p, s.size(), s) == 0; }

  void emit(Type type, std::string text, int line) {
    tokens_.push_back({type, line, std::move(text), 0, 0});
  }

  // lstrip_blocks: whitespace between a line start and a block or comment tag goes.
  std::string lstrip(std::string text) const {
    const size_t newline = text.rfind('\n');
    const size_t l_pos = newline == std::string::npos ? 0 : newline + 1;
    if (l_pos == 0 && !line_starting_) return text;
    if (text.find_first_not_of(" \t", l_pos) != std::string::npos) return text;
    text.resize(l_pos);
    return text;
  }

  // The template text before a tag, after the tag's whitespace control.
  void emit_text(std::string text, char sign, bool lstrip_applies) {
    const int newlines = count_newlines(text);
    if (sign == '-') {
      text = text::strip(text, nullptr, text::StripSide::right);
    } else if (sign != '+' && lstrip_applies) {
      text = lstrip(std::move(text));
    }
    if (!text.empty()) emit(Type::data, std::move(text), line_);
    line_ += newlines;
  }

  // Length of `{% raw %}` (with its sign and whitespace control) at `p`, or 0.
  size_t raw_begin_at(size_t p) const {
    size_t q = p + 2;
    if (q < source_.size() && (source_[q] == '-' || source_[q] == '+')) ++q;
    q = skip_spaces(q);
    if (!at(q, "raw")) return 0;
    q = skip_spaces(q + 3);
    if (at(q, "-%}")) return skip_spaces(q + 3) - p;
    if (at(q, "%}")) return q + 2 - p;
    return 0;
  }

  void lex_root() {
    size_t q = pos_;
    while (true) {
      q = source_.find('{', q);
      if (q == std::string::npos || q + 1 >= source_.size()) {
        emit_text_to_end();
        return;
      }
      const char c = source_[q + 1];
      if (c == '{' || c == '%' || c == '#') break;
      ++q;
    }
    const char kind = source_[q + 1];
    const char sign = q + 2 < source_.size() && (source_[q + 2] == '-' || source_[q + 2] == '+')
                          ? source_[q + 2]
                          : 0;
    const size_t raw_length = kind == '%' ? raw_begin_at(q) : 0;
    const size_t tag_length = raw_length ? raw_length : 2 + (sign ? 1 : 0);
    emit_text(source_.substr(pos_, q - pos_), sign, kind != '{');
    const std::string tag = source_.substr(q, tag_length);
    const int tag_line = line_;
    line_ += count_newlines(tag);
    line_starting_ = tag.back() == '\n';
    pos_ = q + tag_length;
    if (raw_length) return lex_raw();
    if (kind == '#') return lex_comment();
    emit(kind == '%' ? Type::block_begin : Type::variable_begin, tag, tag_line);
    lex_tag(kind == '%');
  }

  void emit_text_to_end() {
    std::string rest = source_.substr(pos_);
    const int line = line_;
    line_ += count_newlines(rest);
    if (!rest.empty()) emit(Type::data, std::move(rest), line);
    pos_ = source_.size();
  }

  // After `{#`: up to `#}`, `-#}` (eats following whitespace), `+#}`, or `#}\n` (trim_blocks).
  void lex_comment() {
    const size_t q = source_.find("#}", pos_);
    if (q == std::string::npos) {
      if (pos_ < source_.size()) fail(line_, "Missing end of comment tag");
      return;
    }
    size_t end = q + 2;
    const char sign = q > pos_ ? source_[q - 1] : 0;
    if (sign == '-') {
      end = skip_spaces(end);
    } else if (sign != '+' && end < source_.size() && source_[end] == '\n') {
      ++end;
    }
    const std::string_view match = std::string_view(source_).substr(pos_, end - pos_);
    line_ += count_newlines(match);
    line_starting_ = !match.empty() && match.back() == '\n';
    pos_ = end;
  }

  // After `{% raw %}`: the text up to `{% endraw %}` stays as it is.
  void lex_raw() {
    size_t q = pos_;
    while ((q = source_.find("{%", q)) != std::string::npos) {
      size_t p = q + 2;
      const char sign =
          p < source_.size() && (source_[p] == '-' || source_[p] == '+') ? source_[p] : 0;
      if (sign) ++p;
      p = skip_spaces(p);
      if (at(p, "endraw")) {
        p = skip_spaces(p + 6);
        size_t end = 0;
        if (at(p, "+%}")) {
          end = p + 3;
        } else if (at(p, "-%}")) {
          end = skip_spaces(p + 3);
        } else if (at(p, "%}")) {
          end = p + 2 + (p + 2 < source_.size() && source_[p + 2] == '\n' ? 1 : 0);
        }
        if (end) {
          emit_text(source_.substr(pos_, q - pos_), sign, true);
          const std::string_view tag = std::string_view(source_).substr(q, end - q);
          line_ += count_newlines(tag);
          line_starting_ = tag.back() == '\n';
          pos_ = end;
          return;
        }
      }
      q += 2;
    }
    if (pos_ < source_.size()) fail(line_, "Missing end of raw directive");
  }

  // Inside {% %} or {{ }}: names, literals and operators up to the closing delimiter.
  void lex_tag(bool block) {
    while (pos_ < source_.size()) {
      if (balance_.empty() && lex_tag_end(block)) return;
      if (const size_t n = space_at(pos_)) {
        size_t end = skip_spaces(pos_ + n);
        const std::string_view match = std::string_view(source_).substr(pos_, end - pos_);
        line_ += count_newlines(match);
        line_starting_ = match.back() == '\n';
        pos_ = end;
        continue;
      }
      lex_tag_token();
      line_starting_ = false;
    }
  }

  bool lex_tag_end(bool block) {
    size_t end = 0;
    if (block) {
      if (at(pos_, "+%}")) {
        end = pos_ + 3;
      } else if (at(pos_, "-%}")) {
        end = skip_spaces(pos_ + 3);
      } else if (at(pos_, "%}")) {
        end = pos_ + 2 + (pos_ + 2 < source_.size() && source_[pos_ + 2] == '\n' ? 1 : 0);
      }
    } else if (at(pos_, "-}}")) {
      end = skip_spaces(pos_ + 3);
    } else if (at(pos_, "}}")) {
      end = pos_ + 2;
    }
    if (!end) return false;
    const std::string match = source_.substr(pos_, end - pos_);
    emit(block ? Type::block_end : Type::variable_end, match, line_);
    line_ += count_newlines(match);
    line_starting_ = match.back() == '\n';
    pos_ = end;
    return true;
  }

  void lex_tag_token() {
    const char c = source_[pos_];
    if (size_t n = float_length()) return emit_float(n);
    if (is_digit(c)) return emit_integer();
    if (is_name_start(c)) {
      size_t end = pos_ + 1;
      while (end < source_.size() && is_name_char(source_[end])) ++end;
      emit(Type::name, source_.substr(pos_, end - pos_), line_);
      pos_ = end;
      return;
    }
    if (c == '\'' || c == '"') {
      if (lex_string(c)) return;
    }
    lex_operator();
  }

  // digits ('_'-separated), then .digits and/or e[+-]digits; not right after a '.'.
  size_t digits_length(size_t p) const {
    size_t q = p;
    while (q < source_.size() && is_digit(source_[q])) {
      ++q;
      if (q + 1 < source_.size() && source_[q] == '_' && is_digit(source_[q + 1])) ++q;
    }
    return q - p;
  }
  size_t float_length() const {
    if (pos_ > 0 && source_[pos_ - 1] == '.') return 0;
    const size_t int_part = digits_length(pos_);
    if (!int_part) return 0;
    size_t q = pos_ + int_part;
    bool fraction = false;
    if (q < source_.size() && source_[q] == '.') {
      if (const size_t n = digits_length(q + 1)) q += 1 + n, fraction = true;
    }
    if (q < source_.size() && (source_[q] == 'e' || source_[q] == 'E')) {
      size_t e = q + 1;
      if (e < source_.size() && (source_[e] == '+' || source_[e] == '-')) ++e;
      if (const size_t n = digits_length(e)) return e + n - pos_;
    }
    return fraction ? q - pos_ : 0;
  }
  void emit_float(size_t n) {
    std::string spelled;
    for (char ch : source_.substr(pos_, n)) {
      if (ch != '_') spelled += ch;
    }
    Token token{Type::floating, line_, source_.substr(pos_, n), 0,
                std::strtod(spelled.c_str(), nullptr)};
    tokens_.push_back(std::move(token));
    pos_ += n;
  }

  // (_?digit)+ in `base` from `p`, appending the digits; returns where it stopped.
  size_t take_digits(size_t p, int base, std::string& digits) const {
    while (true) {
      size_t q = p;
      if (q < source_.size() && source_[q] == '_') ++q;
      if (q >= source_.size()) break;
      const int v = hex_value(static_cast<unsigned char>(source_[q]));
      if (v < 0 || v >= base) break;
      digits += source_[q];
      p = q + 1;
    }
    return p;
  }

  // jinja2's integer_re: 0b.., 0o.., 0x.., [1-9](_?\d)*, 0(_?0)*.
  void emit_integer() {
    std::string digits;
    int base = 10;
    size_t end = pos_;
    if (source_[pos_] == '0' && pos_ + 1 < source_.size()) {
      const char prefix = static_cast<char>(source_[pos_ + 1] | 0x20);
      base = prefix == 'b' ? 2 : prefix == 'o' ? 8 : prefix == 'x' ? 16 : 10;
      if (base != 10) end = take_digits(pos_ + 2, base, digits);
      if (digits.empty()) base = 10;
    }
    if (base == 10) {
      digits = source_.substr(pos_, 1);
      if (source_[pos_] == '0') {
        std::string zeros;
        end = take_digits(pos_ + 1, 1, zeros);  // base 1 admits only '0'
      } else {
        end = take_digits(pos_ + 1, 10, digits);
      }
    }
    errno = 0;
    const long long value = std::strtoll(digits.c_str(), nullptr, base);
    if (errno == ERANGE) fail(line_, "integer literal " + digits + " does not fit 64 bits");
    tokens_.push_back({Type::integer, line_, source_.substr(pos_, end - pos_), value, 0});
    pos_ = end;
  }

  bool lex_string(char quote) {
    size_t q = pos_ + 1;
    while (q < source_.size() && source_[q] != quote) {
      q += source_[q] == '\\' ? 2 : 1;
    }
    if (q >= source_.size()) return false;  // unterminated: reported as an unexpected char
    const std::string raw = source_.substr(pos_ + 1, q - pos_ - 1);
    emit(Type::string, unescape(raw), line_);
    line_ += count_newlines(raw);
    pos_ = q + 1;
    return true;
  }

  // Python's "unicode-escape" decoding, which jinja2 applies to string literals.
  std::string unescape(const std::string& raw) const {
    const std::u32string cps = text::decode(raw);
    std::string out;
    for (size_t i = 0; i < cps.size(); ++i) {
      if (cps[i] != '\\' || i + 1 >= cps.size()) {
        text::append_utf8(out, cps[i]);
        continue;
      }
      const char32_t d = cps[++i];
      switch (d) {
        case '\n':
          break;
        case '\\':
          out += '\\';
          break;
        case '\'':
          out += '\'';
          break;
        case '"':
          out += '"';
          break;
        case 'a':
          out += '\a';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'v':
          out += '\v';
          break;
        case 'x':
          text::append_utf8(out, hex_escape(cps, i, 2, "truncated \\xXX escape"));
          break;
        case 'u':
          text::append_utf8(out, hex_escape(cps, i, 4, "truncated \\uXXXX escape"));
          break;
        case 'U':
          text::append_utf8(out, hex_escape(cps, i, 8, "truncated \\UXXXXXXXX escape"));
          break;
        case 'N':
          fail(line_, "\\N{...} escapes are not supported");
        default:
          if (d >= '0' && d <= '7') {
            char32_t value = d - '0';
            for (int k = 0; k < 2 && i + 1 < cps.size() && cps[i + 1] >= '0' && cps[i + 1] <= '7';
                 ++k) {
              value = value * 8 + (cps[++i] - '0');
            }
            text::append_utf8(out, value);
          } else if (d >= 0x80) {
            // Python first turns a non-ASCII character into its \x / \u / \U escape, so after a
            // backslash it decodes as a literal backslash followed by that escape's letters.
            char buf[16];
            std::snprintf(buf, sizeof(buf),
                          d < 0x100     ? "\\x%02x"
                          : d < 0x10000 ? "\\u%04x"
                                        : "\\U%08x",
                          static_cast<unsigned>(d));
            out += buf;
          } else {
            out += '\\';
            text::append_utf8(out, d);
          }
      }
    }
    return out;
  }

  char32_t hex_escape(const std::u32string& cps, size_t& i, int digits, const char* error) const {
    char32_t value = 0;
    for (int k = 0; k < digits; ++k) {
      if (i + 1 >= cps.size() || hex_value(cps[i + 1]) < 0) fail(line_, error);
      value = value * 16 + hex_value(cps[++i]);
    }
    if (value > 0x10FFFF) fail(line_, "illegal Unicode character");
    if (value >= 0xD800 && value <= 0xDFFF)
      fail(line_, "a lone surrogate cannot be rendered as UTF-8");
    return value;
  }

  void lex_operator() {
    static const char* const kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
    for (const char* op : kTwo) {
      if (at(pos_, op)) {
        emit(Type::op, op, line_);
        pos_ += 2;
        return;
      }
    }
    const char c = source_[pos_];
    if (std::string_view("+-/*%~[](){}><=.:|,;").find(c) == std::string_view::npos) {
      const std::u32string cp = text::decode(std::string_view(source_).substr(pos_, 4));
      std::string shown;
      text::append_utf8(shown, cp.empty() ? c : cp[0]);
      fail(line_, "unexpected char " + text::string_repr(shown) + " at " +
                      std::to_string(text::length(std::string_view(source_).substr(0, pos_))));
    }
    if (c == '{' || c == '(' || c == '[') balance_.push_back(c == '{' ? '}' : c == '(' ? ')' : ']');
    if (c == '}' || c == ')' || c == ']') {
      if (balance_.empty()) fail(line_, std::string("unexpected '") + c + "'");
      const char expected = balance_.back();
      balance_.pop_back();
      if (expected != c) {
        fail(line_, std::string("unexpected '") + c + "', expected '" + expected + "'");
      }
    }
    emit(Type::op, std::string(1, c), line_);
    ++pos_;
  }

  const std::string& origin_;
  std::string source_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<char> balance_;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, const std::string& origin,
                            const Limits& limits) {
  if (static_cast<int64_t>(source.size()) > limits.max_source_bytes) {
    throw TemplateError(origin + ": template of " + std::to_string(source.size()) +
                        " bytes is over the limit of " + std::to_string(limits.max_source_bytes));
  }
  std::u32string code_points;
  if (!text::decode(source, code_points)) {
    throw TemplateError(origin + ": template is not valid UTF-8");
  }
  return Lexer(source, origin).run();
}

}  // namespace zerotune::jinja
