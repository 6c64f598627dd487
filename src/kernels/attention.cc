#include "kernels/attention.h"

namespace zerotune {

static void check_attention(const char* op, const Tensor& qkv, const Tensor& segments,
                            const AttentionShape& s) {
  ZT_CHECK(s.batch > 0 && s.seq_len > 0 && s.n_heads > 0 && s.n_kv_heads > 0 && s.head_dim > 0, op,
           ": empty shape B=", s.batch, " T=", s.seq_len, " H=", s.n_heads, " Hkv=", s.n_kv_heads,
           " Dh=", s.head_dim);
  ZT_CHECK(s.n_heads % s.n_kv_heads == 0, op, ": ", s.n_heads,
           " query heads are not a multiple of ", s.n_kv_heads, " kv heads");
  check_shape(op, "qkv", qkv, Shape{s.batch * s.seq_len, s.qkv_width()});
  if (present(segments)) {
    check_shape(op, "segments", segments, Shape{s.batch * s.seq_len});
    check_dtype(op, "segments", segments, DType::i32);
  }
}

void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& qkv,
                       const Tensor& segments, const AttentionShape& s) {
  check_attention("attention_forward", qkv, segments, s);
  check_shape("attention_forward", "out", out, Shape{s.batch * s.seq_len, s.n_heads * s.head_dim});
  check_shape("attention_forward", "lse", lse, Shape{s.batch, s.n_heads, s.seq_len});
  if (on_cuda(qkv)) {
    check_same_device("attention_forward", qkv, out);
    check_same_device("attention_forward", qkv, lse);
    if (present(segments)) check_same_device("attention_forward", qkv, segments);
    check_dtype("attention_forward", "lse", lse, DType::f32);
    cuda::attention_forward(out, lse, qkv, segments, s);
    return;
  }
  require_backend("attention_forward", qkv);
  cpu::attention_forward(out.f32(), lse.f32(), qkv.f32(),
                         present(segments) ? segments.i32() : nullptr, s);
}

void attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                        const Tensor& out, const Tensor& lse, const Tensor& segments,
                        const AttentionShape& s) {
  check_attention("attention_backward", qkv, segments, s);
  check_shape("attention_backward", "dqkv", dqkv, qkv.shape);
  const Shape out_shape{s.batch * s.seq_len, s.n_heads * s.head_dim};
  check_shape("attention_backward", "out", out, out_shape);
  check_shape("attention_backward", "dout", dout, out_shape);
  check_shape("attention_backward", "lse", lse, Shape{s.batch, s.n_heads, s.seq_len});
  if (on_cuda(qkv)) {
    for (const Tensor* t : {&dqkv, &dout, &out, &lse})
      check_same_device("attention_backward", qkv, *t);
    if (present(segments)) check_same_device("attention_backward", qkv, segments);
    cuda::attention_backward(dqkv, dout, qkv, out, lse, segments, s);
    return;
  }
  require_backend("attention_backward", qkv);
  cpu::attention_backward(dqkv.f32(), dout.f32(), qkv.f32(), out.f32(), lse.f32(),
                          present(segments) ? segments.i32() : nullptr, s);
}

}  // namespace zerotune
