// jinja2's builtin filters and tests, with transformers' tojson (json.dumps, ensure_ascii off).
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include "core/text.h"
#include "data/jinja_interpreter.h"
#include "data/jinja_text.h"

namespace zerotune::jinja {
namespace {

using Filter = Value (*)(Interpreter&, const Value&, const Arguments&);
using Test = bool (*)(Interpreter&, const Value&, const Arguments&);

bool is_integral(const Value& v) {
  return v.is_int() || v.is_bool();
}

// The soft_str jinja2 applies before string filters: str(value), "" for undefined.
std::string soft_str(const Value& v) {
  return to_str(v);
}

// jinja2's make_attrgetter: "a.b.0" looks up a, then b, then item 0, with getitem semantics.
std::function<Value(const Value&)> attribute_getter(Interpreter& in, const Value& attribute,
                                                    const Value& fallback = Value::none()) {
  std::vector<Value> parts;
  if (attribute.is_string()) {
    const std::string dot = ".";
    for (const std::string& part : text::split(attribute.string(), &dot, -1)) {
      const bool digits = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
      parts.push_back(digits ? Value(static_cast<int64_t>(std::stoll(part))) : Value(part));
    }
  } else {
    parts.push_back(attribute);
  }
  return [&in, parts, fallback](const Value& item) {
    Value v = item;
    for (const Value& part : parts) {
      v = in.getitem(v, part);
      if (!fallback.is_none() && v.is_undefined()) v = fallback;
    }
    return v;
  };
}

Value case_key(const Value& v, bool case_sensitive) {
  return !case_sensitive && v.is_string() ? Value(text::lower(v.string())) : v;
}

// Python's int(str, base) for base 10 (whitespace, sign and '_' between digits allowed).
bool parse_int(const std::string& s, int base, int64_t& out) {
  const std::string t = text::strip(s, nullptr, text::StripSide::both);
  std::string digits;
  size_t i = 0;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) digits += t[i++];
  if (base == 16 && t.compare(i, 2, "0x") == 0) i += 2;
  bool previous_digit = false;
  for (; i < t.size(); ++i) {
    if (t[i] == '_' && previous_digit && i + 1 < t.size() && t[i + 1] != '_') {
      previous_digit = false;
      continue;
    }
    digits += t[i];
    previous_digit = true;
  }
  if (digits.empty() || digits == "+" || digits == "-") return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtoll(digits.c_str(), &end, base);
  return *end == '\0' && errno == 0 && std::isalnum(static_cast<unsigned char>(digits.back()));
}

bool parse_float(const std::string& s, double& out) {
  std::string t = text::strip(s, nullptr, text::StripSide::both);
  std::string cleaned;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '_' && i > 0 && i + 1 < t.size() &&
        std::isdigit(static_cast<unsigned char>(t[i - 1])) &&
        std::isdigit(static_cast<unsigned char>(t[i + 1]))) {
      continue;
    }
    cleaned += t[i];
  }
  if (cleaned.empty() || cleaned.find_first_of("xXpP") != std::string::npos) return false;
  char* end = nullptr;
  out = std::strtod(cleaned.c_str(), &end);
  return *end == '\0';
}

int64_t checked_length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::undefined:
      return 0;
    case Value::Kind::string:
      return text::length(v.string());
    case Value::Kind::dict:
      return static_cast<int64_t>(v.entries().size());
    case Value::Kind::list:
      if (v.sequence_kind() != SequenceKind::generator)
        return static_cast<int64_t>(v.items().size());
      break;
    default:
      break;
  }
  throw Fault("object of type '" + v.type_name() + "' has no len()");
}

Value generator(ValueList items) {
  return Value::sequence(std::move(items), SequenceKind::generator);
}

// ---- filters ----

Value f_abs(Interpreter&, const Value& v, const Arguments& args) {
  bind(args, {}, "abs");
  if (v.is_float()) return Value(std::fabs(v.number()));
  if (is_integral(v)) {
    if (v.integer() == INT64_MIN) throw Fault("integer overflow");
    return Value(v.integer() < 0 ? -v.integer() : v.integer());
  }
  if (v.is_undefined()) fail_undefined(v);
  throw Fault("bad operand type for abs(): '" + v.type_name() + "'");
}

