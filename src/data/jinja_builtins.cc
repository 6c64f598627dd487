// Python operators, str/dict/list methods and the globals (range, dict, namespace,
// raise_exception, strftime_now) as a jinja2 ImmutableSandboxedEnvironment provides them.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>

#include "data/jinja_interpreter.h"
#include "data/jinja_text.h"

namespace zerotune::jinja {
namespace {

[[noreturn]] void fail_overflow() {
  throw Fault("integer overflow: Python integers are unbounded, these stop at 64 bits");
}

int64_t checked_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) fail_overflow();
  return r;
}
int64_t checked_sub(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) fail_overflow();
  return r;
}
int64_t checked_mul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) fail_overflow();
  return r;
}

[[noreturn]] void fail_operands(std::string_view op, const Value& a, const Value& b) {
  throw Fault("unsupported operand type(s) for " + std::string(op) + ": '" + a.type_name() +
              "' and '" + b.type_name() + "'");
}

bool is_integral(const Value& v) {
  return v.is_int() || v.is_bool();
}

// Python's floor division and modulo: the quotient rounds toward -inf, the remainder takes the
// divisor's sign.
int64_t floor_div(int64_t a, int64_t b) {
  if (b == 0) throw Fault("integer division or modulo by zero");
  if (a == INT64_MIN && b == -1) fail_overflow();
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}
int64_t floor_mod(int64_t a, int64_t b) {
  if (b == 0) throw Fault("integer modulo by zero");
  if (b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}
double float_mod(double a, double b) {
  if (b == 0) throw Fault("float modulo");
  double r = std::fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

Value repeat(Interpreter& in, const Value& seq, int64_t times) {
  if (times < 0) times = 0;
  if (seq.is_string()) {
    const int64_t total = checked_mul(static_cast<int64_t>(seq.string().size()), times);
    if (total > in.limits().max_output_bytes) {
      throw Fault("a string of " + std::to_string(total) + " bytes is over the limit of " +
                  std::to_string(in.limits().max_output_bytes));
    }
    std::string out;
    for (int64_t i = 0; i < times; ++i) out += seq.string();
    return Value(in.checked(out));
  }
  const int64_t total = checked_mul(static_cast<int64_t>(seq.items().size()), times);
  in.charge(total);
  ValueList out;
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), seq.items().begin(), seq.items().end());
  return Value::sequence(std::move(out), seq.sequence_kind());
}

// printf-style `format % args` for %s %r %d %i %f %%, which is what templates use.
Value percent_format(Interpreter& in, const std::string& format, const Value& args) {
  ValueList values = args.is_sequence() && args.sequence_kind() == SequenceKind::tuple
                         ? args.items()
                         : ValueList{args};
  std::string out;
  size_t next = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    if (++i >= format.size()) throw Fault("incomplete format");
    const char spec = format[i];
    if (spec == '%') {
      out += '%';
      continue;
    }
    if (next >= values.size()) throw Fault("not enough arguments for format string");
    const Value& v = values[next++];
    if (spec == 's') {
      out += to_str(v);
    } else if (spec == 'r') {
      out += repr(v);
    } else if ((spec == 'd' || spec == 'i') && v.is_number()) {
      out += std::to_string(v.is_float() ? static_cast<int64_t>(v.number()) : v.integer());
    } else if (spec == 'f' && v.is_number()) {
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%f", v.number());
      out += buf;
    } else {
      throw Fault(std::string("unsupported format character '") + spec + "'");
    }
  }
  if (next < values.size()) throw Fault("not all arguments converted during string formatting");
  return Value(in.checked(out));
}

// ---- methods ----

const char* const kStrMethods[] = {
    "capitalize",   "casefold",    "center",    "count",      "encode",       "endswith",
    "expandtabs",   "find",        "format",    "format_map", "index",        "isalnum",
    "isalpha",      "isascii",     "isdecimal", "isdigit",    "isidentifier", "islower",
    "isnumeric",    "isprintable", "isspace",   "istitle",    "isupper",      "join",
    "ljust",        "lower",       "lstrip",    "maketrans",  "partition",    "removeprefix",
    "removesuffix", "replace",     "rfind",     "rindex",     "rjust",        "rpartition",
    "rsplit",       "rstrip",      "split",     "splitlines", "startswith",   "strip",
    "swapcase",     "title",       "translate", "upper",      "zfill"};
