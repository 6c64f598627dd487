// Device bodies of the tensor-core (mma.sync bf16) flash attention, after FlashAttention-2
// (Dao, 2023, arXiv:2307.08691): a CTA of 4 warps owns a 64-row tile and each warp 16 of its rows;
// scores and probabilities never leave registers. attention_flash.cu launches them.
//
// Shared tiles are [64, Dh] bf16 with rows Dh + 8 elements apart: the 16 bytes of padding put the
// 8 rows that one ldmatrix matrix reads in 8 different bank groups, and keep every fragment's
// address a constant offset from one per-lane base (an immediate, not a register).
// Scores are kept in base 2: s2 = (q . k) * log2(e) / sqrt(Dh), and lse = ln 2 * (max + log2 sum),
// the natural log-sum-exp of the scaled scores that the simple kernels also write.
#pragma once

#include <cmath>
#include <cstdint>

#include "backends/cuda/attention_flash_mma.cuh"
#include "backends/cuda/element_types.cuh"

namespace zerotune::cuda::flash {

constexpr int kTile = 64;  // query rows of a query tile and keys of a key tile
constexpr int kWarps = 4;  // warp w owns rows [16 w, 16 w + 16) of the CTA's 64-row tile
constexpr int kThreads = kWarps * 32;
constexpr int kHalf = 32;  // the key-side backward takes a query tile in two halves (registers)
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

struct ForwardArgs {
  bf16* out;                // [B*T, H*Dh]
  float* lse;               // [B, H, T]
  const bf16* qkv;          // [B*T, (H+2Hkv)*Dh]
  const int32_t* segments;  // [B*T] or null
  int64_t seq, heads, kv_heads;
  float scale_log2;  // log2(e) / sqrt(Dh)
};

struct BackwardArgs {
  bf16* dqkv;               // [B*T, (H+2Hkv)*Dh]
  const bf16* dout;         // [B*T, H*Dh]
  const bf16* qkv;          // [B*T, (H+2Hkv)*Dh]
  const float* lse;         // [B, H, T]
  const float* delta;       // [B, H, T]: dout_i . out_i
  const int32_t* segments;  // [B*T] or null
  int64_t seq, heads, kv_heads;
  float scale;       // 1 / sqrt(Dh)
  float scale_log2;  // log2(e) / sqrt(Dh)
};

template <int Dh>
constexpr int kStride = Dh + 8;  // elements from one shared tile row to the next
template <int Dh>
constexpr int kTileElems = kTile* kStride<Dh>;

template <int Dh>
constexpr size_t forward_smem_bytes() {  // K, V tiles (Q passes through V's)
  return 2 * sizeof(bf16) * kTileElems<Dh>;
}
template <int Dh>
constexpr size_t dq_smem_bytes() {  // Q, dO, K, V tiles
  return 4 * sizeof(bf16) * kTileElems<Dh>;
}
template <int Dh>
constexpr size_t dkv_smem_bytes() {  // K, V, Q, dO tiles; lse and delta of the query tile
  return 4 * sizeof(bf16) * kTileElems<Dh> + 2 * sizeof(float) * kTile;
}

// Element offset of (row, col) in a shared tile.
template <int Dh>
__host__ __device__ constexpr int tile_offset(int row, int col) {
  return row * kStride<Dh> + col;
}

// Byte offset of the 16x16 block at (row, col) from the block at (0, 0).
template <int Dh>
__host__ __device__ constexpr uint32_t block_at(int row, int col) {
  return static_cast<uint32_t>(sizeof(bf16) * tile_offset<Dh>(row, col));
}

// The byte offset that lane `lane` gives ldmatrix_x4 to read the 16x16 block at (0, 0) as
// - rows16: matrices (rows 0-7, cols 0-7), (8-15, 0-7), (0-7, 8-15), (8-15, 8-15): the A operand
//   of a row-major tile, or, read transposed, the B operands (b0, b1) of n-tiles 0-7 then 8-15 of
//   a tile stored [k][n];
// - nk: matrices (rows 0-7, cols 0-7), (0-7, 8-15), (8-15, 0-7), (8-15, 8-15): the B operands
//   (b0, b1) of n-tiles 0-7 then 8-15 of a tile stored [n][k] (K for Q K^T, say).
template <int Dh>
__device__ __forceinline__ uint32_t rows16_lane(int lane) {
  return block_at<Dh>(lane % 16, lane / 16 * 8);
}
template <int Dh>
__device__ __forceinline__ uint32_t nk_lane(int lane) {
  return block_at<Dh>(lane % 8 + lane / 16 * 8, lane / 8 % 2 * 8);
}

// Rows [0, rows) of a [64, Dh] tile from `src` (row stride `stride` elements) by cp.async; rows
// [rows, 64) are zeroed: their products are masked, but 0 * (stale NaN bits) would still be NaN.
template <int Dh>
__device__ __forceinline__ void load_tile(bf16* tile, const bf16* src, int64_t stride,
                                          int64_t rows) {
  constexpr int kChunks = Dh / 8;  // 16-byte chunks per row
  constexpr int kRowsPerRound = kThreads / kChunks;
  static_assert(kThreads % kChunks == 0 && kTile % kRowsPerRound == 0, "whole rounds of rows");
  const int first_row = static_cast<int>(threadIdx.x) / kChunks;
  const int col = static_cast<int>(threadIdx.x) % kChunks * 8;
  const bf16* from = src + first_row * stride + col;
  bf16* to = tile + tile_offset<Dh>(first_row, col);
#pragma unroll 1
  for (int round = 0; round < kTile / kRowsPerRound; ++round) {  // the same count in every lane
    if (first_row + round * kRowsPerRound < rows) {
      cp_async_16(to, from);
    } else {
      store_zero_16(to);
    }
    from += kRowsPerRound * stride;
    to += kRowsPerRound * kStride<Dh>;
  }
}

// Rows of the 64-row tile starting at position `start` that lie inside a sequence of `seq`.
__device__ __forceinline__ int64_t rows_in_tile(int64_t start, int64_t seq) {
  return seq - start < kTile ? seq - start : int64_t{kTile};
}

// Whether the query at position `row` sees the key at position `key` of one sequence;
// `segments` points at the sequence's ids or is null.
__device__ __forceinline__ bool visible(const int32_t* segments, int64_t seq, int64_t row,
                                        int64_t key) {
  if (key > row) return false;
  return segments == nullptr || (row < seq && segments[row] == segments[key]);
}

// The A operand for k-step `kk` from f32 accumulators whose n-tiles 2 kk and 2 kk + 1 are the
// step's 16 columns (see attention_flash_mma.cuh).
template <int N>
__device__ __forceinline__ void accumulators_as_a(uint32_t (&a)[4], const float (&acc)[N][4],
                                                  int kk) {
  a[0] = pack_bf16x2(acc[2 * kk][0], acc[2 * kk][1]);
  a[1] = pack_bf16x2(acc[2 * kk][2], acc[2 * kk][3]);
  a[2] = pack_bf16x2(acc[2 * kk + 1][0], acc[2 * kk + 1][1]);
  a[3] = pack_bf16x2(acc[2 * kk + 1][2], acc[2 * kk + 1][3]);
}

// acc[16 rows x Dh] += A[16 rows x 64] V[64 x Dh], A given as accumulators [8 n-tiles] of a warp
// and V a shared [64, Dh] tile (`v_rows16`: its address plus rows16_lane) read transposed.
template <int Dh>
__device__ __forceinline__ void accumulate_times_tile(float (&acc)[Dh / 8][4],
                                                      const float (&a_acc)[kTile / 8][4],
                                                      uint32_t v_rows16) {
#pragma unroll
  for (int kk = 0; kk < kTile / 16; ++kk) {
    uint32_t a[4];
    accumulators_as_a(a, a_acc, kk);
#pragma unroll
    for (int dp = 0; dp < Dh / 16; ++dp) {
      uint32_t b[4];
      ldmatrix_x4_trans(b, v_rows16 + block_at<Dh>(kk * 16, dp * 16));
      mma_bf16_16816(acc[2 * dp], a, b[0], b[1]);
      mma_bf16_16816(acc[2 * dp + 1], a, b[2], b[3]);
    }
  }
}

// The backward's two score-shaped products of a warp's 16 rows with N rows of shared tiles, over
// the head dimension: c1 = A1 B1^T and c2 = A2 B2^T ([16 x N] each, zeroed first). a1 and a2
// address the warp's A rows (rows16_lane layout), b1 and b2 the first of the N B rows (nk_lane).
template <int Dh, int N>
__device__ __forceinline__ void two_products(float (&c1)[N / 8][4], float (&c2)[N / 8][4],
                                             uint32_t a1, uint32_t a2, uint32_t b1, uint32_t b2) {
#pragma unroll
  for (int nt = 0; nt < N / 8; ++nt) {
#pragma unroll
    for (int e = 0; e < 4; ++e) c1[nt][e] = c2[nt][e] = 0.0f;
  }
#pragma unroll
  for (int ks = 0; ks < Dh / 16; ++ks) {
    uint32_t f1[4], f2[4];
    ldmatrix_x4(f1, a1 + block_at<Dh>(0, ks * 16));
    ldmatrix_x4(f2, a2 + block_at<Dh>(0, ks * 16));
#pragma unroll
    for (int np = 0; np < N / 16; ++np) {
      uint32_t g1[4], g2[4];
      ldmatrix_x4(g1, b1 + block_at<Dh>(np * 16, ks * 16));
      mma_bf16_16816(c1[2 * np], f1, g1[0], g1[1]);
      mma_bf16_16816(c1[2 * np + 1], f1, g1[2], g1[3]);
      ldmatrix_x4(g2, b2 + block_at<Dh>(np * 16, ks * 16));
      mma_bf16_16816(c2[2 * np], f2, g2[0], g2[1]);
      mma_bf16_16816(c2[2 * np + 1], f2, g2[2], g2[3]);
    }
  }
}

// One (query tile, head, sequence) per CTA: grid (ceil(T/64), H, B).
template <int Dh>
__device__ __forceinline__ void forward_tile(const ForwardArgs& a, bf16* smem) {
  constexpr int kSteps = Dh / 16;    // k-steps of Q K^T over the head dim
  constexpr int kDimTiles = Dh / 8;  // n-tiles of the output over the head dim
  bf16* k_tile = smem;
  bf16* v_tile = smem + kTileElems<Dh>;
  bf16* q_tile = v_tile;  // read into registers before V(0) lands there
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, c = lane % 4;
  const uint32_t q_a = shared_address(q_tile) + rows16_lane<Dh>(lane) + block_at<Dh>(warp * 16, 0);
  const uint32_t k_nk = shared_address(k_tile) + nk_lane<Dh>(lane);
  const uint32_t v_rows16 = shared_address(v_tile) + rows16_lane<Dh>(lane);
  const int64_t q_block = gridDim.x - 1 - blockIdx.x;  // the longest rows start first
  const int64_t h = blockIdx.y, b = blockIdx.z, seq = a.seq;
  const int64_t kv = h / (a.heads / a.kv_heads);
  const int64_t width = (a.heads + 2 * a.kv_heads) * Dh;
  const int64_t q0 = q_block * kTile;
  const bf16* seq_qkv = a.qkv + b * seq * width;
  const bf16* k_col = seq_qkv + (a.heads + kv) * Dh;
  const bf16* v_col = seq_qkv + (a.heads + a.kv_heads + kv) * Dh;
  const int32_t* segments = a.segments ? a.segments + b * seq : nullptr;
  const int64_t rows[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};

  load_tile<Dh>(q_tile, seq_qkv + q0 * width + h * Dh, width, rows_in_tile(q0, seq));
  load_tile<Dh>(k_tile, k_col, width, rows_in_tile(0, seq));
  cp_async_commit();
  cp_async_wait_all();
  __syncthreads();
  uint32_t q_frag[kSteps][4];
#pragma unroll
  for (int ks = 0; ks < kSteps; ++ks) ldmatrix_x4(q_frag[ks], q_a + block_at<Dh>(0, ks * 16));

  float o[kDimTiles][4];
#pragma unroll
  for (int dt = 0; dt < kDimTiles; ++dt) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.0f;
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.0f, 0.0f};  // base-2 units

