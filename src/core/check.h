// Always-on checks. A failed check throws zerotune::Error whose message names the operation
// and says what was expected and what came; the CLI turns it into one line on stderr and a
// non-zero exit. Use ZT_DCHECK only inside hot loops.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace zerotune {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
void append(std::ostringstream& os, const T& first, const Rest&... rest) {
  os << first;
  append(os, rest...);
}
}  // namespace detail

// Builds a message from any streamable parts: str("x is ", shape, " but w is ", other).
template <typename... Parts>
std::string str(const Parts&... parts) {
  std::ostringstream os;
  detail::append(os, parts...);
  return os.str();
}

[[noreturn]] void fail(const std::string& message);

}  // namespace zerotune

#define ZT_CHECK(cond, ...)                                      \
  do {                                                           \
    if (!(cond)) ::zerotune::fail(::zerotune::str(__VA_ARGS__)); \
  } while (0)

#ifdef NDEBUG
#define ZT_DCHECK(cond, ...) \
  do {                       \
  } while (0)
#else
#define ZT_DCHECK(cond, ...) ZT_CHECK(cond, __VA_ARGS__)
#endif
