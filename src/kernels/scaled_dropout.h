// y (= or +=) x * scale * keep_i / (1 - p): inverted dropout with a mask that is a pure function of
// (seed, element index), so that the backward, a recomputed (checkpointed) layer and every backend
// draw the same mask without storing it. With p = 0 it is a scaled copy. Used by LoRA adapters.
#pragma once

#include "kernels/common.h"
#include "kernels/element_math.h"

namespace zerotune {

// Whether element i survives dropout with probability p under `seed`: MurmurHash3's 32-bit
// finaliser over a Weyl sequence keyed by the seed (32-bit multiplies, so that the CPU loop
// vectorises), its top 24 bits as a uniform in [0, 1), kept when >= p.
ZT_HD bool dropout_keeps(uint64_t seed, int64_t i, float p) {
  const uint64_t index = static_cast<uint64_t>(i);
  uint32_t z = static_cast<uint32_t>(index) * 0x9E3779B9u + static_cast<uint32_t>(seed) +
               static_cast<uint32_t>(index >> 32) * 0x85EBCA6Bu;
  z ^= static_cast<uint32_t>(seed >> 32);
  z = (z ^ (z >> 16)) * 0x85EBCA6Bu;
  z = (z ^ (z >> 13)) * 0xC2B2AE35u;
  z ^= z >> 16;
  return static_cast<float>(z >> 8) * (1.0f / 16777216.0f) >= p;
}

// y, x: same shape and dtype (f32, or bf16 on CUDA); 0 <= p < 1.
void scaled_dropout(const Tensor& y, const Tensor& x, float scale, float p, uint64_t seed,
                    Accumulate acc = Accumulate::no);

namespace cuda {
void scaled_dropout(const Tensor& y, const Tensor& x, float scale, float p, uint64_t seed,
                    Accumulate acc);
}  // namespace cuda

}  // namespace zerotune
