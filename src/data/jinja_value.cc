#include "data/jinja_value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/check.h"
#include "data/jinja_text.h"

namespace zerotune::jinja {
namespace {

const ValueList kEmptyList;
const Dict kEmptyDict;

// Python compares int and float exactly, not through a rounded double.
bool number_equals(const Value& a, const Value& b) {
  if (!a.is_float() && !b.is_float()) return a.integer() == b.integer();
  if (a.is_float() && b.is_float()) return a.number() == b.number();
  const double f = a.is_float() ? a.number() : b.number();
  const int64_t i = a.is_float() ? b.integer() : a.integer();
  if (!(f >= -9.2233720368547758e18 && f < 9.2233720368547758e18)) return false;
  return std::floor(f) == f && static_cast<int64_t>(f) == i;
}

bool number_less(const Value& a, const Value& b) {
  if (!a.is_float() && !b.is_float()) return a.integer() < b.integer();
  return a.number() < b.number();
}

bool sequence_less(const ValueList& a, const ValueList& b, std::string_view op) {
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (!equals(a[i], b[i])) return less(a[i], b[i], op);
  }
  return a.size() < b.size();
}

void append_json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out += '"';
  for (char32_t c : text::decode(s)) {
    switch (c) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    char buf[16];
    if (c < 0x20 || (ensure_ascii && c >= 0x7F)) {
      if (c >= 0x10000) {
        const char32_t v = c - 0x10000;
        std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 + (v >> 10)),
                      static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
      } else {
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
      }
      out += buf;
    } else {
      text::append_utf8(out, c);
    }
  }
  out += '"';
}

std::string json_float(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  return text::float_repr(v);
}

// A dict key as json.dumps writes it: str as is; int, float, bool and None converted.
std::string json_key(const Value& key) {
  switch (key.kind()) {
    case Value::Kind::string:
      return key.string();
    case Value::Kind::boolean:
      return key.boolean() ? "true" : "false";
    case Value::Kind::none:
      return "null";
    case Value::Kind::integer:
      return std::to_string(key.integer());
    case Value::Kind::floating:
      return json_float(key.number());
    default:
      throw Fault("keys must be str, int, float, bool or None, not " + key.type_name());
  }
}

class JsonWriter {
 public:
  explicit JsonWriter(const JsonOptions& options) : options_(options) {
    item_separator_ =
        options.item_separator ? *options.item_separator : (options.indent ? "," : ", ");
    key_separator_ = options.key_separator ? *options.key_separator : ": ";
  }

  void write(std::string& out, const Value& value, int depth) {
    ZT_CHECK(depth < 512, "tojson: nesting deeper than 512 levels");
    switch (value.kind()) {
      case Value::Kind::none:
        out += "null";
        return;
      case Value::Kind::boolean:
        out += value.boolean() ? "true" : "false";
        return;
      case Value::Kind::integer:
        out += std::to_string(value.integer());
        return;
      case Value::Kind::floating:
        out += json_float(value.number());
        return;
      case Value::Kind::string:
        append_json_string(out, value.string(), options_.ensure_ascii);
        return;
      case Value::Kind::list:
        if (value.is_list_or_tuple()) return write_list(out, value, depth);
        break;
      case Value::Kind::dict:
        return write_dict(out, value, depth);
      default:
        break;
    }
    throw Fault("Object of type " + value.type_name() + " is not JSON serializable");
  }

 private:
  void newline(std::string& out, int depth) {
    if (!options_.indent) return;
    out += '\n';
    for (int i = 0; i < depth; ++i) out += *options_.indent;
  }

  void write_list(std::string& out, const Value& value, int depth) {
    const ValueList& items = value.items();
    if (items.empty()) {
      out += "[]";
      return;
    }
    out += '[';
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) out += item_separator_;
      newline(out, depth + 1);
      write(out, items[i], depth + 1);
    }
    newline(out, depth);
    out += ']';
  }

  void write_dict(std::string& out, const Value& value, int depth) {
    std::vector<Dict::Entry> entries = value.entries().items();
    if (entries.empty()) {
      out += "{}";
      return;
    }
    if (options_.sort_keys) {
      std::stable_sort(entries.begin(), entries.end(),
                       [](const auto& a, const auto& b) { return less(a.first, b.first, "<"); });
    }
    out += '{';
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i) out += item_separator_;
      newline(out, depth + 1);
      append_json_string(out, json_key(entries[i].first), options_.ensure_ascii);
      out += key_separator_;
      write(out, entries[i].second, depth + 1);
    }
    newline(out, depth);
    out += '}';
  }

  const JsonOptions& options_;
  std::string item_separator_, key_separator_;
};

}  // namespace

