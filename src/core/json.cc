#include "core/json.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <system_error>

#include "core/check.h"
#include "core/text.h"

namespace zerotune::json {

namespace {

// Length of the valid UTF-8 sequence starting at s[0], or 0 when it is invalid (overlong forms,
// UTF-16 surrogates and code points above U+10FFFF included, per RFC 3629).
size_t utf8_sequence_length(std::string_view s) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  size_t length;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() < length) return 0;
  if (byte(1) < lo || byte(1) > hi) return 0;
  for (size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return length;
}

std::string describe_byte(unsigned char c) {
  if (c >= 0x20 && c < 0x7F) return str("'", static_cast<char>(c), "'");
  static const char* hex = "0123456789ABCDEF";
  return str("byte 0x", hex[c >> 4], hex[c & 0xF]);
}

void append_quoted(std::string& out, std::string_view s) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t length = utf8_sequence_length(s.substr(i));
      ZT_CHECK(length > 0, "json: string is not valid UTF-8 (", describe_byte(c), " at byte ", i,
               ")");
      out.append(s.substr(i, length));
      i += length;
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xF];
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
}

void append_double(std::string& out, double value) {
  ZT_CHECK(std::isfinite(value), "json: cannot write ", value, ": JSON has no NaN or infinity");
  char buffer[32];
  // Shortest text that reads back to the same double; integral values come out without ".0".
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, result.ptr);
}

