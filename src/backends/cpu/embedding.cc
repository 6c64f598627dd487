#include "kernels/embedding.h"

#include <cstring>

namespace zerotune::cpu {

void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t n, int64_t d) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(out + i * d, table + static_cast<int64_t>(ids[i]) * d,
                static_cast<size_t>(d) * sizeof(float));
  }
}

// Threads own disjoint column ranges and walk the tokens in order, so every row of dtable is
// summed in the same order whatever the thread count: bit-reproducible without atomics.
void embedding_backward(float* dtable, const int32_t* ids, const float* dout, int64_t n,
                        int64_t d) {
  constexpr int64_t kColumnBlock = 64;
  const int64_t blocks = (d + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t c0 = blk * kColumnBlock;
    const int64_t c1 = c0 + kColumnBlock < d ? c0 + kColumnBlock : d;
    for (int64_t i = 0; i < n; ++i) {
      float* row = dtable + static_cast<int64_t>(ids[i]) * d;
      const float* g = dout + i * d;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) row[c] += g[c];
    }
  }
}

}  // namespace zerotune::cpu