  for (int64_t kt = 0; kt <= q_block; ++kt) {
    const int64_t k0 = kt * kTile;
    cp_async_wait_all();
    __syncthreads();  // K(kt) is in, and no warp reads V(kt - 1) (or Q) any more
    load_tile<Dh>(v_tile, v_col + k0 * width, width, rows_in_tile(k0, seq));
    cp_async_commit();

    float s[kTile / 8][4];
#pragma unroll
    for (int nt = 0; nt < kTile / 8; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < kSteps; ++ks) {
#pragma unroll
      for (int np = 0; np < kTile / 16; ++np) {
        uint32_t kf[4];
        ldmatrix_x4(kf, k_nk + block_at<Dh>(np * 16, ks * 16));
        mma_bf16_16816(s[2 * np], q_frag[ks], kf[0], kf[1]);
        mma_bf16_16816(s[2 * np + 1], q_frag[ks], kf[2], kf[3]);
      }
    }
    if (segments != nullptr || kt == q_block) {
#pragma unroll
      for (int nt = 0; nt < kTile / 8; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          if (!visible(segments, seq, rows[e / 2], k0 + nt * 8 + 2 * c + e % 2)) {
            s[nt][e] = -INFINITY;
          }
        }
      }
    }
    // Online softmax; the four lanes of a quad hold one row's 64 scores between them.
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float tile_max = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < kTile / 8; ++nt) {
        tile_max = fmaxf(tile_max, fmaxf(s[nt][2 * r], s[nt][2 * r + 1]));
      }
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
      const float new_max = fmaxf(row_max[r], tile_max * a.scale_log2);
      // A row with no visible key so far subtracts 0 rather than -inf (which would give NaN).
      const float base = new_max == -INFINITY ? 0.0f : new_max;
      const float correction = fast_exp2(row_max[r] - base);
      row_max[r] = new_max;
      row_sum[r] *= correction;
