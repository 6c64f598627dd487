// Embedding lookup and its deterministic backward: rows of the same token are summed in their
// order of appearance, one block per distinct token (the grouping is built on the host from the
// ids, which come from the host anyway).
#include <algorithm>
#include <numeric>
#include <vector>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/element_types.cuh"
#include "backends/cuda/workspace.h"
#include "core/device_memory.h"
#include "kernels/embedding.h"

namespace zerotune::cuda {
namespace {

constexpr unsigned kThreads = 256;

template <typename T>
__global__ void embedding_forward_kernel(T* out, const int32_t* ids, const T* table, int64_t d) {
  const int64_t row = blockIdx.x;
  const T* src = table + static_cast<int64_t>(ids[row]) * d;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) out[row * d + i] = src[i];
}

// Block b handles token tokens[b]: dtable[token] += sum of dout rows order[begin[b]..begin[b+1]).
template <typename T>
__global__ void embedding_backward_kernel(float* dtable, const T* dout, const int32_t* tokens,
                                          const int32_t* begin, const int32_t* order, int64_t d) {
  const int32_t token = tokens[blockIdx.x];
  const int32_t lo = begin[blockIdx.x], hi = begin[blockIdx.x + 1];
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    float sum = 0.0f;
    for (int32_t k = lo; k < hi; ++k) sum += to_f32(dout[static_cast<int64_t>(order[k]) * d + i]);
    dtable[static_cast<int64_t>(token) * d + i] += sum;
  }
}

}  // namespace

void embedding_forward(const Tensor& out, const Tensor& ids, const Tensor& table) {
  const int64_t n = out.dim(0), d = out.dim(1);
  if (n == 0) return;
  dispatch_storage(table.dtype, "embedding_forward", [&](auto zero) {
    using T = decltype(zero);
    embedding_forward_kernel<T><<<static_cast<unsigned>(n), kThreads, 0, compute_stream()>>>(
        out.ptr<T>(), ids.ptr<int32_t>(), table.ptr<T>(), d);
  });
  check_launch("embedding_forward");
}

void embedding_backward(const Tensor& dtable, const Tensor& ids, const Tensor& dout) {
  const int64_t n = dout.dim(0), d = dout.dim(1);
  if (n == 0) return;
  std::vector<int32_t> host_ids(static_cast<size_t>(n));
  copy_bytes(host_ids.data(), Device::cpu(), ids.data, ids.device, n * 4);
  std::vector<int32_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return host_ids[static_cast<size_t>(a)] < host_ids[static_cast<size_t>(b)];
  });
  std::vector<int32_t> tokens, begin;
  for (size_t k = 0; k < order.size(); ++k) {
    const int32_t id = host_ids[static_cast<size_t>(order[k])];
    if (tokens.empty() || tokens.back() != id) {
      tokens.push_back(id);
      begin.push_back(static_cast<int32_t>(k));
    }
  }
  begin.push_back(static_cast<int32_t>(n));
  const int64_t groups = static_cast<int64_t>(tokens.size());
  // The plan [tokens | begin | order] in one upload, ordered on the compute stream after the
  // previous call's kernel.
  std::vector<int32_t> plan = std::move(tokens);
  plan.insert(plan.end(), begin.begin(), begin.end());
  plan.insert(plan.end(), order.begin(), order.end());
  const int64_t plan_bytes = static_cast<int64_t>(plan.size()) * 4;
  int32_t* p = static_cast<int32_t*>(workspace(Workspace::embedding_plan, plan_bytes, dtable.device));
  copy_bytes(p, dtable.device, plan.data(), Device::cpu(), plan_bytes);
  dispatch_storage(dout.dtype, "embedding_backward", [&](auto zero) {
    using T = decltype(zero);
    embedding_backward_kernel<T><<<static_cast<unsigned>(groups), kThreads, 0, compute_stream()>>>(
        dtable.ptr<float>(), dout.ptr<T>(), p, p + groups, p + 2 * groups + 1, d);
  });
  check_launch("embedding_backward");
}

}  // namespace zerotune::cuda