const char* const kDictMethods[] = {"copy", "fromkeys", "get", "items", "keys", "values"};
const char* const kDictUnsafe[] = {"clear", "pop", "popitem", "setdefault", "update"};
const char* const kListMethods[] = {"copy", "count", "index"};
const char* const kListUnsafe[] = {"append", "clear",  "extend",  "insert",
                                   "pop",    "remove", "reverse", "sort"};

template <size_t N>
bool listed(const char* const (&names)[N], std::string_view name) {
  return std::any_of(std::begin(names), std::end(names), [&](const char* n) { return name == n; });
}

const std::string* optional_string(const Value& v, std::string_view what) {
  if (v.is_none()) return nullptr;
  if (!v.is_string()) throw Fault(std::string(what) + " arg must be None or str");
  return &v.string();
}

Value string_list(ValueList& scratch, std::vector<std::string> parts) {
  for (std::string& p : parts) scratch.push_back(Value(std::move(p)));
  return Value::sequence(std::move(scratch));
}

bool all_chars(const std::string& s, bool (*predicate)(char32_t)) {
  const std::u32string cps = text::decode(s);
  return !cps.empty() && std::all_of(cps.begin(), cps.end(), predicate);
}

// Index of `needle` in `haystack` in code points, or -1.
int64_t code_point_find(const std::string& haystack, const std::string& needle, bool reverse) {
  const size_t at = reverse ? haystack.rfind(needle) : haystack.find(needle);
  if (at == std::string::npos) return -1;
  return text::length(std::string_view(haystack).substr(0, at));
}

Value str_format(const std::string& format, const Arguments& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    const char c = format[i];
    if ((c == '{' || c == '}') && i + 1 < format.size() && format[i + 1] == c) {
      out += c, ++i;
      continue;
    }
    if (c == '}') throw Fault("Single '}' encountered in format string");
    if (c != '{') {
      out += c;
      continue;
    }
    const size_t close = format.find('}', i);
    if (close == std::string::npos) throw Fault("Single '{' encountered in format string");
    const std::string field = format.substr(i + 1, close - i - 1);
    if (field.find_first_of(":!.[") != std::string::npos) {
      throw Fault("format specs and conversions in str.format are not supported");
    }
    const Value* value = nullptr;
    if (field.empty() || std::all_of(field.begin(), field.end(), ::isdigit)) {
      const size_t index = field.empty() ? auto_index++ : std::stoul(field);
      if (index >= args.positional.size())
        throw Fault("Replacement index " + std::to_string(index) +
                    " out of range for positional args tuple");
      value = &args.positional[index];
    } else {
      for (const auto& [key, v] : args.named) {
        if (key == field) value = &v;
      }
      if (!value) throw Fault("'" + field + "'");
    }
    out += to_str(*value);
    i = close;
  }
  return Value(std::move(out));
}

std::optional<Value> no_argument_str_method(const std::string& s, const std::string& name,
                                            const Arguments& args) {
  static const char* const kNames[] = {
      "upper",     "lower",     "casefold", "title",   "capitalize", "swapcase", "isdigit",
      "isdecimal", "isnumeric", "isalpha",  "isalnum", "isspace",    "isupper",  "islower"};
  if (!listed(kNames, name)) return std::nullopt;
  bind(args, {}, name);
  if (name == "upper") return Value(text::upper(s));
  if (name == "lower" || name == "casefold") return Value(text::lower(s));
  if (name == "title") return Value(text::title(s));
  if (name == "capitalize") return Value(text::capitalize(s));
  if (name == "swapcase") return Value(text::swapcase(s));
  if (name == "isalpha") return Value(all_chars(s, text::is_alpha));
  if (name == "isspace") return Value(all_chars(s, text::is_space));
  if (name == "isalnum") {
    return Value(all_chars(s, [](char32_t c) { return text::is_alpha(c) || text::is_digit(c); }));
  }
  if (name == "isupper" || name == "islower") {
    bool cased = false;
    for (char32_t c : text::decode(s)) {
      if (name == "isupper" ? text::is_cased_lower(c) : text::is_cased_upper(c))
        return Value(false);
      cased = cased || text::is_cased_lower(c) || text::is_cased_upper(c);
    }
    return Value(cased);
  }
  return Value(all_chars(s, text::is_digit));  // isdigit, isdecimal, isnumeric
}