#pragma unroll
      for (int dt = 0; dt < kDimTiles; ++dt) {
        o[dt][2 * r] *= correction;
        o[dt][2 * r + 1] *= correction;
      }
#pragma unroll
      for (int nt = 0; nt < kTile / 8; ++nt) {
#pragma unroll
        for (int e = 2 * r; e < 2 * r + 2; ++e) {
          s[nt][e] = fast_exp2(s[nt][e] * a.scale_log2 - base);
          row_sum[r] += s[nt][e];
        }
      }
    }
    cp_async_wait_all();
    __syncthreads();  // V(kt) is in, and no warp reads K(kt) any more
    if (kt < q_block) {
      load_tile<Dh>(k_tile, k_col + (k0 + kTile) * width, width, rows_in_tile(k0 + kTile, seq));
      cp_async_commit();
    }
    accumulate_times_tile<Dh>(o, s, v_rows16);
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float sum = row_sum[r];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    if (rows[r] >= seq) continue;
    const float inv = 1.0f / sum;
    bf16* dst = a.out + (b * seq + rows[r]) * (a.heads * Dh) + h * Dh + 2 * c;
#pragma unroll
    for (int dt = 0; dt < kDimTiles; ++dt) {
      *reinterpret_cast<__nv_bfloat162*>(dst + dt * 8) =
          __floats2bfloat162_rn(o[dt][2 * r] * inv, o[dt][2 * r + 1] * inv);
    }
    if (c == 0) a.lse[(b * a.heads + h) * seq + rows[r]] = (row_max[r] + log2f(sum)) * kLn2;
  }
}

