// A small declarative flag parser: each command declares its flags once, by hand or from an
// options struct (cli/options.h), and the same table drives parsing and --help.
// Header-only: the unit tests link the libraries below the CLI, not the CLI's sources.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/check.h"

namespace zerotune {

class Args {
 public:
  // One flag as --help shows it.
  struct Spec {
    std::vector<std::string> names;    // listed spellings; names[0] is the key of has() and get()
    std::vector<std::string> aliases;  // accepted too, and named in the notes
    std::string value_name;            // what follows the spellings in --help
    std::string help, default_value;   // default_value: shown in --help, and get()'s fallback
    std::vector<std::string> notes;    // shown after the help: "required", "as the Python job"
    bool takes_value = true;           // false: a flag without value
  };

  Args(std::string command, std::string summary)
      : command_(std::move(command)), summary_(std::move(summary)) {}

  // Declares a flag taking a value. `names` holds spellings separated by '|' ("--batch-size|-bs").
  Args& option(const std::string& names, const std::string& value_name, const std::string& help,
               const std::string& default_value = "") {
    return add({split_names(names), {}, value_name, help, default_value, {}, true});
  }
  // Declares a flag without value.
  Args& flag(const std::string& names, const std::string& help) {
    return add({split_names(names), {}, "", help, "", {}, false});
  }
  // Declares a flag described in full. A spelling declared twice is a bug of the command.
  Args& add(Spec spec);

  // Parses argv[first..argc). Returns false when --help was given (help is printed).
  bool parse(int argc, char** argv, int first);

  bool has(const std::string& name) const {  // given on the command line (or flag set)
    return values_.count(spec(name).names[0]) > 0;
  }
  std::string get(const std::string& name) const;
  // Every value given for a flag that may repeat (`--adapter a=X --adapter b=Y`), in order;
  // get() returns the last.
  std::vector<std::string> get_all(const std::string& name) const {
    const auto it = all_values_.find(spec(name).names[0]);
    return it != all_values_.end() ? it->second : std::vector<std::string>{};
  }
  std::string require(const std::string& name) const;  // error when neither given nor defaulted
  int64_t get_int(const std::string& name) const;
  double get_double(const std::string& name) const;
  std::string help() const;
  const std::string& command() const { return command_; }

  static std::vector<std::string> split_names(const std::string& names);

 private:
  const Spec* lookup(const std::string& spelling) const;
  const Spec& spec(const std::string& name) const {
    const Spec* s = lookup(name);
    ZT_CHECK(s, "internal: ", command_, " has no flag ", name);
    return *s;
  }

  std::string command_, summary_;
  std::vector<Spec> specs_;
  std::map<std::string, std::string> values_;                   // keyed by the first spelling
  std::map<std::string, std::vector<std::string>> all_values_;  // the same, each value given
};

inline std::vector<std::string> Args::split_names(const std::string& names) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= names.size()) {
    const size_t bar = names.find('|', start);
    out.push_back(names.substr(start, bar == std::string::npos ? std::string::npos : bar - start));
    if (bar == std::string::npos) break;
    start = bar + 1;
  }
  return out;
}

inline Args& Args::add(Spec spec) {
  for (const std::vector<std::string>* list : {&spec.names, &spec.aliases}) {
    for (const std::string& name : *list) {
      ZT_CHECK(!name.empty() && !lookup(name), "internal: ", command_, " declares '", name,
               "' twice or empty");
    }
  }
  ZT_CHECK(!spec.names.empty(), "internal: ", command_, " declares a flag without a name");
  specs_.push_back(std::move(spec));
  return *this;
}

inline const Args::Spec* Args::lookup(const std::string& spelling) const {
  for (const Spec& s : specs_) {
    for (const std::vector<std::string>* list : {&s.names, &s.aliases}) {
      for (const std::string& n : *list) {
        if (n == spelling) return &s;
      }
    }
  }
  return nullptr;
}

inline bool Args::parse(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(help().c_str(), stdout);
      return false;
    }
    std::string value;
    bool inline_value = false;
    if (const size_t eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
      inline_value = true;
    }
    const Spec* s = lookup(arg);
    ZT_CHECK(s, command_, ": unknown argument '", arg, "' (see ", command_, " --help)");
    if (s->takes_value) {
      if (!inline_value) {
        ZT_CHECK(i + 1 < argc, command_, ": ", arg, " needs a value (", s->value_name, ")");
        value = argv[++i];
      }
      values_[s->names[0]] = value;
      all_values_[s->names[0]].push_back(value);
    } else {
      ZT_CHECK(!inline_value, command_, ": ", arg, " takes no value");
      values_[s->names[0]] = "1";
    }
  }
  return true;
}

inline std::string Args::get(const std::string& name) const {
  const Spec& s = spec(name);
  const auto it = values_.find(s.names[0]);
  return it != values_.end() ? it->second : s.default_value;
}

inline std::string Args::require(const std::string& name) const {
  const std::string v = get(name);
  ZT_CHECK(!v.empty(), command_, ": ", name, " is required (see ", command_, " --help)");
  return v;
}

inline int64_t Args::get_int(const std::string& name) const {
  const std::string v = require(name);
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  ZT_CHECK(end && *end == '\0' && errno != ERANGE, command_, ": ", name,
           " expects an integer, got '", v, "'");
  return x;
}

inline double Args::get_double(const std::string& name) const {
  const std::string v = require(name);
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  ZT_CHECK(end && *end == '\0', command_, ": ", name, " expects a number, got '", v, "'");
  return x;
}

inline std::string Args::help() const {
  std::string out = "usage: " + command_ + " [flags]\n\n" + summary_ + "\n\nflags:\n";
  for (const Spec& s : specs_) {
    std::string left = "  ";
    for (size_t i = 0; i < s.names.size(); ++i) {
      if (i) left.append(", ");
      left.append(s.names[i]);
    }
    if (s.takes_value) left.append(" ").append(s.value_name);
    if (left.size() < 34) {
      left.resize(34, ' ');
    } else {
      left.append("\n").append(34, ' ');
    }
    out.append(left).append(s.help);
    if (!s.default_value.empty()) out += " (default: " + s.default_value + ")";
    std::vector<std::string> notes = s.notes;
    for (const std::string& alias : s.aliases) notes.push_back("alias " + alias);
    for (size_t i = 0; i < notes.size(); ++i) out += (i ? "; " : " (") + notes[i];
    out += notes.empty() ? "\n" : ")\n";
  }
  out += "  -h, --help                      this help\n";
  return out;
}

}  // namespace zerotune
