// The command line of any options struct with a visit() (cli/option_rules.h): one visitor
// declares its options in an Args table (parsing, and --help with every default and mark), a
// second writes the parsed values into the struct as their own types, a third prints the
// effective values; assign_option() writes a value from another source (a DeepSpeed config)
// through the same parsing and the same rules.
#pragma once

#include <algorithm>
#include <cerrno>
#include <concepts>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

#include "cli/args.h"
#include "core/option_rules.h"

namespace zerotune::opt {

// ---- Text to value: false when the text is not a value of the type.

inline bool parse_value(std::string_view text, std::string* out) {
  *out = std::string(text);
  return true;
}

// Base 10, as strtoll reads it (leading '+' or blanks too); a value beyond T's range is refused.
// Unsigned fields read as strtoull does, which wraps a leading '-' (a seed of -1 is 2^64 - 1).
template <std::integral T>
bool parse_value(std::string_view text, T* out) {
  static_assert(!std::same_as<T, bool>, "bool options are flags");
  const std::string s(text);
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  if constexpr (std::is_signed_v<T>) {
    const long long x = std::strtoll(s.c_str(), &end, 10);
    if (*end != '\0' || errno == ERANGE || !std::in_range<T>(x)) return false;
    *out = static_cast<T>(x);
  } else {
    const unsigned long long x = std::strtoull(s.c_str(), &end, 10);
    if (*end != '\0' || errno == ERANGE || !std::in_range<T>(x)) return false;
    *out = static_cast<T>(x);
  }
  return true;
}

// As strtod reads it: "1e-5", "inf" and "nan" too (rules such as Finite refuse what is wrong).
inline bool parse_value(std::string_view text, double* out) {
  const std::string s(text);
  if (s.empty()) return false;
  char* end = nullptr;
  const double x = std::strtod(s.c_str(), &end);
  if (*end != '\0') return false;
  *out = x;
  return true;
}

// Parses `text` into `field` as its type, or fails naming `label` and the text.
template <class T, class... Rules>
void parse_into(T& field, const std::string& text, const std::string& label,
                const Rules&... rules) {
  if constexpr (Named<T>) {
    const std::vector<T> allowed = allowed_values<T>(rules...);
    T value{};
    const bool ok = parse_name(text, &value) &&
                    std::find(allowed.begin(), allowed.end(), value) != allowed.end();
    ZT_CHECK(ok, label, " must be ", join_names(allowed, ", ", " or "), ", got '", text, "'");
    field = value;
  } else if constexpr (std::integral<T>) {
    ZT_CHECK(parse_value(text, &field), label, " expects an integer, got '", text, "'");
  } else if constexpr (std::same_as<T, double>) {
    ZT_CHECK(parse_value(text, &field), label, " expects a number, got '", text, "'");
  } else {
    static_assert(std::same_as<T, std::string>, "no parser for this option's type");
    field = text;
  }
}

// The value a flag sets: its SetsTo, or true for a bool.
template <class T, class Rule>
void collect_flag_value(const Rule&, T*) {}
template <class T>
void collect_flag_value(const SetsTo<T>& sets, T* out) {
  *out = sets.value;
}
template <class T, class... Rules>
T flag_value(const Rules&... rules) {
  T value{};
  if constexpr (std::same_as<T, bool>) value = true;
  (collect_flag_value(rules, &value), ...);
  return value;
}

// ---- Visitor 1: options -> Args table.

template <class Rule>
void describe(const Rule&, Args::Spec*) {}
inline void describe(const Required&, Args::Spec* spec) {
  spec->notes.push_back("required");
}
inline void describe(const PythonJob&, Args::Spec* spec) {
  spec->notes.push_back("as the Python job");
}
inline void describe(const Alias& alias, Args::Spec* spec) {
  spec->aliases.push_back(alias.spelling);
}
inline void describe(const DefaultText& text, Args::Spec* spec) {
  spec->default_value = text.text;
}

class ArgsDeclarer {
 public:
  explicit ArgsDeclarer(Args& args) : args_(args) {}

  template <class T, class... Rules>
  void operator()(T& field, const char* spellings, const char* value_name, const char* help,
                  const Rules&... rules) {
    Args::Spec spec;
    spec.names = Args::split_names(spellings);
    spec.help = help;
    spec.takes_value = !kIsFlag<T, Rules...>;
    if constexpr (!kIsFlag<T, Rules...>) {
      spec.value_name = value_name;
      if constexpr (Named<T>) {
        if (spec.value_name.empty()) {
          spec.value_name = join_names(allowed_values<T>(rules...), "|", "|");
        }
      }
      spec.default_value = format_value(field);  // the initial value; DefaultText overrides it
    }
    (describe(rules, &spec), ...);
    args_.add(std::move(spec));
  }

 private:
  Args& args_;
};

// ---- Visitor 2: parsed Args -> options. Options not given keep their initial values.

class ArgsReader {
 public:
  explicit ArgsReader(const Args& args) : args_(args) {}