// dQ of one (query tile, head, sequence) per CTA, over the key tiles up to the diagonal:
// dS = P * (dO V^T - delta), dQ = scale * dS K. Grid (ceil(T/64), H, B).
template <int Dh>
__device__ __forceinline__ void dq_tile(const BackwardArgs& a, bf16* smem) {
  constexpr int kDimTiles = Dh / 8;
  bf16* q_tile = smem;
  bf16* do_tile = smem + kTileElems<Dh>;
  bf16* k_tile = smem + 2 * kTileElems<Dh>;
  bf16* v_tile = smem + 3 * kTileElems<Dh>;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, c = lane % 4;
  const uint32_t warp_rows = rows16_lane<Dh>(lane) + block_at<Dh>(warp * 16, 0);
  const uint32_t q_a = shared_address(q_tile) + warp_rows,
                 do_a = shared_address(do_tile) + warp_rows;
  const uint32_t k_nk = shared_address(k_tile) + nk_lane<Dh>(lane);
  const uint32_t v_nk = shared_address(v_tile) + nk_lane<Dh>(lane);
  const uint32_t k_rows16 = shared_address(k_tile) + rows16_lane<Dh>(lane);
  const int64_t q_block = gridDim.x - 1 - blockIdx.x;
  const int64_t h = blockIdx.y, b = blockIdx.z, seq = a.seq;
  const int64_t kv = h / (a.heads / a.kv_heads);
  const int64_t width = (a.heads + 2 * a.kv_heads) * Dh, out_width = a.heads * Dh;
  const int64_t q0 = q_block * kTile;
  const bf16* seq_qkv = a.qkv + b * seq * width;
  const bf16* k_col = seq_qkv + (a.heads + kv) * Dh;
  const bf16* v_col = seq_qkv + (a.heads + a.kv_heads + kv) * Dh;
  const int32_t* segments = a.segments ? a.segments + b * seq : nullptr;
  const int64_t rows[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};
  float row_lse[2], row_delta[2];  // lse in base 2
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t at = (b * a.heads + h) * seq + rows[r];
    row_lse[r] = rows[r] < seq ? a.lse[at] * kLog2e : 0.0f;
    row_delta[r] = rows[r] < seq ? a.delta[at] : 0.0f;
  }

  const int64_t q_rows = rows_in_tile(q0, seq);
  load_tile<Dh>(q_tile, seq_qkv + q0 * width + h * Dh, width, q_rows);
  load_tile<Dh>(do_tile, a.dout + (b * seq + q0) * out_width + h * Dh, out_width, q_rows);
  float dq[kDimTiles][4];
