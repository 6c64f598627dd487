#include "core/check.h"

namespace zerotune {

void fail(const std::string& message) {
  throw Error(message);
}

}  // namespace zerotune
