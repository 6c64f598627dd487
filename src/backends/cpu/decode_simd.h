// Fixed-order SIMD arithmetic for the decode kernels, written with intrinsics rather than left to
// the auto-vectoriser: a loop the compiler vectorises may peel a different number of leading
// elements for differently aligned rows, or vectorise one copy of a loop and not another, and
// then the same dot product rounds differently for a row at another place in the batch. Here a
// dot product of n elements is always: lane l accumulates elements l, l + kLanes, ... of the
// whole vectors with fused multiply-adds, the lanes are summed in one fixed tree (halves first),
// and the tail (n % kLanes elements) is added in order with fused multiply-adds.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace zerotune::cpu::simd {

#if defined(__AVX512F__)

constexpr int64_t kLanes = 16;
using Vec = __m512;
inline Vec zero() {
  return _mm512_setzero_ps();
}
inline Vec load(const float* p) {
  return _mm512_loadu_ps(p);
}
inline Vec broadcast(float v) {
  return _mm512_set1_ps(v);
}
inline void store(float* p, Vec v) {
  _mm512_storeu_ps(p, v);
}
inline Vec fma(Vec a, Vec b, Vec c) {  // a * b + c, one rounding
  return _mm512_fmadd_ps(a, b, c);
}
// The lanes' sum as a tree: lane l + lane l+8, then + l+4, + l+2, + l+1. (Shuffles spelled as
// GCC/Clang vector builtins: GCC 12's shuffle intrinsics trip -Wuninitialized.)
inline float sum(Vec v) {
  v = _mm512_add_ps(
      v, __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7));
  v = _mm512_add_ps(
      v, __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11));
  v = _mm512_add_ps(
      v, __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13));
  v = _mm512_add_ps(
      v, __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14));
  return v[0];
}

#elif defined(__AVX2__) && defined(__FMA__)

constexpr int64_t kLanes = 8;
using Vec = __m256;
inline Vec zero() {
  return _mm256_setzero_ps();
}
inline Vec load(const float* p) {
  return _mm256_loadu_ps(p);
}
inline Vec broadcast(float v) {
  return _mm256_set1_ps(v);
}
inline void store(float* p, Vec v) {
  _mm256_storeu_ps(p, v);
}
inline Vec fma(Vec a, Vec b, Vec c) {
  return _mm256_fmadd_ps(a, b, c);
}
// Lane l + lane l+4, then + l+2, + l+1.
inline float sum(Vec v) {
  v = _mm256_add_ps(v, __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3));
  v = _mm256_add_ps(v, __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5));
  v = _mm256_add_ps(v, __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6));
  return v[0];
}

#else  // portable builds: four scalar lanes with the same structure

constexpr int64_t kLanes = 4;
struct Vec {
  float lane[4];
};
inline Vec zero() {
  return Vec{{0.0f, 0.0f, 0.0f, 0.0f}};
}
inline Vec load(const float* p) {
  return Vec{{p[0], p[1], p[2], p[3]}};
}
inline Vec broadcast(float v) {
  return Vec{{v, v, v, v}};
}
inline void store(float* p, Vec v) {
  for (int l = 0; l < 4; ++l) p[l] = v.lane[l];
}
inline Vec fma(Vec a, Vec b, Vec c) {
  Vec r;
  for (int l = 0; l < 4; ++l) r.lane[l] = std::fma(a.lane[l], b.lane[l], c.lane[l]);
  return r;
}
inline float sum(Vec v) {  // lane l + lane l+2, then + l+1
  return (v.lane[0] + v.lane[2]) + (v.lane[1] + v.lane[3]);
}

#endif

// Keeps v in a register: the compiler would otherwise fold a load used by several multiply-adds
// into each of them, and loads are what bounds the decode tiles.
inline void keep_in_register([[maybe_unused]] Vec& v) {
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
  asm("" : "+v"(v));
#endif
}

// Elements of an n-long dot product that whole vectors cover.
inline int64_t vector_part(int64_t n) {
  return n - n % kLanes;
}

// The lanes' sum plus the tail a[k] * b[k], k in [vector_part(n), n), in order.
inline float finish_dot(Vec lanes, const float* a, const float* b, int64_t n) {
  float total = sum(lanes);
  for (int64_t k = vector_part(n); k < n; ++k) total = std::fma(a[k], b[k], total);
  return total;
}

// sum_k a[k] * b[k] in the fixed order above.
inline float dot(const float* a, const float* b, int64_t n) {
  Vec lanes = zero();
  const int64_t whole = vector_part(n);
  for (int64_t k = 0; k < whole; k += kLanes) lanes = fma(load(a + k), load(b + k), lanes);
  return finish_dot(lanes, a, b, n);
}

// y[k] += p * v[k] for k < n, one fused multiply-add per element (elements are independent:
// there is no order to fix, only the rounding).
inline void add_scaled(float* y, float p, const float* v, int64_t n) {
  const int64_t whole = vector_part(n);
  const Vec p_v = broadcast(p);
  for (int64_t k = 0; k < whole; k += kLanes) store(y + k, fma(p_v, load(v + k), load(y + k)));
  for (int64_t k = whole; k < n; ++k) y[k] = std::fma(p, v[k], y[k]);
}

}  // namespace zerotune::cpu::simd