#pragma unroll
  for (int dt = 0; dt < kDimTiles; ++dt) dq[dt][0] = dq[dt][1] = dq[dt][2] = dq[dt][3] = 0.0f;

  for (int64_t kt = 0; kt <= q_block; ++kt) {
    const int64_t k0 = kt * kTile, k_rows = rows_in_tile(k0, seq);
    load_tile<Dh>(k_tile, k_col + k0 * width, width, k_rows);
    load_tile<Dh>(v_tile, v_col + k0 * width, width, k_rows);
    cp_async_commit();
    cp_async_wait_all();
    __syncthreads();

    float s[kTile / 8][4], dp[kTile / 8][4];  // scores, then dS; dO V^T
    two_products<Dh, kTile>(s, dp, q_a, do_a, k_nk, v_nk);
    const bool masked = segments != nullptr || kt == q_block;
#pragma unroll
    for (int nt = 0; nt < kTile / 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e / 2;
        const bool seen = !masked || visible(segments, seq, rows[r], k0 + nt * 8 + 2 * c + e % 2);
        const float p = seen ? fast_exp2(s[nt][e] * a.scale_log2 - row_lse[r]) : 0.0f;
        s[nt][e] = p * (dp[nt][e] - row_delta[r]);
      }
    }
    accumulate_times_tile<Dh>(dq, s, k_rows16);
    __syncthreads();  // every warp is done with K and V before the next tiles land there
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (rows[r] >= seq) continue;
    bf16* dst = a.dqkv + (b * seq + rows[r]) * width + h * Dh + 2 * c;
