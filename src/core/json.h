// A small JSON value, a strict RFC 8259 parser and a writer. The files we read (config.json,
// tokenizer files, safetensors headers, JSONL rows) are untrusted: parse errors name the source,
// line and column, and typed accessors name the field and the kind that came instead.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace zerotune::json {

class Value {
 public:
  enum class Kind : uint8_t { null, boolean, number, string, array, object };
  using Member = std::pair<std::string, Value>;

  Value() = default;  // null
  Value(std::nullptr_t) {}
  Value(bool value) : data_(value) {}
  Value(double value) : data_(Number{0, value, false}) {}
  Value(int64_t value) : data_(Number{value, static_cast<double>(value), true}) {}
  // Any other integer type; without this `Value(3)` would be ambiguous. Values above INT64_MAX
  // (a uint64_t) throw rather than silently wrap.
  template <std::integral T>
  requires(!std::same_as<T, bool> && !std::same_as<T, int64_t>) Value(T value)
      : Value(checked_int64(value)) {}
  Value(std::string value) : data_(std::move(value)) {}
  Value(std::string_view value) : Value(std::string(value)) {}
  Value(const char* value) : Value(std::string(value)) {}  // not bool

  static Value object();
  static Value array();

  Kind kind() const { return static_cast<Kind>(data_.index()); }
  bool is_null() const { return kind() == Kind::null; }
  bool is_bool() const { return kind() == Kind::boolean; }
  bool is_number() const { return kind() == Kind::number; }
  // A number written as an integer literal that fits int64 (or built from an integer).
  bool is_int64() const;
  bool is_string() const { return kind() == Kind::string; }
  bool is_array() const { return kind() == Kind::array; }
  bool is_object() const { return kind() == Kind::object; }

  // The member named `key`; nullptr when missing or when this is not an object.
  const Value* find(std::string_view key) const;
  // Elements of an array / members of an object in document order; throw on another kind.
  const std::vector<Value>& items() const;
  const std::vector<Member>& members() const;

  // Typed accessors. `what` names the field for the error, e.g. `config.json: "hidden_size"`,
  // giving `config.json: "hidden_size" must be an integer, got string`.
  // as_int64 accepts integer literals and numbers with an exactly representable integral value
  // (4096.0); 1.5 or 1e300 are errors.
  int64_t as_int64(std::string_view what) const;
  double as_double(std::string_view what) const;
  bool as_bool(std::string_view what) const;
  const std::string& as_string(std::string_view what) const;
  const std::vector<Value>& as_array(std::string_view what) const;
  const std::vector<Member>& as_object(std::string_view what) const;

  // Builders. set() replaces the value of an existing key in place, else appends.
  Value& set(std::string key, Value value);
  void push_back(Value value);
  size_t size() const;  // members of an object, elements of an array, else 0

  // Compact when indent < 0; otherwise one member per line indented by `indent` spaces, like
  // Python's json.dumps(indent=...). Doubles use the shortest text that reads back to the same
  // bits; NaN and infinities have no JSON spelling and throw.
  std::string dump(int indent = -1) const;

  static const char* kind_name(Kind kind);  // "null", "boolean", "number", ...

 private:
  struct Number {
    int64_t int_value;    // exact, when is_int
    double double_value;  // always set
    bool is_int;
  };
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view key) const { return std::hash<std::string_view>{}(key); }
  };
  using Index = std::unordered_map<std::string, size_t, KeyHash, std::equal_to<>>;
  struct Object {
    Object() = default;
    Object(const Object& other);
    Object& operator=(const Object& other);
    Object(Object&&) noexcept = default;
    Object& operator=(Object&&) noexcept = default;
    ~Object() = default;

    std::vector<Member> members;
    // Objects with many members (a safetensors header, a tokenizer vocab) get a key -> position
    // index so that find() and set() stay O(1); small objects are scanned.
    std::unique_ptr<Index> index;
  };
  static constexpr size_t kIndexThreshold = 16;

  template <std::integral T>
  static int64_t checked_int64(T value);
  [[noreturn]] static void fail_unrepresentable(std::string_view type_name);
  [[noreturn]] void fail_kind(std::string_view what, const char* expected) const;
  void dump_to(std::string& out, int indent, int depth) const;

  // Alternatives in the order of Kind, so that kind() is the variant index.
  std::variant<std::monostate, bool, Number, std::string, std::vector<Value>, Object> data_;
};

template <std::integral T>
int64_t Value::checked_int64(T value) {
  if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(int64_t)) {
    if (value > static_cast<T>(INT64_MAX)) fail_unrepresentable("unsigned integer above INT64_MAX");
  }
  return static_cast<int64_t>(value);
}

// Parses one JSON document. Errors throw zerotune::Error as
// `source:line:column: expected ... , got ...`. Nesting is bounded by kMaxDepth; duplicate object
// keys keep the last value (at the first key's position). A leading UTF-8 BOM is skipped.
constexpr int kMaxDepth = 256;
Value parse(std::string_view text, std::string_view source);
// One line of a JSON Lines file: errors read `source:line_number:column: ...`.
Value parse_line(std::string_view text, std::string_view source, int64_t line_number);

// `s` as a JSON string literal with quotes and escapes; UTF-8 passes through unescaped. Throws
// when `s` is not valid UTF-8, since the result would not be valid JSON.
std::string quote(std::string_view s);

}  // namespace zerotune::json
