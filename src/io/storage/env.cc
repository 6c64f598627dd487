#include "io/storage/env.h"

#include <cerrno>
#include <cstdlib>

#include "core/check.h"

namespace zerotune::storage {

std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

std::optional<int64_t> env_integer(const char* name, int64_t min, int64_t max,
                                   const std::string& range) {
  const std::string text = env_or_empty(name);
  if (text.empty()) return std::nullopt;
  // strtoll, not atoll: "abc" or "10x" must be refused, not read as 0 or 10.
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  const bool whole = end != text.c_str() && *end == '\0' && errno == 0;
  ZT_CHECK(whole && value >= min && value <= max, name, " must be ",
           range.empty() ? str(min, "-", max) : range, ", got '", text, "'");
  return static_cast<int64_t>(value);
}

}  // namespace zerotune::storage
