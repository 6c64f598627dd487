// Shared by the command-line tests: an argv built from words, the message of a failure, and
// entries of --help.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/check.h"
#include "support/errors.h"

namespace zerotune::testing {

// argv[0] is the program; the flags start at index 1 (parse(argc(), data(), 1)).
class Argv {
 public:
  explicit Argv(std::vector<std::string> flags) : words_(std::move(flags)) {
    words_.insert(words_.begin(), "zerotune");
    for (std::string& w : words_) pointers_.push_back(w.data());
    pointers_.push_back(nullptr);
  }
  int argc() const { return static_cast<int>(words_.size()); }
  char** data() { return pointers_.data(); }

 private:
  std::vector<std::string> words_;
  std::vector<char*> pointers_;
};

// The lines of `text` that start with `prefix` followed by a space, a comma or the line's end.
inline int count_entries(const std::string& text, const std::string& prefix) {
  int count = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    if (line.rfind(prefix, 0) == 0 && (line.size() == prefix.size() || line[prefix.size()] == ' ' ||
                                       line[prefix.size()] == ',')) {
      ++count;
    }
    start = end + 1;
  }
  return count;
}

// The help entry (spellings line plus its continuation) that starts with "  " + `spelling`.
inline std::string help_entry(const std::string& help, const std::string& spelling) {
  size_t at = help.find("\n  " + spelling + " ");
  if (at == std::string::npos) at = help.find("\n  " + spelling + ",");
  if (at == std::string::npos) at = help.find("\n  " + spelling + "\n");
  if (at == std::string::npos) return "";
  size_t end = help.find('\n', at + 1);
  // A long spellings column continues on the next line, indented past the flag column.
  while (end != std::string::npos && help.compare(end + 1, 4, "    ") == 0) {
    end = help.find('\n', end + 1);
  }
  return help.substr(at + 1, end == std::string::npos ? std::string::npos : end - at - 1);
}

}  // namespace zerotune::testing