Value f_attr(Interpreter&, const Value& v, const Arguments& args) {
  const Value name = bind(args, {{"name", Value(), true}}, "attr")[0];
  const std::string key = to_str(name);
  if (v.is_object()) return v.object()->attribute(key);
  if (std::optional<Value> method = method_of(v, key)) return *method;
  return Value::undefined("'" + v.type_name() + " object' has no attribute '" + key + "'");
}

Value f_capitalize(Interpreter&, const Value& v, const Arguments& args) {
  bind(args, {}, "capitalize");
  return Value(text::capitalize(soft_str(v)));
}

Value f_center(Interpreter& in, const Value& v, const Arguments& args) {
  const Value width = bind(args, {{"width", Value(int64_t{80})}}, "center")[0];
  return method_of(Value(soft_str(v)), "center")->object()->call(in, Arguments{{width}, {}});
}

Value f_default(Interpreter&, const Value& v, const Arguments& args) {
  const auto b = bind(args, {{"default_value", Value("")}, {"boolean", Value(false)}}, "default");
  if (v.is_undefined() || (b[1].truthy() && !v.truthy())) return b[0];
  return v;
}

Value f_dictsort(Interpreter&, const Value& v, const Arguments& args) {
  const auto b = bind(
      args, {{"case_sensitive", Value(false)}, {"by", Value("key")}, {"reverse", Value(false)}},
      "dictsort");
  if (!v.is_dict()) throw Fault("dictsort: expected a mapping, got " + v.type_name());
  const std::string by = to_str(b[1]);
  if (by != "key" && by != "value") throw Fault("You can only sort by either \"key\" or \"value\"");
  const size_t pos = by == "key" ? 0 : 1;
  std::vector<Dict::Entry> entries = v.entries().items();
  const bool case_sensitive = b[0].truthy(), reverse = b[2].truthy();
  std::stable_sort(entries.begin(), entries.end(), [&](const Dict::Entry& x, const Dict::Entry& y) {
    const Value kx = case_key(pos ? x.second : x.first, case_sensitive);
    const Value ky = case_key(pos ? y.second : y.first, case_sensitive);
    return reverse ? less(ky, kx, "<") : less(kx, ky, "<");
  });
  ValueList out;
  for (auto& [key, value] : entries)
    out.push_back(Value::sequence({key, value}, SequenceKind::tuple));
  return Value::sequence(std::move(out));
}

Value f_escape(Interpreter&, const Value& v, const Arguments& args) {
  bind(args, {}, "escape");
  return Value(escape_markup(soft_str(v)));
}

Value f_first(Interpreter&, const Value& v, const Arguments& args) {
  bind(args, {}, "first");
  const ValueList items = iterate(v);
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

Value f_last(Interpreter&, const Value& v, const Arguments& args) {
  bind(args, {}, "last");
  if (v.is_sequence() && v.sequence_kind() == SequenceKind::generator) {
    throw Fault("'generator' object is not reversible");
  }
  const ValueList items = iterate(v);
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

Value f_float(Interpreter&, const Value& v, const Arguments& args) {
  const Value fallback = bind(args, {{"default", Value(0.0)}}, "float")[0];
  if (v.is_undefined()) fail_undefined(v);
  if (v.is_number()) return Value(v.number());
  double parsed;
  if (v.is_string() && parse_float(v.string(), parsed)) return Value(parsed);
  return fallback;
}

Value f_int(Interpreter&, const Value& v, const Arguments& args) {
  const auto b = bind(args, {{"default", Value(int64_t{0})}, {"base", Value(int64_t{10})}}, "int");
  if (v.is_undefined()) fail_undefined(v);
  if (is_integral(v)) return Value(v.integer());
  double parsed = 0;
  if (v.is_string()) {
    int64_t n;
    if (parse_int(v.string(), static_cast<int>(b[1].integer()), n)) return Value(n);
    if (!parse_float(v.string(), parsed)) return b[0];
  } else if (v.is_float()) {
    parsed = v.number();
  } else {
    return b[0];
  }
  if (std::isnan(parsed)) return b[0];
  if (std::isinf(parsed) || std::fabs(parsed) >= 9.2233720368547758e18) {
    throw Fault("cannot convert float infinity or a huge float to a 64-bit integer");
  }
  return Value(static_cast<int64_t>(parsed));
}

Value f_indent(Interpreter& in, const Value& v, const Arguments& args) {
  const auto b =
      bind(args, {{"width", Value(int64_t{4})}, {"first", Value(false)}, {"blank", Value(false)}},
           "indent");
  std::string indention;
  if (b[0].is_string()) {
    indention = b[0].string();
  } else {
    for (int64_t i = 0; i < b[0].integer() && i < in.limits().max_output_bytes; ++i)
      indention += ' ';
  }
  // jinja2 appends a newline so that splitlines keeps a trailing empty line.
  const std::vector<std::string> lines = text::splitlines(soft_str(v) + "\n", false);
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out += '\n';
    const bool indent_line = i > 0 && (b[2].truthy() || !lines[i].empty());
    if (indent_line) out += indention;
    out += lines[i];
  }
  if (b[1].truthy()) out = indention + out;
  return Value(in.checked(out));
}

Value f_items(Interpreter&, const Value& v, const Arguments& args) {
  bind(args, {}, "items");
  if (v.is_undefined()) return generator({});
  if (!v.is_dict()) throw Fault("Can only get item pairs from a mapping.");
  ValueList out;
  for (const auto& [key, value] : v.entries().items())
    out.push_back(Value::sequence({key, value}, SequenceKind::tuple));
  return generator(std::move(out));
}

Value f_join(Interpreter& in, const Value& v, const Arguments& args) {
  const auto b = bind(args, {{"d", Value("")}, {"attribute", Value::none()}}, "join");
  ValueList items = iterate(v);
  if (!b[1].is_none()) {
    auto get = attribute_getter(in, b[1]);
    for (Value& item : items) item = get(item);
  }
  std::string out;
  const std::string separator = soft_str(b[0]);
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += separator;
    out += soft_str(items[i]);
  }
  return Value(in.checked(out));
}