void append_newline(std::string& out, int indent, int depth) {
  out += '\n';
  out.append(static_cast<size_t>(indent) * static_cast<size_t>(depth), ' ');
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Value

Value::Object::Object(const Object& other)
    : members(other.members),
      index(other.index ? std::make_unique<Index>(*other.index) : nullptr) {}

Value::Object& Value::Object::operator=(const Object& other) {
  if (this != &other) *this = Object(other);
  return *this;
}

Value Value::object() {
  Value value;
  value.data_.emplace<Object>();
  return value;
}

Value Value::array() {
  Value value;
  value.data_.emplace<std::vector<Value>>();
  return value;
}

void Value::fail_unrepresentable(std::string_view type_name) {
  fail(str("json: ", type_name, " cannot be stored as a JSON integer"));
}

const char* Value::kind_name(Kind kind) {
  switch (kind) {
    case Kind::null:
      return "null";
    case Kind::boolean:
      return "boolean";
    case Kind::number:
      return "number";
    case Kind::string:
      return "string";
    case Kind::array:
      return "array";
    case Kind::object:
      return "object";
  }
  return "?";
}

void Value::fail_kind(std::string_view what, const char* expected) const {
  fail(str(what, " must be ", expected, ", got ", kind_name(kind())));
}

bool Value::is_int64() const {
  const Number* number = std::get_if<Number>(&data_);
  return number != nullptr && number->is_int;
}

const Value* Value::find(std::string_view key) const {
  const Object* object = std::get_if<Object>(&data_);
  if (object == nullptr) return nullptr;
  if (object->index) {
    const auto it = object->index->find(key);
    return it == object->index->end() ? nullptr : &object->members[it->second].second;
  }
  for (const Member& member : object->members) {
    if (member.first == key) return &member.second;
  }
  return nullptr;
}

const std::vector<Value>& Value::items() const {
  const auto* array = std::get_if<std::vector<Value>>(&data_);
  ZT_CHECK(array != nullptr, "json: items() needs an array, got ", kind_name(kind()));
  return *array;
}

const std::vector<Value::Member>& Value::members() const {
  const Object* object = std::get_if<Object>(&data_);
  ZT_CHECK(object != nullptr, "json: members() needs an object, got ", kind_name(kind()));
  return object->members;
}

int64_t Value::as_int64(std::string_view what) const {
  const Number* number = std::get_if<Number>(&data_);
  if (number == nullptr) fail_kind(what, "an integer");
  if (number->is_int) return number->int_value;
  // Integral doubles are exact only up to 2^53; beyond that the literal's digits were lost.
  constexpr double kExactLimit = 9007199254740992.0;
  const double d = number->double_value;
  if (std::trunc(d) == d && std::fabs(d) <= kExactLimit) return static_cast<int64_t>(d);
  std::string text;
  append_double(text, d);
  fail(str(what, " must be an integer, got ", text));
}

double Value::as_double(std::string_view what) const {
  const Number* number = std::get_if<Number>(&data_);
  if (number == nullptr) fail_kind(what, "a number");
  return number->double_value;
}

bool Value::as_bool(std::string_view what) const {
  const bool* value = std::get_if<bool>(&data_);
  if (value == nullptr) fail_kind(what, "a boolean");
  return *value;
}

const std::string& Value::as_string(std::string_view what) const {
  const std::string* value = std::get_if<std::string>(&data_);
  if (value == nullptr) fail_kind(what, "a string");
  return *value;
}

const std::vector<Value>& Value::as_array(std::string_view what) const {
  const auto* array = std::get_if<std::vector<Value>>(&data_);
  if (array == nullptr) fail_kind(what, "an array");
  return *array;
}

const std::vector<Value::Member>& Value::as_object(std::string_view what) const {
  const Object* object = std::get_if<Object>(&data_);
  if (object == nullptr) fail_kind(what, "an object");
  return object->members;
}

Value& Value::set(std::string key, Value value) {
  Object* object = std::get_if<Object>(&data_);
  ZT_CHECK(object != nullptr, "json: set(", quote(key), ") needs an object, got ",
           kind_name(kind()));
  std::vector<Member>& members = object->members;
  if (object->index) {
    const auto it = object->index->find(std::string_view(key));
    if (it != object->index->end()) {
      members[it->second].second = std::move(value);
      return members[it->second].second;
    }
    object->index->emplace(key, members.size());
  } else {
    for (Member& member : members) {
      if (member.first == key) {
        member.second = std::move(value);
        return member.second;
      }
    }
  }
  members.emplace_back(std::move(key), std::move(value));
  if (!object->index && members.size() >= kIndexThreshold) {
    object->index = std::make_unique<Index>();
    object->index->reserve(members.size() * 2);
    for (size_t i = 0; i < members.size(); ++i) object->index->emplace(members[i].first, i);
  }
  return members.back().second;
}

void Value::push_back(Value value) {
  auto* array = std::get_if<std::vector<Value>>(&data_);
  ZT_CHECK(array != nullptr, "json: push_back needs an array, got ", kind_name(kind()));
  array->push_back(std::move(value));
}

size_t Value::size() const {
  if (const Object* object = std::get_if<Object>(&data_)) return object->members.size();
  if (const auto* array = std::get_if<std::vector<Value>>(&data_)) return array->size();
  return 0;
}

std::string Value::dump(int indent) const {
  std::string out;
  dump_to(out, indent, 0);
  return out;
}

void Value::dump_to(std::string& out, int indent, int depth) const {
  switch (kind()) {
    case Kind::null:
      out += "null";
      return;
    case Kind::boolean:
      out += std::get<bool>(data_) ? "true" : "false";
      return;
    case Kind::number: {
      const Number& number = std::get<Number>(data_);
      if (number.is_int) {
        out += std::to_string(number.int_value);
      } else {
        append_double(out, number.double_value);
      }
      return;
    }
    case Kind::string:
      append_quoted(out, std::get<std::string>(data_));
      return;
    case Kind::array: {
      const std::vector<Value>& items = std::get<std::vector<Value>>(data_);
      out += '[';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += ',';
        if (indent >= 0) append_newline(out, indent, depth + 1);
        items[i].dump_to(out, indent, depth + 1);
      }
      if (indent >= 0 && !items.empty()) append_newline(out, indent, depth);
      out += ']';
      return;
    }
    case Kind::object: {
      const std::vector<Member>& members = std::get<Object>(data_).members;
      out += '{';
      for (size_t i = 0; i < members.size(); ++i) {
        if (i) out += ',';
        if (indent >= 0) append_newline(out, indent, depth + 1);
        append_quoted(out, members[i].first);
        out += indent >= 0 ? ": " : ":";
        members[i].second.dump_to(out, indent, depth + 1);
      }
      if (indent >= 0 && !members.empty()) append_newline(out, indent, depth);
      out += '}';
      return;
    }
  }
}

std::string quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  append_quoted(out, s);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parser: recursive descent over the whole text; positions become line:column only on error.

class Parser {
 public:
  Parser(std::string_view text, std::string_view source, int64_t first_line = 1)
      : text_(text), source_(source), first_line_(first_line) {}

  Value parse_document() {
    if (text_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
    skip_whitespace();
    Value value = parse_value(0);
    skip_whitespace();
    if (pos_ < text_.size()) fail_expected("end of input after the top-level value");
    return value;
  }

 private:
  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return text_[pos_]; }

