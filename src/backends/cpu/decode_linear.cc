// The decode step's matrix product (kernels/decode_linear.h): a tile of kOut weight rows times
// kRows rows of x keeps kOut * kRows accumulators in registers; each weight vector is loaded once
// per tile and used for every row of x. A step of up to kWideRows sequences takes all its rows in
// one tile, so the weights stream from memory once and the arithmetic overlaps the stream (a
// second pass over a tile would run from cache with nothing to overlap).
// Every accumulator follows simd::dot's order exactly, so the tiling does not change a bit.
#include "kernels/decode_linear.h"

#include <algorithm>

#include "backends/cpu/decode_simd.h"

namespace zerotune::cpu {
namespace {

using simd::kLanes;
using simd::Vec;

// Tiles within the vector registers (AVX-512 has 32, AVX2 16): few rows of x with 4 weight rows
// (independent accumulators hide the FMA latency), or many rows of x with fewer weight rows.
// Loads, not multiply-adds, bound a tile's arithmetic: kOut + kRows vector loads per
// kOut * kRows multiply-adds.
#if defined(__AVX512F__)
constexpr int kNarrowRows = 4;  // with 4 weight rows: 16 accumulators
constexpr int kWideOut = 3;
constexpr int kWideRows = 8;  // 24 accumulators
#else
constexpr int kNarrowRows = 2;  // with 4 weight rows: 8 accumulators
constexpr int kWideOut = 2;
constexpr int kWideRows = 4;  // 8 accumulators
#endif
// Weights stream from memory once per step: each row is prefetched this many floats ahead,
// marked as used once (they would only push the activations out of the caches).
constexpr int64_t kPrefetchAhead = 64;

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
    for (int a = 0; a < kOut; ++a) {
      __builtin_prefetch(w_rows[a] + k + kPrefetchAhead, 0, 0);
      wv[a] = simd::load(w_rows[a] + k);
    }
    for (int r = 0; r < kRows; ++r) {
      Vec xv = simd::load(x_rows[r] + k);
      simd::keep_in_register(xv);
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

// Rows of x in tiles of kRows, the remainder in tiles of 4, 2 and 1.
template <int kOut, int kRows>
void all_rows(const LinearArgs& args, int64_t o0, int64_t n) {
  int64_t i0 = 0;
  for (; i0 + kRows <= n; i0 += kRows) tile<kOut, kRows>(args, o0, i0);
  if constexpr (kRows > 4) {
    if (n - i0 >= 4) {
      tile<kOut, 4>(args, o0, i0);
      i0 += 4;
    }
  }
  if constexpr (kRows > 2) {
    if (n - i0 >= 2) {
      tile<kOut, 2>(args, o0, i0);
      i0 += 2;
    }
  }
  if (n - i0 == 1) tile<kOut, 1>(args, o0, i0);
}

// Whole tiles of kOut weight rows are split among the threads, each writing its own columns of
// y; the last out % kOut rows follow one at a time.
template <int kOut, int kRows>
void all_tiles(const LinearArgs& args, int64_t n) {
  const int64_t out_tiles = args.out / kOut;
  // A step's largest products take milliseconds, the smallest microseconds: threads only where
  // the weights are big enough to pay for the fork.
  const bool parallel = args.out * args.in >= (int64_t{1} << 14);
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t t = 0; t < out_tiles; ++t) all_rows<kOut, kRows>(args, t * kOut, n);
  for (int64_t o0 = out_tiles * kOut; o0 < args.out; ++o0) all_rows<1, kRows>(args, o0, n);
}

}  // namespace

void decode_linear(float* y, const float* x, const float* w, int64_t n, int64_t in, int64_t out,
                   bool accumulate) {
  if (n == 0 || out == 0) return;
  const LinearArgs args{y, x, w, in, out, accumulate};
  if (n <= kNarrowRows) {
    all_tiles<4, kNarrowRows>(args, n);
  } else {
    all_tiles<kWideOut, kWideRows>(args, n);
  }
}

}  // namespace zerotune::cpu