Value f_length(Interpreter&, const Value& v, const Arguments& args) {
  bind(args, {}, "length");
  return Value(checked_length(v));
}

Value f_list(Interpreter&, const Value& v, const Arguments& args) {
  bind(args, {}, "list");
  return Value::sequence(iterate(v));
}

Value f_lower(Interpreter&, const Value& v, const Arguments& args) {
  bind(args, {}, "lower");
  return Value(text::lower(soft_str(v)));
}

Value f_upper(Interpreter&, const Value& v, const Arguments& args) {
  bind(args, {}, "upper");
  return Value(text::upper(soft_str(v)));
}

Value f_map(Interpreter& in, const Value& v, const Arguments& args) {
  if (!v.truthy()) return generator({});
  std::function<Value(const Value&)> func;
  if (args.positional.empty() && !args.named.empty() && args.named[0].first == "attribute") {
    Value attribute, fallback = Value::none();
    for (const auto& [key, value] : args.named) {
      if (key == "attribute") {
        attribute = value;
      } else if (key == "default") {
        fallback = value;
      } else {
        throw Fault("Unexpected keyword argument '" + key + "'");
      }
    }
    func = attribute_getter(in, attribute, fallback);
  } else {
    if (args.positional.empty()) throw Fault("map requires a filter argument");
    const std::string name = to_str(args.positional[0]);
    Arguments rest{ValueList(args.positional.begin() + 1, args.positional.end()), args.named};
    func = [&in, name, rest](const Value& item) { return apply_filter(in, name, item, rest); };
  }
  ValueList out;
  for (const Value& item : iterate(v)) out.push_back(func(item));
  return generator(std::move(out));
}

Value min_or_max(Interpreter& in, const Value& v, const Arguments& args, bool want_max,
                 const char* name) {
  const auto b = bind(args, {{"case_sensitive", Value(false)}, {"attribute", Value::none()}}, name);
  const ValueList items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  auto get = b[1].is_none() ? std::function<Value(const Value&)>([](const Value& x) { return x; })
                            : attribute_getter(in, b[1]);
  size_t best = 0;
  Value best_key = case_key(get(items[0]), b[0].truthy());
  for (size_t i = 1; i < items.size(); ++i) {
    Value key = case_key(get(items[i]), b[0].truthy());
    if (want_max ? less(best_key, key, ">") : less(key, best_key, "<")) best = i, best_key = key;
  }
  return items[best];
}
Value f_max(Interpreter& in, const Value& v, const Arguments& args) {
  return min_or_max(in, v, args, true, "max");
}
Value f_min(Interpreter& in, const Value& v, const Arguments& args) {
  return min_or_max(in, v, args, false, "min");
}