Value Value::undefined(std::string message) {
  Value v;
  v.text_ = std::move(message);
  return v;
}

Value Value::none() {
  Value v;
  v.kind_ = Kind::none;
  return v;
}

Value Value::sequence(ValueList items, SequenceKind kind) {
  Value v;
  v.kind_ = Kind::list;
  v.sequence_kind_ = kind;
  v.list_ = std::make_shared<const ValueList>(std::move(items));
  return v;
}

Value Value::dict(Dict entries) {
  Value v;
  v.kind_ = Kind::dict;
  v.dict_ = std::make_shared<const Dict>(std::move(entries));
  return v;
}

Value Value::object(std::shared_ptr<Object> object) {
  Value v;
  v.kind_ = Kind::object;
  v.object_ = std::move(object);
  return v;
}

Value Value::from_json(const json::Value& value) {
  switch (value.kind()) {
    case json::Value::Kind::null:
      return none();
    case json::Value::Kind::boolean:
      return Value(value.as_bool("value"));
    case json::Value::Kind::number:
      if (value.is_int64()) return Value(value.as_int64("value"));
      return Value(value.as_double("value"));
    case json::Value::Kind::string:
      return Value(value.as_string("value"));
    case json::Value::Kind::array: {
      ValueList items;
      items.reserve(value.items().size());
      for (const json::Value& item : value.items()) items.push_back(from_json(item));
      return sequence(std::move(items));
    }
    case json::Value::Kind::object: {
      Dict entries;
      for (const auto& [key, member] : value.members()) entries.set(Value(key), from_json(member));
      return dict(std::move(entries));
    }
  }
  return none();
}

const ValueList& Value::items() const {
  return list_ ? *list_ : kEmptyList;
}
const Dict& Value::entries() const {
  return dict_ ? *dict_ : kEmptyDict;
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::undefined:
    case Kind::none:
      return false;
    case Kind::boolean:
    case Kind::integer:
      return int_ != 0;
    case Kind::floating:
      return float_ != 0;
    case Kind::string:
      return !text_.empty();
    case Kind::list:
      return sequence_kind_ == SequenceKind::generator || !items().empty();
    case Kind::dict:
      return entries().size() > 0;
    case Kind::object:
      return true;
  }
  return false;
}

std::string Value::type_name() const {
  switch (kind_) {
    case Kind::undefined:
      return "Undefined";
    case Kind::none:
      return "NoneType";
    case Kind::boolean:
      return "bool";
    case Kind::integer:
      return "int";
    case Kind::floating:
      return "float";
    case Kind::string:
      return "str";
    case Kind::list:
      switch (sequence_kind_) {
        case SequenceKind::list:
          return "list";
        case SequenceKind::tuple:
          return "tuple";
        case SequenceKind::generator:
          return "generator";
        case SequenceKind::dict_items:
          return "dict_items";
        case SequenceKind::dict_keys:
          return "dict_keys";
        case SequenceKind::dict_values:
          return "dict_values";
      }
      return "list";
    case Kind::dict:
      return "dict";
    case Kind::object:
      return object_->type_name();
  }
  return "object";
}

const Value* Dict::find(const Value& key) const {
  for (const Entry& entry : entries_) {
    if (equals(entry.first, key)) return &entry.second;
  }
  return nullptr;
}

const Value* Dict::find(std::string_view key) const {
  for (const Entry& entry : entries_) {
    if (entry.first.is_string() && entry.first.string() == key) return &entry.second;
  }
  return nullptr;
}

void Dict::set(Value key, Value value) {
  if (!hashable(key)) throw Fault("unhashable type: '" + key.type_name() + "'");
  for (Entry& entry : entries_) {
    if (equals(entry.first, key)) {
      entry.second = std::move(value);
      return;
    }
  }
  entries_.emplace_back(std::move(key), std::move(value));
}

