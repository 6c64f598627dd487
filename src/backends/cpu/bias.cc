#include "kernels/bias.h"

#include <algorithm>
#include <vector>

namespace zerotune::cpu {

void bias_forward(float* y, const float* bias, int64_t n, int64_t out) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float* row = y + i * out;
#pragma omp simd
    for (int64_t j = 0; j < out; ++j) row[j] += bias[j];
  }
}

// Threads split the columns; each column's sum runs over the rows in order, so the result does
// not depend on the thread count.
void bias_backward(float* dbias, const float* dy, int64_t n, int64_t out) {
  constexpr int64_t kColumns = 256;  // columns per parallel block: a row strip stays in L1
#pragma omp parallel for schedule(static)
  for (int64_t first = 0; first < out; first += kColumns) {
    const int64_t count = std::min(kColumns, out - first);
    std::vector<double> sums(static_cast<size_t>(count), 0.0);  // [count]
    for (int64_t i = 0; i < n; ++i) {
      const float* row = dy + i * out + first;
      for (int64_t j = 0; j < count; ++j) sums[static_cast<size_t>(j)] += row[j];
    }
    for (int64_t j = 0; j < count; ++j) {
      dbias[first + j] += static_cast<float>(sums[static_cast<size_t>(j)]);
    }
  }
}

}  // namespace zerotune::cpu
