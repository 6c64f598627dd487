#include "kernels/embedding.h"

namespace zerotune {

static void check_ids(const char* op, const Tensor& ids, int64_t vocab) {
  check_dtype(op, "ids", ids, DType::i32);
  const int32_t* p = ids.i32();
  for (int64_t i = 0; i < ids.numel(); ++i) {
    ZT_CHECK(p[i] >= 0 && p[i] < vocab, op, ": token id ", p[i], " at position ", i,
             " is outside the vocabulary [0, ", vocab, ")");
  }
}

void embedding_forward(const Tensor& out, const Tensor& ids, const Tensor& table) {
  require_backend("embedding_forward", table);
  ZT_CHECK(table.ndim() == 2, "embedding_forward: table must be [V, D], got ", table.shape);
  check_ids("embedding_forward", ids, table.dim(0));
  check_shape("embedding_forward", "out", out, Shape{ids.numel(), table.dim(1)});
  cpu::embedding_forward(out.f32(), ids.i32(), table.f32(), ids.numel(), table.dim(1));
}

void embedding_backward(const Tensor& dtable, const Tensor& ids, const Tensor& dout) {
  require_backend("embedding_backward", dtable);
  ZT_CHECK(dtable.ndim() == 2, "embedding_backward: dtable must be [V, D], got ", dtable.shape);
  check_ids("embedding_backward", ids, dtable.dim(0));
  check_shape("embedding_backward", "dout", dout, Shape{ids.numel(), dtable.dim(1)});
  cpu::embedding_backward(dtable.f32(), ids.i32(), dout.f32(), ids.numel(), dtable.dim(1));
}

}  // namespace zerotune
