// A run's settings for its report: every option of an options struct that declares them through
// `visit` (core/option_rules.h), as its first spelling and effective value. The trainer passes
// them to write_run_report, which keeps them in OUTPUT_DIR/settings.json.
#pragma once

#include <string>

#include "core/option_rules.h"
#include "report/run_data.h"

namespace zerotune::report {

class SettingsRecorder {
 public:
  template <class T, class... Rules>
  void operator()(T& field, const char* spellings, const char* /*value_name*/, const char* /*help*/,
                  const Rules&... rules) {
    bool unset = false;
    const char* default_text = "unset";
    (note_rule(rules, &unset, &default_text), ...);
    std::string text;
    if constexpr (opt::kIsFlag<T, Rules...>) {
      // A flag reads as on or off: "--no-shuffle yes" when shuffling is off.
      bool on = false;
      if constexpr ((opt::kIsSetsTo<Rules> || ...)) {
        (flag_on(field, rules, &on), ...);
      } else {
        on = field;
      }
      text = on ? "yes" : "no";
    } else if (unset) {
      text = std::string("(") + default_text + ")";  // a PresentIf option not given
    } else {
      text = opt::format_value(field);
    }
    values_.emplace_back(opt::first_spelling(spellings), text);
  }
  const NamedValues& values() const { return values_; }

 private:
  template <class T, class Rule>
  static void flag_on(const T&, const Rule&, bool*) {}
  template <class T>
  static void flag_on(const T& field, const opt::SetsTo<T>& sets, bool* on) {
    *on = field == sets.value;
  }
  template <class Rule>
  static void note_rule(const Rule&, bool*, const char**) {}
  static void note_rule(const opt::PresentIf& present, bool* unset, const char**) {
    *unset = !present.given;
  }
  static void note_rule(const opt::DefaultText& text, bool*, const char** out) { *out = text.text; }

  NamedValues values_;
};

// `options` is a copy: visiting needs a mutable struct.
template <class Options>
NamedValues option_settings(Options options) {
  SettingsRecorder recorder;
  options.visit(recorder);
  return recorder.values();
}

}  // namespace zerotune::report
