#include "cli/args.h"

#include <cstdio>
#include <cstdlib>

#include "core/check.h"

namespace zerotune {

Args::Args(std::string command, std::string summary)
    : command_(std::move(command)), summary_(std::move(summary)) {}

static std::vector<std::string> split_names(const std::string& names) {
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

Args& Args::option(const std::string& names, const std::string& value_name, const std::string& help,
                   const std::string& default_value) {
  specs_.push_back({split_names(names), value_name, help, default_value, true});
  return *this;
}

Args& Args::flag(const std::string& names, const std::string& help) {
  specs_.push_back({split_names(names), "", help, "", false});
  return *this;
}

const Args::Spec* Args::lookup(const std::string& spelling) const {
  for (const Spec& s : specs_) {
    for (const std::string& n : s.names) {
      if (n == spelling) return &s;
    }
  }
  return nullptr;
}

const Args::Spec& Args::spec(const std::string& name) const {
  const Spec* s = lookup(name);
  ZT_CHECK(s, "internal: ", command_, " has no flag ", name);
  return *s;
}

bool Args::parse(int argc, char** argv, int first) {
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
    } else {
      ZT_CHECK(!inline_value, command_, ": ", arg, " takes no value");
      values_[s->names[0]] = "1";
    }
  }
  return true;
}

bool Args::has(const std::string& name) const {
  return values_.count(spec(name).names[0]) > 0;
}

std::string Args::get(const std::string& name) const {
  const Spec& s = spec(name);
  const auto it = values_.find(s.names[0]);
  return it != values_.end() ? it->second : s.default_value;
}

std::string Args::require(const std::string& name) const {
  const std::string v = get(name);
  ZT_CHECK(!v.empty(), command_, ": ", name, " is required (see ", command_, " --help)");
  return v;
}

int64_t Args::get_int(const std::string& name) const {
  const std::string v = require(name);
  char* end = nullptr;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  ZT_CHECK(end && *end == '\0', command_, ": ", name, " expects an integer, got '", v, "'");
  return x;
}

double Args::get_double(const std::string& name) const {
  const std::string v = require(name);
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  ZT_CHECK(end && *end == '\0', command_, ": ", name, " expects a number, got '", v, "'");
  return x;
}

std::string Args::help() const {
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
    if (!s.default_value.empty()) out += " (default " + s.default_value + ")";
    out += "\n";
  }
  out += "  -h, --help                      this help\n";
  return out;
}

}  // namespace zerotune
