#include "core/timer.h"

#include <cmath>
#include <algorithm>
#include <cstdio>

namespace zerotune {

std::string clock_text(double seconds) {
  const long long t = std::isfinite(seconds) ? std::llround(std::max(seconds, 0.0)) : 0;
  char buf[32];
  if (t >= 3600) {
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm", t / 3600, t % 3600 / 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", t / 60, t % 60);
  }
  return buf;
}

}  // namespace zerotune
