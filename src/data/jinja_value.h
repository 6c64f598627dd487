// The values a Jinja template computes with, behaving as the Python objects jinja2 hands around:
// undefined (jinja2's default Undefined), None, bool, int, float, str, list/tuple, dict and a few
// objects (namespace(), the loop variable, functions, macros, bound methods). Lists and dicts are
// immutable once built, as in jinja2's ImmutableSandboxedEnvironment, so copies share storage.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json.h"

namespace zerotune::jinja {

// An error of one operation (a Python TypeError, UndefinedError, ...), without a template location;
// the interpreter adds the origin and line.
class Fault : public std::runtime_error {
 public:
  explicit Fault(const std::string& message) : std::runtime_error(message) {}
};

class Value;
class Dict;
class Object;
using ValueList = std::vector<Value>;

// How a sequence prints and behaves: [a, b], (a, b), a one-shot generator (what jinja2's
// select/map filters return: always true, no len(), no indexing), or a dict view (what .items(),
// .keys() and .values() return: len() and iteration, no indexing).
enum class SequenceKind : uint8_t { list, tuple, generator, dict_items, dict_keys, dict_values };

class Value {
 public:
  enum class Kind : uint8_t {
    undefined,
    none,
    boolean,
    integer,
    floating,
    string,
    list,
    dict,
    object
  };

  Value() = default;  // undefined, with no name
  Value(bool b) : kind_(Kind::boolean), int_(b) {}
  Value(int64_t i) : kind_(Kind::integer), int_(i) {}
  Value(int i) : Value(static_cast<int64_t>(i)) {}
  Value(double d) : kind_(Kind::floating), float_(d) {}
  Value(std::string s) : kind_(Kind::string), text_(std::move(s)) {}
  Value(const char* s) : Value(std::string(s)) {}

  // `message` is what using it raises, e.g. "'foo' is undefined".
  static Value undefined(std::string message);
  static Value none();
  static Value sequence(ValueList items, SequenceKind kind = SequenceKind::list);
  static Value dict(Dict entries);
  static Value object(std::shared_ptr<Object> object);
  // JSON as Python's json.loads builds it: integer literals are int, other numbers float.
  static Value from_json(const json::Value& value);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::undefined; }
  bool is_none() const { return kind_ == Kind::none; }
  bool is_bool() const { return kind_ == Kind::boolean; }
  bool is_int() const { return kind_ == Kind::integer; }  // not bool
  bool is_float() const { return kind_ == Kind::floating; }
  bool is_number() const { return is_bool() || is_int() || is_float(); }  // Python's Number
  bool is_string() const { return kind_ == Kind::string; }
  bool is_sequence() const { return kind_ == Kind::list; }  // any SequenceKind
  bool is_list_or_tuple() const {
    return kind_ == Kind::list &&
           (sequence_kind_ == SequenceKind::list || sequence_kind_ == SequenceKind::tuple);
  }
  bool is_dict() const { return kind_ == Kind::dict; }
  bool is_object() const { return kind_ == Kind::object; }

  bool boolean() const { return int_ != 0; }
  int64_t integer() const { return int_; }  // bool or int
  double number() const { return is_float() ? float_ : static_cast<double>(int_); }
  const std::string& string() const { return text_; }
  const std::string& undefined_message() const { return text_; }
  const ValueList& items() const;
  SequenceKind sequence_kind() const { return sequence_kind_; }
  const Dict& entries() const;
  Object* object() const { return object_.get(); }
  const std::shared_ptr<Object>& object_ptr() const { return object_; }

  bool truthy() const;
  // Python's type name ("str", "int", "NoneType", "list", "dict", ...), for error messages.
  std::string type_name() const;

 private:
  Kind kind_ = Kind::undefined;
  SequenceKind sequence_kind_ = SequenceKind::list;
  int64_t int_ = 0;
  double float_ = 0;
  std::string text_;  // the string, or an undefined value's message
  std::shared_ptr<const ValueList> list_;
  std::shared_ptr<const Dict> dict_;
  std::shared_ptr<Object> object_;
};

// A Python dict: insertion order, keys compared as Python compares them (1 == 1.0 == True).
class Dict {
 public:
  using Entry = std::pair<Value, Value>;
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  void set(Value key, Value value);  // replaces in place or appends; unhashable keys fault
  const std::vector<Entry>& items() const { return entries_; }
  size_t size() const { return entries_.size(); }

 private:
  std::vector<Entry> entries_;
};

struct Arguments {
  ValueList positional;
  std::vector<std::pair<std::string, Value>> named;
};

class Interpreter;

// Objects with behaviour: attributes, calls and how they print.
class Object {
 public:
  virtual ~Object() = default;
  virtual std::string type_name() const = 0;
  virtual std::string repr() const { return "<" + type_name() + " object>"; }
  // The attribute `name`, or an undefined value when there is none.
  virtual Value attribute(std::string_view name) const;
  virtual bool callable() const { return false; }
  virtual Value call(Interpreter& interpreter, Arguments args);
};

// A namespace() object: the one value templates may change after creating it.
class Namespace : public Object {
 public:
  std::string type_name() const override { return "Namespace"; }
  std::string repr() const override;
  Value attribute(std::string_view name) const override;
  void set(const std::string& name, Value value) { attributes_.set(Value(name), std::move(value)); }
  void clear() { attributes_ = Dict(); }

 private:
  Dict attributes_;
};

// str(value) and repr(value) as Python prints them.
std::string to_str(const Value& value);
std::string repr(const Value& value);

// Python's ==, and <, <=, >, >= (TypeError between unordered kinds). Using an undefined value in
// an ordering comparison faults as jinja2's Undefined does.
bool equals(const Value& a, const Value& b);
bool less(const Value& a, const Value& b, std::string_view op);

// Python's hash() requirement for dict keys and set members.
bool hashable(const Value& value);

// Faults with an undefined value's message (jinja2's UndefinedError).
[[noreturn]] void fail_undefined(const Value& value);

// json.dumps(value, ensure_ascii, indent, separators, sort_keys) as Python writes it; `indent`
// null for none, `item_separator`/`key_separator` null for the defaults.
struct JsonOptions {
  bool ensure_ascii = false;
  const std::string* indent = nullptr;
  const std::string* item_separator = nullptr;
  const std::string* key_separator = nullptr;
  bool sort_keys = false;
};
std::string to_json(const Value& value, const JsonOptions& options);

}  // namespace zerotune::jinja
