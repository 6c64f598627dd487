// The decode step's matrix product (kernels/decode_linear.h): a tile of kOut weight rows times
// kRows rows of x keeps kOut * kRows accumulators in registers; each weight vector is loaded once
// per tile and used for every row of x, so the weights stream from memory once per step.
// Every accumulator follows simd::dot's order exactly, so the tiling does not change a bit.
#include "kernels/decode_linear.h"

#include <algorithm>

#include "backends/cpu/decode_simd.h"

namespace zerotune::cpu {
namespace {

using simd::kLanes;
using simd::Vec;

// Tile sizes within the vector registers (16 zmm or 16 ymm accumulators at most): AVX-512 has
// 32 registers, AVX2 16.
#if defined(__AVX512F__)
constexpr int kRowTile = 4;
constexpr int kOutTile = 4;
#else
constexpr int kRowTile = 2;
constexpr int kOutTile = 4;
#endif

struct LinearArgs {
  float* y;        // [N, out]
  const float* x;  // [N, in]
  const float* w;  // [out, in]
  int64_t in, out;
  bool accumulate;
};

// y[i0 + r, o0 + a] (+)= x[i0 + r] . w[o0 + a] for a < kOut, r < kRows.
template <int kOut, int kRows>
void tile(const LinearArgs& args, int64_t o0, int64_t i0) {
  const int64_t in = args.in, whole = simd::vector_part(in);
  const float* w_rows[kOut];
  const float* x_rows[kRows];
  for (int a = 0; a < kOut; ++a) w_rows[a] = args.w + (o0 + a) * in;
  for (int r = 0; r < kRows; ++r) x_rows[r] = args.x + (i0 + r) * in;
  Vec acc[kOut][kRows];
  for (int a = 0; a < kOut; ++a) {
    for (int r = 0; r < kRows; ++r) acc[a][r] = simd::zero();
  }
  for (int64_t k = 0; k < whole; k += kLanes) {
    Vec wv[kOut];
    for (int a = 0; a < kOut; ++a) wv[a] = simd::load(w_rows[a] + k);
    for (int r = 0; r < kRows; ++r) {
      const Vec xv = simd::load(x_rows[r] + k);
      for (int a = 0; a < kOut; ++a) acc[a][r] = simd::fma(wv[a], xv, acc[a][r]);
    }
  }
  for (int r = 0; r < kRows; ++r) {
    float* y_row = args.y + (i0 + r) * args.out + o0;
    for (int a = 0; a < kOut; ++a) {
      const float dot = simd::finish_dot(acc[a][r], w_rows[a], x_rows[r], in);
      y_row[a] = args.accumulate ? y_row[a] + dot : dot;
    }
  }
}

// Rows of x in tiles of kRowTile, the remainder in tiles of 2 and 1.
template <int kOut>
void all_rows(const LinearArgs& args, int64_t o0, int64_t n) {
  int64_t i0 = 0;
  for (; i0 + kRowTile <= n; i0 += kRowTile) tile<kOut, kRowTile>(args, o0, i0);
  if constexpr (kRowTile > 2) {
    if (n - i0 >= 2) {
      tile<kOut, 2>(args, o0, i0);
      i0 += 2;
    }
  }
  if (n - i0 == 1) tile<kOut, 1>(args, o0, i0);
}

}  // namespace

void decode_linear(float* y, const float* x, const float* w, int64_t n, int64_t in, int64_t out,
                   bool accumulate) {
  if (n == 0 || out == 0) return;
  const LinearArgs args{y, x, w, in, out, accumulate};
  const int64_t out_tiles = out / kOutTile;
  // Whole tiles of weight rows are split among the threads; each writes its own columns of y.
  // A step's largest products take milliseconds, the smallest microseconds: threads only where
  // the weights are big enough to pay for the fork.
  const bool parallel = out * in >= (int64_t{1} << 14);
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t t = 0; t < out_tiles; ++t) all_rows<kOutTile>(args, t * kOutTile, n);
  for (int64_t o0 = out_tiles * kOutTile; o0 < out; ++o0) all_rows<1>(args, o0, n);
}

}  // namespace zerotune::cpu
