// y (= or +=) x * scale * keep_i / (1 - p): inverted dropout with a mask that is a pure function of
// (seed, element index), so that the backward, a recomputed (checkpointed) layer and every backend
// draw the same mask without storing it. With p = 0 it is a scaled copy. Used by LoRA adapters.
#pragma once

#include "kernels/common.h"
#include "kernels/element_math.h"

namespace zerotune {

// Whether element i survives dropout with probability p under `seed`: SplitMix64's finaliser of
// (seed, i), its top 24 bits as a uniform in [0, 1), kept when >= p.
ZT_HD bool dropout_keeps(uint64_t seed, int64_t i, float p) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (static_cast<uint64_t>(i) + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) * (1.0f / 16777216.0f) >= p;
}

// y, x: same shape and dtype (f32, or bf16 on CUDA); 0 <= p < 1.
void scaled_dropout(const Tensor& y, const Tensor& x, float scale, float p, uint64_t seed,
                    Accumulate acc = Accumulate::no);

namespace cuda {
void scaled_dropout(const Tensor& y, const Tensor& x, float scale, float p, uint64_t seed,
                    Accumulate acc);
}  // namespace cuda

}  // namespace zerotune