Value Object::attribute(std::string_view name) const {
  return Value::undefined("'" + type_name() + " object' has no attribute '" + std::string(name) +
                          "'");
}

Value Object::call(Interpreter&, Arguments) {
  throw Fault("'" + type_name() + "' object is not callable");
}

std::string Namespace::repr() const {
  return "<Namespace " + jinja::repr(Value::dict(attributes_)) + ">";
}

Value Namespace::attribute(std::string_view name) const {
  if (const Value* v = attributes_.find(name)) return *v;
  return Object::attribute(name);
}

std::string to_str(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::undefined:
      return "";
    case Value::Kind::string:
      return value.string();
    default:
      return repr(value);
  }
}

std::string repr(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::undefined:
      return "Undefined";
    case Value::Kind::none:
      return "None";
    case Value::Kind::boolean:
      return value.boolean() ? "True" : "False";
    case Value::Kind::integer:
      return std::to_string(value.integer());
    case Value::Kind::floating:
      return text::float_repr(value.number());
    case Value::Kind::string:
      return text::string_repr(value.string());
    case Value::Kind::object:
      return value.object()->repr();
    case Value::Kind::dict: {
      std::string out = "{";
      bool first = true;
      for (const auto& [key, item] : value.entries().items()) {
        if (!first) out += ", ";
        first = false;
        out += repr(key) + ": " + repr(item);
      }
      return out + "}";
    }
    case Value::Kind::list:
      break;
  }
  if (value.sequence_kind() == SequenceKind::generator) return "<generator object>";
  if (!value.is_list_or_tuple()) {
    // dict_items([...]) and its kin print their elements as a list inside their type's name.
    return value.type_name() + "(" + repr(Value::sequence(value.items())) + ")";
  }
  const bool tuple = value.sequence_kind() == SequenceKind::tuple;
  std::string out = tuple ? "(" : "[";
  const ValueList& items = value.items();
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    out += repr(items[i]);
  }
  if (tuple && items.size() == 1) out += ",";
  return out + (tuple ? ")" : "]");
}

bool equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return number_equals(a, b);
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::undefined:
    case Value::Kind::none:
      return true;
    case Value::Kind::string:
      return a.string() == b.string();
    case Value::Kind::object:
      return a.object() == b.object();
    case Value::Kind::list: {
      if (a.sequence_kind() != b.sequence_kind()) return false;
      if (a.sequence_kind() == SequenceKind::generator) return &a.items() == &b.items();
      const ValueList& x = a.items();
      const ValueList& y = b.items();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!equals(x[i], y[i])) return false;
      }
      return true;
    }
    case Value::Kind::dict: {
      if (a.entries().size() != b.entries().size()) return false;
      for (const auto& [key, item] : a.entries().items()) {
        const Value* other = b.entries().find(key);
        if (!other || !equals(item, *other)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

bool less(const Value& a, const Value& b, std::string_view op) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  if (a.is_number() && b.is_number()) return number_less(a, b);
  if (a.is_string() && b.is_string()) return a.string() < b.string();
  if (a.is_list_or_tuple() && b.is_list_or_tuple() && a.sequence_kind() == b.sequence_kind()) {
    return sequence_less(a.items(), b.items(), op);
  }
  throw Fault("'" + std::string(op) + "' not supported between instances of '" + a.type_name() +
              "' and '" + b.type_name() + "'");
}

bool hashable(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::dict:
      return false;
    case Value::Kind::list:
      if (value.sequence_kind() != SequenceKind::tuple) {
        return value.sequence_kind() == SequenceKind::generator;  // lists and views are not
      }
      return std::all_of(value.items().begin(), value.items().end(), hashable);
    default:
      return true;
  }
}

void fail_undefined(const Value& value) {
  throw Fault(value.undefined_message().empty() ? "undefined value used"
                                                : value.undefined_message());
}

std::string to_json(const Value& value, const JsonOptions& options) {
  std::string out;
  JsonWriter(options).write(out, value, 0);
  return out;
}

}  // namespace zerotune::jinja
