// Deterministic, seedable random numbers (SplitMix64 + xoshiro256**), identical on every
// platform so that a seed reproduces the same initialisation and data order everywhere.
#pragma once

#include <cstdint>

namespace zerotune {

class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next_u64();
  // Uniform in [0, 1) with 24 random bits.
  float uniform();
  // Standard normal (Box-Muller).
  float normal();
  // Uniform integer in [0, n).
  uint64_t below(uint64_t n);

 private:
  uint64_t s_[4];
};

}  // namespace zerotune