  [[noreturn]] void fail_at(size_t pos, const std::string& message) const {
    int64_t line = first_line_, column = 1;
    for (size_t i = 0; i < pos && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    fail(str(source_, ":", line, ":", column, ": ", message));
  }

  std::string describe_current() const {
    if (at_end()) return "end of input";
    return describe_byte(static_cast<unsigned char>(peek()));
  }

  [[noreturn]] void fail_expected(std::string_view expected) const {
    fail_at(pos_, str("expected ", expected, ", got ", describe_current()));
  }

  void skip_whitespace() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
      ++pos_;
    }
  }

  Value parse_value(int depth) {
    if (at_end()) fail_expected("a value");
    switch (peek()) {
      case '{':
        return parse_object(depth + 1);
      case '[':
        return parse_array(depth + 1);
      case '"':
        return Value(parse_string());
      case 't':
        return parse_literal("true", Value(true));
      case 'f':
        return parse_literal("false", Value(false));
      case 'n':
        return parse_literal("null", Value());
      default:
        break;
    }
    const char c = peek();
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
    if (c == 'N' || c == 'I' || c == '+') {
      fail_at(pos_, str("expected a value, got ", describe_current(),
                        " (NaN, Infinity and '+' are not valid JSON)"));
    }
    if (c == '\'') fail_expected("a value ('\"' for strings: single quotes are not valid JSON)");
    fail_expected("a value");
  }

  Value parse_literal(std::string_view word, Value value) {
    if (text_.substr(pos_, word.size()) != word) {
      fail_at(pos_, str("invalid literal, expected '", word, "'"));
    }
    pos_ += word.size();
    return value;
  }

  void enter(int depth) const {
    if (depth > kMaxDepth) fail_at(pos_, str("nesting deeper than ", kMaxDepth, " levels"));
  }

  Value parse_array(int depth) {
    enter(depth);
    ++pos_;  // '['
    Value array = Value::array();
    skip_whitespace();
    if (!at_end() && peek() == ']') {
      ++pos_;
      return array;
    }
    while (true) {
      skip_whitespace();
      array.push_back(parse_value(depth));
      skip_whitespace();
      if (!at_end() && peek() == ',') {
        ++pos_;
        continue;
      }
      if (!at_end() && peek() == ']') {
        ++pos_;
        return array;
      }
      fail_expected("',' or ']' after array element");
    }
  }

  Value parse_object(int depth) {
    enter(depth);
    ++pos_;  // '{'
    Value object = Value::object();
    skip_whitespace();
    if (!at_end() && peek() == '}') {
      ++pos_;
      return object;
    }
    while (true) {
      skip_whitespace();
      if (at_end() || peek() != '"') fail_expected("'\"' to start an object key");
      std::string key = parse_string();
      skip_whitespace();
      if (at_end() || peek() != ':') fail_expected("':' after object key");
      ++pos_;
      skip_whitespace();
      object.set(std::move(key), parse_value(depth));
      skip_whitespace();
      if (!at_end() && peek() == ',') {
        ++pos_;
        continue;
      }
      if (!at_end() && peek() == '}') {
        ++pos_;
        return object;
      }
      fail_expected("',' or '}' after object member");
    }
  }

  std::string parse_string() {
    const size_t start = pos_;
    ++pos_;  // opening quote
    std::string out;
    while (true) {
      // Copy the run of ordinary ASCII bytes in one go; most strings are nothing else.
      const size_t run_start = pos_;
      while (pos_ < text_.size()) {
        const unsigned char c = static_cast<unsigned char>(text_[pos_]);
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
        ++pos_;
      }
      out.append(text_.substr(run_start, pos_ - run_start));
      if (at_end()) fail_at(start, "unterminated string");
      const unsigned char c = static_cast<unsigned char>(peek());
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c == '\\') {
        parse_escape(out);
      } else if (c < 0x20) {
        fail_at(pos_, str("unescaped control character ", describe_byte(c),
                          " in string (write it as an escape such as \\n)"));
      } else {
        const size_t length = utf8_sequence_length(text_.substr(pos_));
        if (length == 0) fail_at(pos_, str("invalid UTF-8 in string at ", describe_byte(c)));
        out.append(text_.substr(pos_, length));
        pos_ += length;
      }
    }
  }

  void parse_escape(std::string& out) {
    const size_t escape_start = pos_;
    ++pos_;  // backslash
    if (at_end()) fail_at(escape_start, "unterminated string");
    const char c = peek();
    ++pos_;
    switch (c) {
      case '"':
        out += '"';
        return;
      case '\\':
        out += '\\';
        return;
      case '/':
        out += '/';
        return;
      case 'b':
        out += '\b';
        return;
      case 'f':
        out += '\f';
        return;
      case 'n':
        out += '\n';
        return;
      case 'r':
        out += '\r';
        return;
      case 't':
        out += '\t';
        return;
      case 'u':
        break;
      default:
        fail_at(escape_start, str("invalid escape in string: '\\' followed by ",
                                  describe_byte(static_cast<unsigned char>(c))));
    }
    uint32_t code_point = parse_hex4(escape_start);
    if (code_point >= 0xDC00 && code_point <= 0xDFFF) {
      fail_at(escape_start, "lone low surrogate in \\u escape (no high surrogate before it)");
    }
    if (code_point >= 0xD800 && code_point <= 0xDBFF) {
      // UTF-16 surrogate pair: the low half must follow immediately as another \u escape.
      const size_t low_start = pos_;
      if (text_.substr(pos_, 2) != "\\u") {
        fail_at(escape_start, "lone high surrogate in \\u escape (expected \\uDC00-\\uDFFF next)");
      }
      pos_ += 2;
      const uint32_t low = parse_hex4(low_start);
      if (low < 0xDC00 || low > 0xDFFF) {
        fail_at(low_start, "high surrogate followed by a \\u escape that is not a low surrogate");
      }
      code_point = 0x10000 + ((code_point - 0xD800) << 10) + (low - 0xDC00);
    }
    append_utf8(out, code_point);
  }

  uint32_t parse_hex4(size_t escape_start) {
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      if (at_end()) fail_at(escape_start, "\\u escape needs 4 hex digits, got end of input");
      const char c = peek();
      uint32_t digit;
      if (c >= '0' && c <= '9') {
        digit = static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        digit = static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        digit = static_cast<uint32_t>(c - 'A' + 10);
      } else {
        fail_at(pos_, str("\\u escape needs 4 hex digits, got ",
                          describe_byte(static_cast<unsigned char>(c))));
      }
      value = value * 16 + digit;
      ++pos_;
    }
    return value;
  }

  bool consume_digits() {
    const size_t start = pos_;
    while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_;
    return pos_ > start;
  }

  Value parse_number() {
    const size_t start = pos_;
    if (peek() == '-') ++pos_;
    if (!at_end() && peek() == 'I') {
      fail_at(pos_, "expected a digit after '-', got 'I' (Infinity is not valid JSON)");
    }
    if (at_end() || peek() < '0' || peek() > '9') fail_expected("a digit after '-'");
    if (peek() == '0') {
      ++pos_;
      if (!at_end() && peek() >= '0' && peek() <= '9') {
        fail_at(start, "leading zeros are not allowed in numbers");
      }
    } else {
      consume_digits();
    }
    bool integral = true;
    if (!at_end() && peek() == '.') {
      integral = false;
      ++pos_;
      if (!consume_digits()) fail_expected("a digit after the decimal point");
    }
    bool negative_exponent = false;
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      integral = false;
      ++pos_;
      if (!at_end() && (peek() == '+' || peek() == '-')) {
        negative_exponent = peek() == '-';
        ++pos_;
      }
      if (!consume_digits()) fail_expected("a digit in the exponent");
    }
    const char* first = text_.data() + start;
    const char* last = text_.data() + pos_;
    if (integral) {
      int64_t int_value;
      const auto result = std::from_chars(first, last, int_value);
      if (result.ec == std::errc() && result.ptr == last) return Value(int_value);
      // Beyond int64: keep it as a double, as other JSON readers do.
    }
    double double_value;
    const auto result = std::from_chars(first, last, double_value);
    if (result.ec == std::errc::result_out_of_range) {
      if (!negative_exponent) fail_at(start, "number out of range for a double");
      double_value = *first == '-' ? -0.0 : 0.0;  // underflow
    } else if (result.ec != std::errc() || result.ptr != last) {
      fail_at(start, "invalid number");
    }
    return Value(double_value);
  }

  std::string_view text_;
  std::string_view source_;
  int64_t first_line_;
  size_t pos_ = 0;
};

Value parse(std::string_view text, std::string_view source) {
  return Parser(text, source).parse_document();
}

Value parse_line(std::string_view text, std::string_view source, int64_t line_number) {
  return Parser(text, source, line_number).parse_document();
}

}  // namespace zerotune::json
