// What an options struct says about each of its options. The struct lists them once:
//
//   template <class Visitor> void visit(Visitor& v) {
//     using namespace opt;
//     v(batch_size, "--batch-size-per-device|-bs", "B", "micro-batch per device", Positive{});
//   }
//
// (the field, its spellings, its value's name in --help, its help, then rules and marks; the
// default is the field's initial value), and generic visitors turn that list into parsing, --help
// and printing (cli/options.h) and into the checks (validate_options below). The rules live here,
// apart from the command line, so that layers below the CLI (TrainOptions) can declare their
// options and check them: this header needs only core.
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/check.h"
#include "core/dtype.h"

namespace zerotune::opt {

// ---- Rules: checked on an option's final value; a failure names the option and the value.

struct Required {};                       // a string that must not be empty
struct Positive {};                       // > 0
struct NonNegative {                      // >= 0
  const char* meaning_of_zero = nullptr;  // named in the error: "0 = off"
};
struct Finite {};  // neither infinite nor NaN
struct AtLeast {
  int64_t min;
};
struct InRange {  // min <= value <= max
  int64_t min, max;
};

// ---- Marks: how an option is spelled, shown and read.

struct PythonJob {};  // spelled as in the Python job that zerotune replaces; --help says so
struct Alias {        // one more accepted spelling, named in --help
  const char* spelling;
};
struct DefaultText {  // --help's default where the field's initial value does not say it
  const char* text;
};
// Set to true once the option is given (command line or --ds-config): for a default that
// depends on other options.
struct Given {
  bool& flag;
};
// The field holds a value only once given (then `given` is set); until then DefaultText applies.
struct PresentIf {
  bool& given;
};
// A flag without value that sets its field to `value`; a bool field without SetsTo is set true.
template <class T>
struct SetsTo {
  T value;
};
template <class T>
SetsTo(T) -> SetsTo<T>;
// The values one may give, where not every named value may be: --help and errors list them.
template <class T, size_t N>
struct Choices {
  std::array<T, N> values;
};
template <class T, class... More>
Choices(T, More...) -> Choices<T, 1 + sizeof...(More)>;

// ---- Named values: enums with a name table beside them, found by argument-dependent lookup as
// `std::span<const EnumName<E>> enum_names(E)`, and DType with core's names.

template <class E>
struct EnumName {
  const char* name;
  E value;
};

template <class T>
concept NamedEnum = std::is_enum_v<T> && requires(T e) {
  {enum_names(e)};
};
template <class T>
concept Named = NamedEnum<T> || std::same_as<T, DType>;

template <NamedEnum E>
const char* name_of_value(E value) {
  for (const EnumName<E>& entry : enum_names(value)) {
    if (entry.value == value) return entry.name;
  }
  return "?";
}
inline const char* name_of_value(DType dtype) {
  return dtype_name(dtype);
}

template <NamedEnum E>
bool parse_name(std::string_view text, E* out) {
  for (const EnumName<E>& entry : enum_names(E{})) {
    if (text == entry.name) {
      *out = entry.value;
      return true;
    }
  }
  return false;
}
inline bool parse_name(std::string_view text, DType* out) {
  return parse_dtype(text, out);
}

// ---- Values as text: --help's defaults, printed options, error messages.

inline std::string format_value(const std::string& text) {
  return text;
}
inline std::string format_value(double x) {
  char buf[32];
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), x);  // shortest exact
  return std::string(buf, r.ptr);
}
template <std::integral T>
std::string format_value(T x) {
  if constexpr (std::same_as<T, bool>) {
    return x ? "true" : "false";
  } else {
    return std::to_string(x);
  }
}
template <Named T>
std::string format_value(T value) {
  return name_of_value(value);
}

// "a, b or c" (error messages) or "a|b|c" (--help).
template <Named T>
std::string join_names(const std::vector<T>& values, std::string_view sep, std::string_view last) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += i + 1 == values.size() ? last : sep;
    out += name_of_value(values[i]);
  }
  return out;
}

// ---- Rule and mark lookups over an option's pack.

template <class R>
inline constexpr bool kIsSetsTo = false;
template <class T>
inline constexpr bool kIsSetsTo<SetsTo<T>> = true;
template <class R>
inline constexpr bool kIsChoices = false;
template <class T, size_t N>
inline constexpr bool kIsChoices<Choices<T, N>> = true;

