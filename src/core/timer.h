#pragma once

#include <chrono>
#include <string>

namespace zerotune {

class Timer {
 public:
  Timer() : start_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  void reset() { start_ = std::chrono::steady_clock::now(); }

 private:
  std::chrono::steady_clock::time_point start_;
};

// A duration for progress lines and ETAs: "4m07s", or "2h15m" from an hour on.
std::string clock_text(double seconds);

}  // namespace zerotune