// select / reject / selectattr / rejectattr.
Value select_or_reject(Interpreter& in, const Value& v, const Arguments& args, bool keep_matches,
                       bool lookup_attribute) {
  if (!v.truthy()) return generator({});
  size_t offset = 0;
  std::function<Value(const Value&)> transform = [](const Value& x) { return x; };
  if (lookup_attribute) {
    if (args.positional.empty()) throw Fault("Missing parameter for attribute name");
    transform = attribute_getter(in, args.positional[0]);
    offset = 1;
  }
  std::function<bool(const Value&)> test = [](const Value& x) { return x.truthy(); };
  if (args.positional.size() > offset) {
    const std::string name = to_str(args.positional[offset]);
    if (!is_test_name(name)) throw Fault("No test named '" + name + "'.");
    Arguments rest{ValueList(args.positional.begin() + offset + 1, args.positional.end()),
                   args.named};
    test = [&in, name, rest](const Value& x) { return apply_test(in, name, x, rest); };
  }
  ValueList out;
  for (const Value& item : iterate(v)) {
    if (test(transform(item)) == keep_matches) out.push_back(item);
  }
  return generator(std::move(out));
}
Value f_select(Interpreter& in, const Value& v, const Arguments& a) {
  return select_or_reject(in, v, a, true, false);
}
Value f_reject(Interpreter& in, const Value& v, const Arguments& a) {
  return select_or_reject(in, v, a, false, false);
}
Value f_selectattr(Interpreter& in, const Value& v, const Arguments& a) {
  return select_or_reject(in, v, a, true, true);
}
Value f_rejectattr(Interpreter& in, const Value& v, const Arguments& a) {
  return select_or_reject(in, v, a, false, true);
}

Value f_replace(Interpreter& in, const Value& v, const Arguments& args) {
  const auto b = bind(
      args, {{"old", Value(), true}, {"new", Value(), true}, {"count", Value::none()}}, "replace");
  const int64_t count = b[2].is_none() ? -1 : b[2].integer();
  return Value(in.checked(text::replace(soft_str(v), soft_str(b[0]), soft_str(b[1]), count)));
}

Value f_reverse(Interpreter&, const Value& v, const Arguments& args) {
  bind(args, {}, "reverse");
  if (v.is_string()) {
    std::u32string cps = text::decode(v.string());
    std::reverse(cps.begin(), cps.end());
    return Value(text::encode(cps));
  }
  ValueList items = iterate(v);
  std::reverse(items.begin(), items.end());
  const bool was_generator = v.is_sequence() && v.sequence_kind() == SequenceKind::generator;
  return Value::sequence(std::move(items),
                         was_generator ? SequenceKind::list : SequenceKind::generator);
}

Value f_round(Interpreter&, const Value& v, const Arguments& args) {
  const auto b =
      bind(args, {{"precision", Value(int64_t{0})}, {"method", Value("common")}}, "round");
  const std::string method = to_str(b[1]);
  if (method != "common" && method != "ceil" && method != "floor") {
    throw Fault("method must be common, ceil or floor");
  }
  if (v.is_undefined()) fail_undefined(v);
  if (!v.is_number()) throw Fault("type " + v.type_name() + " doesn't define __round__ method");
  const int64_t precision = b[0].integer();
  if (method == "common") {
    if (!v.is_float() && precision >= 0) return Value(v.integer());
    char buf[512];
    std::snprintf(buf, sizeof(buf), "%.*f",
                  static_cast<int>(std::clamp<int64_t>(precision, 0, 300)), v.number());
    return Value(precision == 0 ? std::nearbyint(v.number()) : std::strtod(buf, nullptr));
  }
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double scaled = v.number() * scale;
  return Value((method == "ceil" ? std::ceil(scaled) : std::floor(scaled)) / scale);
}

Value f_safe(Interpreter&, const Value& v, const Arguments& args) {
  bind(args, {}, "safe");
  return Value(soft_str(v));
}

Value f_sort(Interpreter& in, const Value& v, const Arguments& args) {
  const auto b = bind(
      args,
      {{"reverse", Value(false)}, {"case_sensitive", Value(false)}, {"attribute", Value::none()}},
      "sort");
  ValueList items = iterate(v);
  auto get = b[2].is_none() ? std::function<Value(const Value&)>([](const Value& x) { return x; })
                            : attribute_getter(in, b[2]);
  std::vector<std::pair<Value, Value>> keyed;
  for (Value& item : items) keyed.emplace_back(case_key(get(item), b[1].truthy()), std::move(item));
  const bool reverse = b[0].truthy();
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return reverse ? less(y.first, x.first, "<") : less(x.first, y.first, "<");
  });
  ValueList out;
  for (auto& [key, item] : keyed) out.push_back(std::move(item));
  return Value::sequence(std::move(out));
}