// An option without value: a bool, or any field with SetsTo.
template <class T, class... Rules>
inline constexpr bool kIsFlag = std::same_as<T, bool> || (kIsSetsTo<Rules> || ...);

template <class T, class Rule>
void collect_choices(const Rule&, std::vector<T>*) {}
template <class T, size_t N>
void collect_choices(const Choices<T, N>& choices, std::vector<T>* out) {
  out->assign(choices.values.begin(), choices.values.end());
}

// The values one may give for a field of type T: the option's Choices, else every named value.
template <Named T, class... Rules>
std::vector<T> allowed_values(const Rules&... rules) {
  static_assert(!std::same_as<T, DType> || (kIsChoices<Rules> || ...),
                "a DType option lists its Choices");
  std::vector<T> out;
  (collect_choices(rules, &out), ...);
  if constexpr (NamedEnum<T>) {
    if (out.empty()) {
      for (const EnumName<T>& entry : enum_names(T{})) out.push_back(entry.value);
    }
  }
  return out;
}

inline std::string first_spelling(std::string_view spellings) {
  return std::string(spellings.substr(0, spellings.find('|')));
}

// ---- Checks. One overload per rule and field type: a rule that does not fit the field's type
// does not compile. `label` names the option ("zerotune train: --lr") or the value's source.

inline void check_rule(const Required&, const std::string& value, const std::string& label) {
  ZT_CHECK(!value.empty(), label, " is required");
}
template <class T>
void check_rule(const Positive&, const T& value, const std::string& label) {
  static_assert(std::is_arithmetic_v<T>);
  ZT_CHECK(value > 0, label, " must be positive, got ", format_value(value));
}
template <class T>
void check_rule(const NonNegative& rule, const T& value, const std::string& label) {
  static_assert(std::is_arithmetic_v<T>);
  const std::string zero = rule.meaning_of_zero ? str(" (0 = ", rule.meaning_of_zero, ")") : "";
  ZT_CHECK(value >= 0, label, " must be >= 0", zero, ", got ", format_value(value));
}
inline void check_rule(const Finite&, double value, const std::string& label) {
  ZT_CHECK(std::isfinite(value), label, " must be finite, got ", format_value(value));
}
template <std::integral T>
void check_rule(const AtLeast& rule, const T& value, const std::string& label) {
  ZT_CHECK(value >= rule.min, label, " must be at least ", rule.min, ", got ", value);
}
template <std::integral T>
void check_rule(const InRange& rule, const T& value, const std::string& label) {
  ZT_CHECK(value >= rule.min && value <= rule.max, label, " must be ", rule.min, "-", rule.max,
           ", got ", value);
}
// Marks check nothing; Choices bound what may be given, not the default.
template <class T>
void check_rule(const PythonJob&, const T&, const std::string&) {}
template <class T>
void check_rule(const Alias&, const T&, const std::string&) {}
template <class T>
void check_rule(const DefaultText&, const T&, const std::string&) {}
template <class T>
void check_rule(const Given&, const T&, const std::string&) {}
template <class T>
void check_rule(const PresentIf&, const T&, const std::string&) {}
template <class T, class U>
void check_rule(const SetsTo<U>&, const T&, const std::string&) {}
template <class T, class U, size_t N>
void check_rule(const Choices<U, N>&, const T&, const std::string&) {}

// Records that an option was given (Given, PresentIf); other rules and marks ignore it.
inline void mark_given(const Given& mark) {
  mark.flag = true;
}
inline void mark_given(const PresentIf& mark) {
  mark.given = true;
}
template <class Rule>
void mark_given(const Rule&) {}

// Visits an options struct and checks every option's rules, naming it `prefix` + first spelling.
class Validator {
 public:
  explicit Validator(std::string prefix) : prefix_(std::move(prefix)) {}

  template <class T, class... Rules>
  void operator()(T& field, const char* spellings, const char* /*value_name*/, const char* /*help*/,
                  const Rules&... rules) {
    const std::string label = prefix_ + first_spelling(spellings);
    (check_rule(rules, field, label), ...);
  }

 private:
  std::string prefix_;
};

// Checks every option of `options` (a copy: visiting needs a mutable struct, checking does not).
template <class Options>
void validate_options(Options options, const std::string& prefix) {
  Validator validator(prefix);
  options.visit(validator);
}

}  // namespace zerotune::opt