Value call_str_method_with_args(Interpreter& in, const std::string& s, const std::string& name,
                                const Arguments& args) {
  if (name == "replace") {
    const auto b =
        bind(args, {{"old", Value(), true}, {"new", Value(), true}, {"count", Value(int64_t{-1})}},
             name);
    if (!b[0].is_string() || !b[1].is_string()) throw Fault("replace() arguments must be str");
    return Value(in.checked(text::replace(s, b[0].string(), b[1].string(), b[2].integer())));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    const Value sub = bind(args, {{"sub", Value(), true}}, name)[0];
    if (!sub.is_string()) throw Fault("must be str, not " + sub.type_name());
    if (name == "count") {
      if (sub.string().empty()) return Value(text::length(s) + 1);
      int64_t n = 0;
      for (size_t at = s.find(sub.string()); at != std::string::npos;
           at = s.find(sub.string(), at + sub.string().size()))
        ++n;
      return Value(n);
    }
    const int64_t at = code_point_find(s, sub.string(), name[0] == 'r');
    if (at < 0 && (name == "index" || name == "rindex")) throw Fault("substring not found");
    return Value(at);
  }
  if (name == "join") {
    std::string out;
    bool first = true;
    for (const Value& item : iterate(bind(args, {{"iterable", Value(), true}}, name)[0])) {
      if (!item.is_string())
        throw Fault("sequence item: expected str instance, " + item.type_name() + " found");
      if (!first) out += s;
      out += item.string();
      first = false;
    }
    return Value(in.checked(out));
  }
  if (name == "format") return Value(in.checked(str_format(s, args).string()));
  if (name == "removeprefix" || name == "removesuffix") {
    const Value affix = bind(args, {{"affix", Value(), true}}, name)[0];
    if (!affix.is_string()) throw Fault(name + "() argument must be str, not " + affix.type_name());
    const std::string& a = affix.string();
    if (name == "removeprefix" && s.compare(0, a.size(), a) == 0) return Value(s.substr(a.size()));
    if (name == "removesuffix" && !a.empty() && s.size() >= a.size() &&
        s.compare(s.size() - a.size(), a.size(), a) == 0) {
      return Value(s.substr(0, s.size() - a.size()));
    }
    return Value(s);
  }
  if (name == "partition" || name == "rpartition") {
    const Value sep = bind(args, {{"sep", Value(), true}}, name)[0];
    if (!sep.is_string() || sep.string().empty()) throw Fault("empty separator");
    const size_t at = name == "partition" ? s.find(sep.string()) : s.rfind(sep.string());
    ValueList parts;
    if (at == std::string::npos) {
      parts = name == "partition" ? ValueList{Value(s), Value(""), Value("")}
                                  : ValueList{Value(""), Value(""), Value(s)};
    } else {
      parts = {Value(s.substr(0, at)), sep, Value(s.substr(at + sep.string().size()))};
    }
    return Value::sequence(std::move(parts), SequenceKind::tuple);
  }
  if (name == "zfill" || name == "center" || name == "ljust" || name == "rjust") {
    const auto b = bind(args, {{"width", Value(), true}, {"fillchar", Value(" ")}}, name);
    if (!is_integral(b[0]))
      throw Fault("'" + b[0].type_name() + "' object cannot be interpreted as an integer");
    const int64_t width = b[0].integer();
    const int64_t length = text::length(s);
    if (width <= length) return Value(s);
    if (width > in.limits().max_output_bytes)
      throw Fault("width " + std::to_string(width) + " is over the output limit");
    const std::string fill = name == "zfill" ? "0" : b[1].string();
    const int64_t pad = width - length;
    auto times = [&](int64_t n) {
      std::string r;
      for (int64_t i = 0; i < n; ++i) r += fill;
      return r;
    };
    if (name == "ljust") return Value(s + times(pad));
    if (name == "rjust") return Value(times(pad) + s);
    if (name == "zfill") {
      if (!s.empty() && (s[0] == '-' || s[0] == '+'))
        return Value(s.substr(0, 1) + times(pad) + s.substr(1));
      return Value(times(pad) + s);
    }
    // Python's center puts the odd extra character on the left when the width is odd.
    const int64_t left = pad / 2 + (pad & width & 1);
    return Value(times(left) + s + times(pad - left));
  }
  throw Fault("str." + name + "() is not supported by this interpreter");
}