  template <class T, class... Rules>
  void operator()(T& field, const char* spellings, const char* /*value_name*/, const char* /*help*/,
                  const Rules&... rules) {
    const std::string key = first_spelling(spellings);
    if (!args_.has(key)) return;
    if constexpr (kIsFlag<T, Rules...>) {
      field = flag_value<T>(rules...);
    } else {
      parse_into(field, args_.get(key), args_.command() + ": " + key, rules...);
    }
    (mark_given(rules), ...);
  }

 private:
  const Args& args_;
};

// Declares every option of `options` in `args`, parses argv[first..argc) and writes the given
// values into `options`. Returns false when --help was given (and printed).
template <class Options>
bool parse_options(Args& args, Options& options, int argc, char** argv, int first) {
  ArgsDeclarer declarer(args);
  options.visit(declarer);
  if (!args.parse(argc, argv, first)) return false;
  ArgsReader reader(args);
  options.visit(reader);
  return true;
}

// ---- Visitor 3: options -> text, one "SPELLING VALUE" line each ("--lr 5e-06"); a flag shows
// yes or no, an unset optional value what applies instead, an empty string "(none)".

class OptionsPrinter {
 public:
  template <class T, class... Rules>
  void operator()(T& field, const char* spellings, const char* /*value_name*/, const char* /*help*/,
                  const Rules&... rules) {
    text_ += first_spelling(spellings) + " " + effective(field, rules...) + "\n";
  }
  const std::string& text() const { return text_; }

 private:
  template <class T, class... Rules>
  static std::string effective(const T& field, const Rules&... rules) {
    if constexpr (kIsFlag<T, Rules...>) {
      return field == flag_value<T>(rules...) ? "yes" : "no";
    } else {
      if ((is_unset(rules) || ...)) {  // a PresentIf option not given: say what applies
        const char* instead = "unset";
        (collect_default_text(rules, &instead), ...);
        return std::string("(") + instead + ")";
      }
      const std::string text = format_value(field);
      return text.empty() ? "(none)" : text;
    }
  }
  template <class Rule>
  static bool is_unset(const Rule&) {
    return false;
  }
  static bool is_unset(const PresentIf& present) { return !present.given; }
  template <class Rule>
  static void collect_default_text(const Rule&, const char**) {}
  static void collect_default_text(const DefaultText& text, const char** out) { *out = text.text; }

  std::string text_;
};

template <class Options>
std::string format_options(Options options) {  // a copy: visiting needs a mutable struct
  OptionsPrinter printer;
  options.visit(printer);
  return printer.text();
}

// ---- assign_option: a value from elsewhere, written as if given.

// Converts `value` (text, a number or a bool) to the field's type, or fails naming `where`.
template <class T, class Value, class... Rules>
void convert_into(T& field, const Value& value, const std::string& where, const Rules&... rules) {
  if constexpr (std::convertible_to<Value, std::string_view>) {
    parse_into(field, std::string(std::string_view(value)), where, rules...);
  } else if constexpr (std::same_as<T, bool> || std::same_as<Value, bool>) {
    static_assert(std::same_as<T, Value>, "a flag takes a bool, and only a flag does");
    field = value;
  } else if constexpr (std::integral<T> && std::integral<Value>) {
    ZT_CHECK(std::in_range<T>(value), where, " is out of range, got ", value);
    field = static_cast<T>(value);
  } else if constexpr (std::same_as<T, double> && std::is_arithmetic_v<Value>) {
    field = static_cast<double>(value);
  } else {
    static_assert(std::same_as<T, Value>, "no conversion to this option's type");
    field = value;
  }
}

template <class Field, class Value>
class OptionAssigner {
 public:
  OptionAssigner(const Field* target, const Value& value, const std::string& where)
      : target_(target), value_(value), where_(where) {}

  template <class T, class... Rules>
  void operator()(T& field, const char* /*spellings*/, const char* /*value_name*/,
                  const char* /*help*/, const Rules&... rules) {
    if constexpr (std::same_as<T, Field>) {
      if (&field != target_) return;
      T value = field;  // the field changes only once the value passed its rules
      convert_into(value, value_, where_, rules...);
      (check_rule(rules, value, where_), ...);
      field = std::move(value);
      (mark_given(rules), ...);
      found_ = true;
    }
  }
  bool found() const { return found_; }

 private:
  const Field* target_;
  const Value& value_;
  const std::string& where_;
  bool found_ = false;
};

// Sets the option whose field is `field` (a member of `options`) to `value` as if it had been
// given, then checks that option's rules; errors name `where`, the value's source.
template <class Options, class Field, class Value>
void assign_option(Options& options, Field& field, const Value& value, const std::string& where) {
  OptionAssigner<Field, Value> assigner(&field, value, where);
  options.visit(assigner);
  ZT_CHECK(assigner.found(), "internal: ", where, " names a field that is not an option");
}

}  // namespace zerotune::opt