Value f_string(Interpreter&, const Value& v, const Arguments& args) {
  bind(args, {}, "string");
  return Value(soft_str(v));
}

Value f_sum(Interpreter& in, const Value& v, const Arguments& args) {
  const auto b = bind(args, {{"attribute", Value::none()}, {"start", Value(int64_t{0})}}, "sum");
  Value total = b[1];
  auto get = b[0].is_none() ? std::function<Value(const Value&)>([](const Value& x) { return x; })
                            : attribute_getter(in, b[0]);
  for (const Value& item : iterate(v)) total = binary_op(in, "+", total, get(item));
  return total;
}

// jinja2's title filter: each run between -, whitespace, (, {, [ and < starts upper-case.
Value f_title(Interpreter&, const Value& v, const Arguments& args) {
  bind(args, {}, "title");
  std::string out, word;
  auto flush = [&] {
    if (!word.empty()) out += text::capitalize(word);
    word.clear();
  };
  for (char32_t c : text::decode(soft_str(v))) {
    if (c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || text::is_space(c)) {
      flush();
      text::append_utf8(out, c);
    } else {
      text::append_utf8(word, c);
    }
  }
  flush();
  return Value(std::move(out));
}

Value f_tojson(Interpreter& in, const Value& v, const Arguments& args) {
  const auto b = bind(args,
                      {{"ensure_ascii", Value(false)},
                       {"indent", Value::none()},
                       {"separators", Value::none()},
                       {"sort_keys", Value(false)}},
                      "tojson");
  JsonOptions options;
  options.ensure_ascii = b[0].truthy();
  options.sort_keys = b[3].truthy();
  std::string indent, item_separator, key_separator;
  if (b[1].is_string()) {
    indent = b[1].string();
    options.indent = &indent;
  } else if (is_integral(b[1])) {
    indent.assign(static_cast<size_t>(std::clamp<int64_t>(b[1].integer(), 0, 1024)), ' ');
    options.indent = &indent;
  } else if (!b[1].is_none()) {
    throw Fault("tojson: indent must be an integer, a string or None");
  }
  if (!b[2].is_none()) {
    const ValueList parts = iterate(b[2]);
    if (parts.size() != 2 || !parts[0].is_string() || !parts[1].is_string()) {
      throw Fault("tojson: separators must be a pair of strings");
    }
    item_separator = parts[0].string(), key_separator = parts[1].string();
    options.item_separator = &item_separator;
    options.key_separator = &key_separator;
  }
  return Value(in.checked(to_json(v, options)));
}

Value f_trim(Interpreter&, const Value& v, const Arguments& args) {
  const Value chars = bind(args, {{"chars", Value::none()}}, "trim")[0];
  const std::string set = chars.is_none() ? "" : soft_str(chars);
  return Value(text::strip(soft_str(v), chars.is_none() ? nullptr : &set, text::StripSide::both));
}

Value f_unique(Interpreter& in, const Value& v, const Arguments& args) {
  const auto b =
      bind(args, {{"case_sensitive", Value(false)}, {"attribute", Value::none()}}, "unique");
  auto get = b[1].is_none() ? std::function<Value(const Value&)>([](const Value& x) { return x; })
                            : attribute_getter(in, b[1]);
  ValueList out, seen;
  for (const Value& item : iterate(v)) {
    Value key = case_key(get(item), b[0].truthy());
    if (!hashable(key)) throw Fault("unhashable type: '" + key.type_name() + "'");
    if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, key); })) {
      seen.push_back(key);
      out.push_back(item);
    }
  }
  return generator(std::move(out));
}

Value f_wordcount(Interpreter&, const Value& v, const Arguments& args) {
  bind(args, {}, "wordcount");
  int64_t words = 0;
  bool in_word = false;
  for (char32_t c : text::decode(soft_str(v))) {
    const bool word_char = text::is_alpha(c) || text::is_digit(c) || c == '_';
    if (word_char && !in_word) ++words;
    in_word = word_char;
  }
  return Value(words);
}

Value f_format(Interpreter& in, const Value& v, const Arguments& args) {
  if (!args.named.empty()) throw Fault("format with keyword arguments is not supported");
  return binary_op(in, "%", Value(soft_str(v)),
                   Value::sequence(args.positional, SequenceKind::tuple));
}