Value call_str_method(Interpreter& in, const std::string& s, const std::string& name,
                      const Arguments& args) {
  ValueList scratch;
  auto one = [&](const char* param, Value fallback) {
    return bind(args, {{param, std::move(fallback)}}, name)[0];
  };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const Value chars = one("chars", Value::none());
    const auto side = name == "strip"    ? text::StripSide::both
                      : name == "lstrip" ? text::StripSide::left
                                         : text::StripSide::right;
    return Value(text::strip(s, optional_string(chars, name), side));
  }
  if (name == "startswith" || name == "endswith") {
    const Value affix = bind(args, {{"prefix", Value(), true}}, name)[0];
    ValueList options = affix.is_sequence() ? affix.items() : ValueList{affix};
    for (const Value& option : options) {
      if (!option.is_string())
        throw Fault(name + " first arg must be str or a tuple of str, not " + option.type_name());
      const std::string& o = option.string();
      const bool hit = name == "startswith" ? s.compare(0, o.size(), o) == 0
                                            : s.size() >= o.size() &&
                                                  s.compare(s.size() - o.size(), o.size(), o) == 0;
      if (hit) return Value(true);
    }
    return Value(false);
  }
  if (name == "split" || name == "rsplit") {
    const auto bound = bind(args, {{"sep", Value::none()}, {"maxsplit", Value(int64_t{-1})}}, name);
    const std::string* sep = optional_string(bound[0], name);
    if (sep && sep->empty()) throw Fault("empty separator");
    const int64_t maxsplit = bound[1].integer();
    return string_list(
        scratch, name == "split" ? text::split(s, sep, maxsplit) : text::rsplit(s, sep, maxsplit));
  }
  if (name == "splitlines")
    return string_list(scratch, text::splitlines(s, one("keepends", Value(false)).truthy()));
  if (std::optional<Value> result = no_argument_str_method(s, name, args)) return *result;
  return call_str_method_with_args(in, s, name, args);
}

Value call_dict_method(const Value& d, const std::string& name, const Arguments& args) {
  if (name == "get") {
    const auto b = bind(args, {{"key", Value(), true}, {"default", Value::none()}}, name);
    if (!hashable(b[0])) throw Fault("unhashable type: '" + b[0].type_name() + "'");
    const Value* v = d.entries().find(b[0]);
    return v ? *v : b[1];
  }
  bind(args, {}, name);
  if (name == "copy") return d;
  const SequenceKind view = name == "keys"     ? SequenceKind::dict_keys
                            : name == "values" ? SequenceKind::dict_values
                                               : SequenceKind::dict_items;
  ValueList out;
  for (const auto& [key, value] : d.entries().items()) {
    if (name == "keys") {
      out.push_back(key);
    } else if (name == "values") {
      out.push_back(value);
    } else if (name == "items") {
      out.push_back(Value::sequence({key, value}, SequenceKind::tuple));
    } else {
      throw Fault("dict." + name + "() is not supported by this interpreter");
    }
  }
  return Value::sequence(std::move(out), view);
}

Value call_list_method(const Value& list, const std::string& name, const Arguments& args) {
  if (name == "copy") {
    bind(args, {}, name);
    return list;
  }
  const Value x = bind(args, {{"value", Value(), true}}, name)[0];
  const ValueList& items = list.items();
  if (name == "count") {
    return Value(static_cast<int64_t>(
        std::count_if(items.begin(), items.end(), [&](const Value& v) { return equals(v, x); })));
  }
  for (size_t i = 0; i < items.size(); ++i) {
    if (equals(items[i], x)) return Value(static_cast<int64_t>(i));
  }
  throw Fault(repr(x) + " is not in list");
}

class Function : public Object {
 public:
  using Body = std::function<Value(Interpreter&, Arguments&)>;
  Function(std::string name, std::string type, Body body)
      : name_(std::move(name)), type_(std::move(type)), body_(std::move(body)) {}
  std::string type_name() const override { return type_; }
  std::string repr() const override { return "<" + type_ + " " + name_ + ">"; }
  bool callable() const override { return true; }
  Value call(Interpreter& in, Arguments args) override { return body_(in, args); }

 private:
  std::string name_, type_;
  Body body_;
};

Value make_function(const std::string& name, Function::Body body) {
  return Value::object(std::make_shared<Function>(name, "function", std::move(body)));
}

