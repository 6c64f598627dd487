// Opt-in wall-clock accounting per named region (ZEROTUNE_PROFILE=1), printed by the bench.
// Costs one branch per region when off.
#pragma once

#include <chrono>
#include <string>

namespace zerotune {

bool profiling_enabled();
void profile_add(const char* region, double seconds);
std::string profile_report();  // "region: seconds (percent)" lines, largest first
void profile_reset();

class ProfileScope {
 public:
  explicit ProfileScope(const char* region)
      : region_(profiling_enabled() ? region : nullptr),
        start_(region_ ? std::chrono::steady_clock::now()
                       : std::chrono::steady_clock::time_point{}) {}
  ~ProfileScope() {
    if (region_) {
      profile_add(region_,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    }
  }
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  const char* region_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace zerotune