struct FilterEntry {
  const char* name;
  Filter fn;
};

constexpr FilterEntry kFilters[] = {
    {"abs", f_abs},
    {"attr", f_attr},
    {"capitalize", f_capitalize},
    {"center", f_center},
    {"count", f_length},
    {"d", f_default},
    {"default", f_default},
    {"dictsort", f_dictsort},
    {"e", f_escape},
    {"escape", f_escape},
    {"first", f_first},
    {"float", f_float},
    {"format", f_format},
    {"indent", f_indent},
    {"int", f_int},
    {"items", f_items},
    {"join", f_join},
    {"last", f_last},
    {"length", f_length},
    {"list", f_list},
    {"lower", f_lower},
    {"map", f_map},
    {"max", f_max},
    {"min", f_min},
    {"reject", f_reject},
    {"rejectattr", f_rejectattr},
    {"replace", f_replace},
    {"reverse", f_reverse},
    {"round", f_round},
    {"safe", f_safe},
    {"select", f_select},
    {"selectattr", f_selectattr},
    {"sort", f_sort},
    {"string", f_string},
    {"sum", f_sum},
    {"title", f_title},
    {"tojson", f_tojson},
    {"trim", f_trim},
    {"unique", f_unique},
    {"upper", f_upper},
    {"wordcount", f_wordcount},
};

// jinja2 filters this interpreter leaves out; naming one is not a syntax error there.
constexpr const char* kUnsupportedFilters[] = {
    "batch",     "filesizeformat", "forceescape", "groupby", "pprint",   "random", "slice",
    "striptags", "truncate",       "urlencode",   "urlize",  "wordwrap", "xmlattr"};

// ---- tests ----

bool t_defined(Interpreter&, const Value& v, const Arguments&) {
  return !v.is_undefined();
}
bool t_undefined(Interpreter&, const Value& v, const Arguments&) {
  return v.is_undefined();
}
bool t_none(Interpreter&, const Value& v, const Arguments&) {
  return v.is_none();
}
bool t_boolean(Interpreter&, const Value& v, const Arguments&) {
  return v.is_bool();
}
bool t_false(Interpreter&, const Value& v, const Arguments&) {
  return v.is_bool() && !v.boolean();
}
bool t_true(Interpreter&, const Value& v, const Arguments&) {
  return v.is_bool() && v.boolean();
}
bool t_integer(Interpreter&, const Value& v, const Arguments&) {
  return v.is_int();
}
bool t_float(Interpreter&, const Value& v, const Arguments&) {
  return v.is_float();
}
bool t_number(Interpreter&, const Value& v, const Arguments&) {
  return v.is_number();
}
bool t_string(Interpreter&, const Value& v, const Arguments&) {
  return v.is_string();
}
bool t_mapping(Interpreter&, const Value& v, const Arguments&) {
  return v.is_dict();
}
bool t_callable(Interpreter&, const Value& v, const Arguments&) {
  return v.is_object() && v.object()->callable();
}
bool t_escaped(Interpreter&, const Value&, const Arguments&) {
  return false;
}
bool t_sequence(Interpreter&, const Value& v, const Arguments&) {
  return v.is_undefined() || v.is_string() || v.is_dict() || v.is_list_or_tuple();
}
bool t_iterable(Interpreter&, const Value& v, const Arguments&) {
  return v.is_undefined() || v.is_string() || v.is_dict() || v.is_sequence();
}
bool t_lower(Interpreter& in, const Value& v, const Arguments&) {
  return method_of(Value(soft_str(v)), "islower")->object()->call(in, {}).truthy();
}
bool t_upper(Interpreter& in, const Value& v, const Arguments&) {
  return method_of(Value(soft_str(v)), "isupper")->object()->call(in, {}).truthy();
}
Value test_argument(const Arguments& args, const char* test) {
  return bind(args, {{"other", Value(), true}}, test)[0];
}
bool t_divisibleby(Interpreter& in, const Value& v, const Arguments& args) {
  return equals(binary_op(in, "%", v, test_argument(args, "divisibleby")), Value(int64_t{0}));
}
bool t_odd(Interpreter& in, const Value& v, const Arguments&) {
  return equals(binary_op(in, "%", v, Value(int64_t{2})), Value(int64_t{1}));
}
bool t_even(Interpreter& in, const Value& v, const Arguments&) {
  return equals(binary_op(in, "%", v, Value(int64_t{2})), Value(int64_t{0}));
}
bool t_eq(Interpreter&, const Value& v, const Arguments& a) {
  return equals(v, test_argument(a, "eq"));
}
bool t_ne(Interpreter&, const Value& v, const Arguments& a) {
  return !equals(v, test_argument(a, "ne"));
}
bool t_lt(Interpreter&, const Value& v, const Arguments& a) {
  return less(v, test_argument(a, "lt"), "<");
}
bool t_le(Interpreter&, const Value& v, const Arguments& a) {
  const Value other = test_argument(a, "le");
  return less(v, other, "<=") || equals(v, other);
}
bool t_gt(Interpreter&, const Value& v, const Arguments& a) {
  const Value other = test_argument(a, "gt");
  less(v, other, ">");
  return less(other, v, ">");
}
bool t_ge(Interpreter&, const Value& v, const Arguments& a) {
  const Value other = test_argument(a, "ge");
  return !less(v, other, ">=") && (less(other, v, ">=") || equals(v, other));
}
bool t_in(Interpreter&, const Value& v, const Arguments& a) {
  return contains(test_argument(a, "in"), v);
}
bool t_sameas(Interpreter&, const Value& v, const Arguments& a) {
  const Value other = test_argument(a, "sameas");
  if (v.kind() != other.kind()) return false;
  if (v.is_none() || v.is_bool()) return equals(v, other);
  if (v.is_int()) return v.integer() == other.integer() && v.integer() >= -5 && v.integer() <= 256;
  if (v.is_object()) return v.object() == other.object();
  if (v.is_sequence()) return &v.items() == &other.items();
  if (v.is_dict()) return &v.entries() == &other.entries();
  return false;
}
bool t_filter(Interpreter&, const Value& v, const Arguments&) {
  return v.is_string() && is_filter_name(v.string());
}
bool t_test(Interpreter&, const Value& v, const Arguments&) {
  return v.is_string() && is_test_name(v.string());
}