#pragma unroll
    for (int dt = 0; dt < kDimTiles; ++dt) {
      *reinterpret_cast<__nv_bfloat162*>(dst + dt * 8) =
          __floats2bfloat162_rn(dq[dt][2 * r] * a.scale, dq[dt][2 * r + 1] * a.scale);
    }
  }
}

// dK, dV of one (key tile, kv head, sequence) per CTA: over the group's query heads in order and
// their query tiles from the diagonal on, dV = P^T dO and dK = scale * dS^T Q, summed in
// registers (no atomics). Warp w owns keys [16 w, 16 w + 16) of the tile and computes the
// transposed scores S^T = K Q^T, so P^T and dS^T are A operands without a trip through shared
// memory. Grid (ceil(T/64), Hkv, B).
template <int Dh>
__device__ __forceinline__ void dkv_tile(const BackwardArgs& a, bf16* smem) {
  constexpr int kDimTiles = Dh / 8;
  bf16* k_tile = smem;
  bf16* v_tile = smem + kTileElems<Dh>;
  bf16* q_tile = smem + 2 * kTileElems<Dh>;
  bf16* do_tile = smem + 3 * kTileElems<Dh>;
  float* lse_tile = reinterpret_cast<float*>(smem + 4 * kTileElems<Dh>);  // base 2
  float* delta_tile = lse_tile + kTile;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, c = lane % 4;
  const uint32_t warp_rows = rows16_lane<Dh>(lane) + block_at<Dh>(warp * 16, 0);
  const uint32_t k_a = shared_address(k_tile) + warp_rows, v_a = shared_address(v_tile) + warp_rows;
  const uint32_t q_nk = shared_address(q_tile) + nk_lane<Dh>(lane);
  const uint32_t do_nk = shared_address(do_tile) + nk_lane<Dh>(lane);
  const uint32_t q_rows16 = shared_address(q_tile) + rows16_lane<Dh>(lane);
  const uint32_t do_rows16 = shared_address(do_tile) + rows16_lane<Dh>(lane);
  const int64_t k_block = blockIdx.x;  // the first keys have the most queries: they start first
  const int64_t kv = blockIdx.y, b = blockIdx.z, seq = a.seq;
  const int64_t group = a.heads / a.kv_heads;
  const int64_t width = (a.heads + 2 * a.kv_heads) * Dh, out_width = a.heads * Dh;
  const int64_t k0 = k_block * kTile, q_blocks = (seq + kTile - 1) / kTile;
  const bf16* seq_qkv = a.qkv + b * seq * width;
  const int64_t k_off = (a.heads + kv) * Dh, v_off = (a.heads + a.kv_heads + kv) * Dh;
  const int32_t* segments = a.segments ? a.segments + b * seq : nullptr;
  const int64_t keys[2] = {k0 + warp * 16 + g, k0 + warp * 16 + g + 8};

  const int64_t k_rows = rows_in_tile(k0, seq);
  load_tile<Dh>(k_tile, seq_qkv + k0 * width + k_off, width, k_rows);
  load_tile<Dh>(v_tile, seq_qkv + k0 * width + v_off, width, k_rows);
  cp_async_commit();  // waited for with the first query tile
  float dk[kDimTiles][4], dv[kDimTiles][4];
#pragma unroll
  for (int dt = 0; dt < kDimTiles; ++dt) {
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[dt][e] = dv[dt][e] = 0.0f;
  }

  for (int64_t h = kv * group; h < (kv + 1) * group; ++h) {
    for (int64_t qb = k_block; qb < q_blocks; ++qb) {
      const int64_t q0 = qb * kTile, q_rows = rows_in_tile(q0, seq);
      load_tile<Dh>(q_tile, seq_qkv + q0 * width + h * Dh, width, q_rows);
      load_tile<Dh>(do_tile, a.dout + (b * seq + q0) * out_width + h * Dh, out_width, q_rows);
      cp_async_commit();
      if (static_cast<int>(threadIdx.x) < kTile) {
        const int64_t i = threadIdx.x, at = (b * a.heads + h) * seq + q0 + i;
        lse_tile[i] = i < q_rows ? a.lse[at] * kLog2e : 0.0f;
        delta_tile[i] = i < q_rows ? a.delta[at] : 0.0f;
      }
      cp_async_wait_all();
      __syncthreads();

      const bool masked = segments != nullptr || qb == k_block || q_rows < kTile;
#pragma unroll 1
      for (int half = 0; half < kTile / kHalf; ++half) {
        const int qh = half * kHalf;                // the half's first query row in the tile
        float st[kHalf / 8][4], dpt[kHalf / 8][4];  // S^T, then P^T; dO V^T, then dS^T
        two_products<Dh, kHalf>(st, dpt, k_a, v_a, q_nk + block_at<Dh>(qh, 0),
                                do_nk + block_at<Dh>(qh, 0));
#pragma unroll
        for (int nt = 0; nt < kHalf / 8; ++nt) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int i = qh + nt * 8 + 2 * c + e % 2;  // query row in the tile
            const bool seen = !masked || visible(segments, seq, q0 + i, keys[e / 2]);
            const float p = seen ? fast_exp2(st[nt][e] * a.scale_log2 - lse_tile[i]) : 0.0f;
            st[nt][e] = p;
            dpt[nt][e] = p * (dpt[nt][e] - delta_tile[i]);
          }
        }
#pragma unroll
        for (int kk = 0; kk < kHalf / 16; ++kk) {
          uint32_t pa[4], dsa[4];
          accumulators_as_a(pa, st, kk);
          accumulators_as_a(dsa, dpt, kk);
#pragma unroll
          for (int dp = 0; dp < Dh / 16; ++dp) {
            uint32_t of[4], qf[4];
            ldmatrix_x4_trans(of, do_rows16 + block_at<Dh>(qh + kk * 16, dp * 16));
            mma_bf16_16816(dv[2 * dp], pa, of[0], of[1]);
            mma_bf16_16816(dv[2 * dp + 1], pa, of[2], of[3]);
            ldmatrix_x4_trans(qf, q_rows16 + block_at<Dh>(qh + kk * 16, dp * 16));
            mma_bf16_16816(dk[2 * dp], dsa, qf[0], qf[1]);
            mma_bf16_16816(dk[2 * dp + 1], dsa, qf[2], qf[3]);
          }
        }
      }
      __syncthreads();  // every warp is done with this query tile before the next one lands
    }
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (keys[r] >= seq) continue;
    bf16* row = a.dqkv + (b * seq + keys[r]) * width + 2 * c;
#pragma unroll
    for (int dt = 0; dt < kDimTiles; ++dt) {
      *reinterpret_cast<__nv_bfloat162*>(row + k_off + dt * 8) =
          __floats2bfloat162_rn(dk[dt][2 * r] * a.scale, dk[dt][2 * r + 1] * a.scale);
      *reinterpret_cast<__nv_bfloat162*>(row + v_off + dt * 8) =
          __floats2bfloat162_rn(dv[dt][2 * r], dv[dt][2 * r + 1]);
    }
  }
}

}  // namespace zerotune::cuda::flash
