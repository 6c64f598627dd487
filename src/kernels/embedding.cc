#include "kernels/embedding.h"

namespace zerotune {

static void check_ids(const char* op, const Tensor& ids, int64_t vocab) {
  check_dtype(op, "ids", ids, DType::i32);
  const std::vector<int32_t> host_ids = host_i32(ids);
  const int32_t* p = host_ids.data();
  for (int64_t i = 0; i < ids.numel(); ++i) {
    ZT_CHECK(p[i] >= 0 && p[i] < vocab, op, ": token id ", p[i], " at position ", i,
             " is outside the vocabulary [0, ", vocab, ")");
  }
}

void embedding_forward(const Tensor& out, const Tensor& ids, const Tensor& table) {
  ZT_CHECK(table.ndim() == 2, "embedding_forward: table must be [V, D], got ", table.shape);
  check_ids("embedding_forward", ids, table.dim(0));
  check_shape("embedding_forward", "out", out, Shape{ids.numel(), table.dim(1)});
  if (on_cuda(table)) {
    check_same_device("embedding_forward", table, out);
    check_same_device("embedding_forward", table, ids);
    cuda::embedding_forward(out, ids, table);
    return;
  }
  require_backend("embedding_forward", table);
  cpu::embedding_forward(out.f32(), ids.i32(), table.f32(), ids.numel(), table.dim(1));
}

void embedding_backward(const Tensor& dtable, const Tensor& ids, const Tensor& dout) {
  ZT_CHECK(dtable.ndim() == 2, "embedding_backward: dtable must be [V, D], got ", dtable.shape);
  check_ids("embedding_backward", ids, dtable.dim(0));
  check_shape("embedding_backward", "dout", dout, Shape{ids.numel(), dtable.dim(1)});
  if (on_cuda(dtable)) {
    check_same_device("embedding_backward", dtable, dout);
    check_same_device("embedding_backward", dtable, ids);
    check_dtype("embedding_backward", "dtable", dtable, DType::f32);
    cuda::embedding_backward(dtable, ids, dout);
    return;
  }
  require_backend("embedding_backward", dtable);
  cpu::embedding_backward(dtable.f32(), ids.i32(), dout.f32(), ids.numel(), dtable.dim(1));
}

}  // namespace zerotune