struct TestEntry {
  const char* name;
  Test fn;
};

constexpr TestEntry kTests[] = {
    {"defined", t_defined},
    {"undefined", t_undefined},
    {"none", t_none},
    {"boolean", t_boolean},
    {"false", t_false},
    {"true", t_true},
    {"integer", t_integer},
    {"float", t_float},
    {"number", t_number},
    {"string", t_string},
    {"mapping", t_mapping},
    {"sequence", t_sequence},
    {"iterable", t_iterable},
    {"callable", t_callable},
    {"escaped", t_escaped},
    {"lower", t_lower},
    {"upper", t_upper},
    {"divisibleby", t_divisibleby},
    {"odd", t_odd},
    {"even", t_even},
    {"eq", t_eq},
    {"equalto", t_eq},
    {"==", t_eq},
    {"ne", t_ne},
    {"!=", t_ne},
    {"lt", t_lt},
    {"lessthan", t_lt},
    {"<", t_lt},
    {"le", t_le},
    {"<=", t_le},
    {"gt", t_gt},
    {"greaterthan", t_gt},
    {">", t_gt},
    {"ge", t_ge},
    {">=", t_ge},
    {"in", t_in},
    {"sameas", t_sameas},
    {"filter", t_filter},
    {"test", t_test},
};

}  // namespace

bool is_filter_name(const std::string& name) {
  for (const FilterEntry& f : kFilters) {
    if (name == f.name) return true;
  }
  for (const char* f : kUnsupportedFilters) {
    if (name == f) return true;
  }
  return false;
}

bool is_test_name(const std::string& name) {
  for (const TestEntry& t : kTests) {
    if (name == t.name) return true;
  }
  return false;
}

Value apply_filter(Interpreter& in, const std::string& name, const Value& operand,
                   const Arguments& args) {
  for (const FilterEntry& f : kFilters) {
    if (name == f.name) return f.fn(in, operand, args);
  }
  if (is_filter_name(name))
    throw Fault("the '" + name + "' filter is not supported by this interpreter");
  throw Fault("No filter named '" + name + "'.");
}

bool apply_test(Interpreter& in, const std::string& name, const Value& operand,
                const Arguments& args) {
  for (const TestEntry& t : kTests) {
    if (name == t.name) return t.fn(in, operand, args);
  }
  throw Fault("No test named '" + name + "'.");
}

}  // namespace zerotune::jinja