Value global_range(Interpreter& in, Arguments& args) {
  if (!args.named.empty()) throw Fault("range() takes no keyword arguments");
  const ValueList& a = args.positional;
  if (a.empty() || a.size() > 3)
    throw Fault("range expected 1 to 3 arguments, got " + std::to_string(a.size()));
  for (const Value& v : a) {
    if (!is_integral(v))
      throw Fault("'" + v.type_name() + "' object cannot be interpreted as an integer");
  }
  const int64_t start = a.size() == 1 ? 0 : a[0].integer();
  const int64_t stop = a.size() == 1 ? a[0].integer() : a[1].integer();
  const int64_t step = a.size() == 3 ? a[2].integer() : 1;
  if (step == 0) throw Fault("range() arg 3 must not be zero");
  const int64_t count = step > 0 ? (stop > start ? (stop - start + step - 1) / step : 0)
                                 : (start > stop ? (start - stop - step - 1) / -step : 0);
  if (count > in.limits().max_range) {
    throw Fault("Range too big. The sandbox blocks ranges larger than MAX_RANGE (" +
                std::to_string(in.limits().max_range) + ").");
  }
  in.charge(count);
  ValueList out;
  for (int64_t i = 0; i < count; ++i) out.push_back(Value(start + i * step));
  return Value::sequence(std::move(out));
}

Value global_strftime_now(Interpreter& in, Arguments& args) {
  const Value format = bind(args, {{"format", Value(), true}}, "strftime_now")[0];
  if (!format.is_string())
    throw Fault("strftime_now() argument must be str, not " + format.type_name());
  const std::time_t now = in.now();
  std::tm local{};
  localtime_r(&now, &local);
  std::string out(256 + format.string().size() * 8, '\0');
  const size_t n = std::strftime(out.data(), out.size(), format.string().c_str(), &local);
  out.resize(n);
  return Value(std::move(out));
}

}  // namespace

ValueList iterate(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::undefined:
      return {};
    case Value::Kind::list:
      return value.items();
    case Value::Kind::dict: {
      ValueList keys;
      for (const auto& [key, item] : value.entries().items()) keys.push_back(key);
      return keys;
    }
    case Value::Kind::string: {
      ValueList chars;
      for (char32_t c : text::decode(value.string())) {
        std::string one;
        text::append_utf8(one, c);
        chars.push_back(Value(std::move(one)));
      }
      return chars;
    }
    default:
      throw Fault("'" + value.type_name() + "' object is not iterable");
  }
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::undefined:
      return false;
    case Value::Kind::string:
      if (!item.is_string()) {
        throw Fault("'in <string>' requires string as left operand, not " + item.type_name());
      }
      return container.string().find(item.string()) != std::string::npos;
    case Value::Kind::list:
      return std::any_of(container.items().begin(), container.items().end(),
                         [&](const Value& v) { return equals(v, item); });
    case Value::Kind::dict:
      if (!hashable(item)) throw Fault("unhashable type: '" + item.type_name() + "'");
      return container.entries().find(item) != nullptr;
    default:
      throw Fault("argument of type '" + container.type_name() + "' is not iterable");
  }
}

Value negate(const Value& v) {
  if (v.is_undefined()) fail_undefined(v);
  if (v.is_float()) return Value(-v.number());
  if (is_integral(v)) return Value(checked_sub(0, v.integer()));
  throw Fault("bad operand type for unary -: '" + v.type_name() + "'");
}

