// A small declarative flag parser: each command declares its flags once, and the same table
// drives parsing, validation and --help.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace zerotune {

class Args {
 public:
  Args(std::string command, std::string summary);

  // Declares a flag taking a value. `names` holds spellings separated by '|' ("--batch-size|-bs").
  Args& option(const std::string& names, const std::string& value_name, const std::string& help,
               const std::string& default_value = "");
  // Declares a flag without value.
  Args& flag(const std::string& names, const std::string& help);
  // Parses argv[first..argc). Returns false when --help was given (help is printed).
  bool parse(int argc, char** argv, int first);

  bool has(const std::string& name) const;  // given on the command line (or flag set)
  std::string get(const std::string& name) const;
  std::string require(const std::string& name) const;  // error when neither given nor defaulted
  int64_t get_int(const std::string& name) const;
  double get_double(const std::string& name) const;
  std::string help() const;

 private:
  struct Spec {
    std::vector<std::string> names;
    std::string value_name, help, default_value;
    bool takes_value;
  };
  const Spec* lookup(const std::string& spelling) const;
  const Spec& spec(const std::string& name) const;

  std::string command_, summary_;
  std::vector<Spec> specs_;
  std::map<std::string, std::string> values_;  // keyed by the first spelling
};

}  // namespace zerotune
