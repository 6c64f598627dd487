#include "core/profile.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

namespace zerotune {
namespace {

std::mutex& profile_mutex() {
  static std::mutex m;
  return m;
}

std::map<std::string, double>& profile_totals() {
  static std::map<std::string, double> totals;
  return totals;
}

}  // namespace

bool profiling_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("ZEROTUNE_PROFILE");
    return v && *v && std::strcmp(v, "0") != 0;
  }();
  return enabled;
}

void profile_add(const char* region, double seconds) {
  std::lock_guard<std::mutex> lock(profile_mutex());
  profile_totals()[region] += seconds;
}

std::string profile_report() {
  std::lock_guard<std::mutex> lock(profile_mutex());
  std::vector<std::pair<std::string, double>> rows(profile_totals().begin(),
                                                   profile_totals().end());
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  double total = 0.0;
  for (const auto& r : rows) total += r.second;
  std::string out;
  for (const auto& [name, seconds] : rows) {
    char line[160];
    std::snprintf(line, sizeof(line), "%-28s %9.3f s %5.1f%%\n", name.c_str(), seconds,
                  total > 0 ? 100.0 * seconds / total : 0.0);
    out += line;
  }
  return out;
}

void profile_reset() {
  std::lock_guard<std::mutex> lock(profile_mutex());
  profile_totals().clear();
}

}  // namespace zerotune
