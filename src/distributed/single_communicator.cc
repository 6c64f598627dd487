// The communicator of a one-rank job: gathers and scatters are copies, reductions are no-ops.
#include <cstdlib>
#include <cstring>

#include "core/check.h"
#include "distributed/communicator.h"

namespace zerotune {
namespace {

class DoneRequest final : public CommRequest {
 public:
  void wait() override {}
};

void copy_if_distinct(void* dst, const void* src, int64_t bytes) {
  if (dst != src && bytes > 0) std::memmove(dst, src, static_cast<size_t>(bytes));
}

class SingleCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  const char* backend() const override { return "single"; }

  std::unique_ptr<CommRequest> all_gather_async(const void* shard, void* full, int64_t count,
                                                DType dtype) override {
    copy_if_distinct(full, shard, count * dtype_size(dtype));
    volume_.all_gather += count * dtype_size(dtype);
    return std::make_unique<DoneRequest>();
  }
  std::unique_ptr<CommRequest> reduce_scatter_async(const void* full, void* shard, int64_t count,
                                                    DType dtype) override {
    copy_if_distinct(shard, full, count * dtype_size(dtype));
    volume_.reduce_scatter += count * dtype_size(dtype);
    return std::make_unique<DoneRequest>();
  }
  std::unique_ptr<CommRequest> all_reduce_async(void*, int64_t count, DType dtype) override {
    volume_.all_reduce += count * dtype_size(dtype);
    return std::make_unique<DoneRequest>();
  }
  void broadcast(void*, int64_t, int root) override {
    ZT_CHECK(root == 0, "broadcast: root ", root, " of a 1-rank job");
  }
  void gather_to_root(const void* data, const int64_t* counts, void* out, DType dtype) override {
    copy_if_distinct(out, data, counts[0] * dtype_size(dtype));
  }
  void barrier() override {}
};

}  // namespace

std::unique_ptr<Communicator> make_single_communicator() {
  return std::make_unique<SingleCommunicator>();
}

}  // namespace zerotune