Value binary_op(Interpreter& in, std::string_view op, const Value& a, const Value& b) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  const bool ints = is_integral(a) && is_integral(b);
  const bool numbers = a.is_number() && b.is_number();
  if (op == "+") {
    if (ints) return Value(checked_add(a.integer(), b.integer()));
    if (numbers) return Value(a.number() + b.number());
    if (a.is_string() && b.is_string()) return Value(in.checked(a.string() + b.string()));
    if (a.is_list_or_tuple() && b.is_list_or_tuple() && a.sequence_kind() == b.sequence_kind()) {
      ValueList joined = a.items();
      joined.insert(joined.end(), b.items().begin(), b.items().end());
      in.charge(static_cast<int64_t>(joined.size()));
      return Value::sequence(std::move(joined), a.sequence_kind());
    }
    if (a.is_string() || a.is_list_or_tuple()) {
      throw Fault("can only concatenate " + a.type_name() + " (not \"" + b.type_name() + "\") to " +
                  a.type_name());
    }
    fail_operands(op, a, b);
  }
  if (op == "*") {
    if (ints) return Value(checked_mul(a.integer(), b.integer()));
    if (numbers) return Value(a.number() * b.number());
    const bool a_seq = a.is_string() || a.is_list_or_tuple();
    const bool b_seq = b.is_string() || b.is_list_or_tuple();
    if (a_seq && is_integral(b)) return repeat(in, a, b.integer());
    if (b_seq && is_integral(a)) return repeat(in, b, a.integer());
    if (a_seq || b_seq)
      throw Fault("can't multiply sequence by non-int of type '" + (a_seq ? b : a).type_name() +
                  "'");
    fail_operands(op, a, b);
  }
  if (op == "%" && a.is_string()) return percent_format(in, a.string(), b);
  if (!numbers) fail_operands(op, a, b);
  if (op == "-")
    return ints ? Value(checked_sub(a.integer(), b.integer())) : Value(a.number() - b.number());
  if (op == "/") {
    if (b.number() == 0) throw Fault("division by zero");
    return Value(a.number() / b.number());
  }
  if (op == "//") {
    if (ints) return Value(floor_div(a.integer(), b.integer()));
    if (b.number() == 0) throw Fault("float floor division by zero");
    return Value(std::floor(a.number() / b.number()));
  }
  if (op == "%")
    return ints ? Value(floor_mod(a.integer(), b.integer()))
                : Value(float_mod(a.number(), b.number()));
  // "**"
  if (ints && b.integer() >= 0) {
    const int64_t base = a.integer(), exponent = b.integer();
    if (base == 0) return Value(int64_t{exponent == 0 ? 1 : 0});
    if (base == 1) return Value(int64_t{1});
    if (base == -1) return Value(int64_t{exponent % 2 ? -1 : 1});
    int64_t result = 1;  // |base| >= 2 overflows within 63 steps
    for (int64_t i = 0; i < exponent; ++i) result = checked_mul(result, base);
    return Value(result);
  }
  if (a.number() == 0 && b.number() < 0) throw Fault("0.0 cannot be raised to a negative power");
  return Value(std::pow(a.number(), b.number()));
}

std::optional<Value> method_of(const Value& receiver, std::string_view name) {
  const std::string method(name);
  bool known = false;
  if (receiver.is_string()) {
    known = listed(kStrMethods, name);
  } else if (receiver.is_dict()) {
    if (listed(kDictUnsafe, name)) {
      return Value::undefined("access to attribute '" + method + "' of 'dict' object is unsafe.");
    }
    known = listed(kDictMethods, name);
  } else if (receiver.is_list_or_tuple()) {
    const bool is_list = receiver.sequence_kind() == SequenceKind::list;
    if (is_list && listed(kListUnsafe, name)) {
      return Value::undefined("access to attribute '" + method + "' of 'list' object is unsafe.");
    }
    known = listed(kListMethods, name) && (is_list || name != "copy");
  }
  if (!known) return std::nullopt;
  return Value::object(std::make_shared<Function>(
      method, "builtin_function_or_method", [receiver, method](Interpreter& in, Arguments& args) {
        if (receiver.is_dict()) return call_dict_method(receiver, method, args);
        if (receiver.is_sequence()) return call_list_method(receiver, method, args);
        Value result = call_str_method(in, receiver.string(), method, args);
        if (!result.is_undefined()) return result;
        return call_str_method_with_args(in, receiver.string(), method, args);
      }));
}

void add_globals(Scope& scope) {
  scope.set("range", make_function("range", global_range));
  scope.set("dict", make_function("dict", [](Interpreter&, Arguments& args) {
              if (!args.positional.empty())
                throw Fault("dict() with positional arguments is not supported");
              Dict entries;
              for (auto& [key, value] : args.named) entries.set(Value(key), value);
              return Value::dict(std::move(entries));
            }));
  scope.set("namespace", make_function("namespace", [](Interpreter& in, Arguments& args) {
              auto space = std::make_shared<Namespace>();
              in.track(space);
              for (const Value& initial : args.positional) {
                if (!initial.is_dict())
                  throw Fault("namespace() takes mappings and keyword arguments");
                for (const auto& [key, value] : initial.entries().items())
                  space->set(to_str(key), value);
              }
              for (auto& [key, value] : args.named) space->set(key, value);
              return Value::object(space);
            }));
  scope.set("raise_exception",
            make_function("raise_exception", [](Interpreter&, Arguments& args) -> Value {
              const Value message = bind(args, {{"message", Value(), true}}, "raise_exception")[0];
              throw RaisedError(to_str(message));
            }));
  scope.set("strftime_now", make_function("strftime_now", global_strftime_now));
}

}  // namespace zerotune::jinja
