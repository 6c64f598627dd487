#include "kernels/decode_attention.h"

namespace zerotune {

namespace {

// The shape of a call from its tensors, every size and index checked (the indices on the host).
DecodeAttentionShape checked_shape(const char* op, const Tensor& qkv, const Tensor& k_cache,
                                   const Tensor& v_cache, const Tensor& slots,
                                   const Tensor& positions, int64_t q_width) {
  ZT_CHECK(k_cache.ndim() == 4, op, ": k_cache must be [S, T, Hkv, Dh], got ", k_cache.shape);
  check_shape(op, "v_cache", v_cache, k_cache.shape);
  ZT_CHECK(qkv.ndim() == 2, op, ": qkv must be [N, (H+2Hkv)*Dh], got ", qkv.shape);
  DecodeAttentionShape s{qkv.dim(0), 0, k_cache.dim(2), k_cache.dim(3), k_cache.dim(1)};
  ZT_CHECK(s.kv_heads > 0 && s.head_dim > 0 && q_width % s.head_dim == 0, op, ": ", q_width,
           " query columns are not whole heads of ", s.head_dim);
  s.heads = q_width / s.head_dim;
  ZT_CHECK(s.heads > 0 && s.heads % s.kv_heads == 0, op, ": ", s.heads,
           " query heads are not a multiple of ", s.kv_heads, " kv heads");
  ZT_CHECK(qkv.dim(1) == s.qkv_width(), op, ": qkv is ", qkv.shape, " but ", s.heads,
           " query heads and a cache of ", k_cache.shape, " need rows of ", s.qkv_width());
  check_shape(op, "slots", slots, Shape{s.rows});
  check_shape(op, "positions", positions, Shape{s.rows});
  const std::vector<int32_t> host_slots = host_i32(slots), host_positions = host_i32(positions);
  const int64_t slot_count = k_cache.dim(0);
  for (int64_t i = 0; i < s.rows; ++i) {
    const int32_t slot = host_slots[static_cast<size_t>(i)];
    const int32_t pos = host_positions[static_cast<size_t>(i)];
    ZT_CHECK(slot >= 0 && slot < slot_count, op, ": slot ", slot, " of row ", i,
             " is outside the cache's [0, ", slot_count, ")");
    ZT_CHECK(pos >= 0 && pos < s.max_seq_len, op, ": position ", pos, " of row ", i,
             " is outside the slot's [0, ", s.max_seq_len, ")");
  }
  return s;
}

}  // namespace

void decode_kv_store(const Tensor& k_cache, const Tensor& v_cache, const Tensor& qkv,
                     const Tensor& slots, const Tensor& positions) {
  const char* op = "decode_kv_store";
  ZT_CHECK(k_cache.ndim() == 4 && qkv.ndim() == 2, op, ": k_cache must be [S, T, Hkv, Dh] and qkv ",
           "[N, width], got ", k_cache.shape, " and ", qkv.shape);
  const int64_t q_width = qkv.dim(1) - 2 * k_cache.dim(2) * k_cache.dim(3);
  const DecodeAttentionShape s =
      checked_shape(op, qkv, k_cache, v_cache, slots, positions, q_width);
  if (on_cuda(qkv)) {
    for (const Tensor* t : {&k_cache, &v_cache, &slots, &positions}) {
      check_same_device(op, qkv, *t);
    }
    ZT_CHECK(k_cache.dtype == qkv.dtype && v_cache.dtype == qkv.dtype, op, ": the cache (",
             describe(k_cache), ", ", describe(v_cache), ") must have qkv's dtype, ",
             describe(qkv));
    cuda::decode_kv_store(k_cache, v_cache, qkv, slots, positions, s);
    return;
  }
  require_backend(op, qkv);
  cpu::decode_kv_store(k_cache.f32(), v_cache.f32(), qkv.f32(), slots.i32(), positions.i32(), s);
}

void decode_attention(const Tensor& out, const Tensor& qkv, const Tensor& k_cache,
                      const Tensor& v_cache, const Tensor& slots, const Tensor& positions) {
  const char* op = "decode_attention";
  ZT_CHECK(out.ndim() == 2, op, ": out must be [N, H*Dh], got ", out.shape);
  const DecodeAttentionShape s =
      checked_shape(op, qkv, k_cache, v_cache, slots, positions, out.dim(1));
  check_shape(op, "out", out, Shape{s.rows, s.heads * s.head_dim});
  if (on_cuda(qkv)) {
    for (const Tensor* t : {&out, &k_cache, &v_cache, &slots, &positions}) {
      check_same_device(op, qkv, *t);
    }
    ZT_CHECK(out.dtype == qkv.dtype && k_cache.dtype == qkv.dtype && v_cache.dtype == qkv.dtype, op,
             ": out ", describe(out), " and the cache (", describe(k_cache), ", ",
             describe(v_cache), ") must have qkv's dtype, ", describe(qkv));
    ZT_CHECK(s.head_dim <= 256, op, ": the CUDA kernel takes head_dim <= 256, got ", s.head_dim);
    cuda::decode_attention(out, qkv, k_cache, v_cache, slots, positions, s);
    return;
  }
  require_backend(op, qkv);
  cpu::decode_attention(out.f32(), qkv.f32(), k_cache.f32(), v_cache.f32(), slots.i32(),
                        positions.i32(), s);
}

}  // namespace zerotune
