// Collectives over the ranks of one job. One interface, three implementations: a single rank
// (copies and no-ops), MPI for CPU tensors, and NCCL for GPU tensors (the CUDA backend). Counts
// are int64_t: messages above what one library call can carry are split by the implementation.
// Every rank calls the same collectives in the same order; a collective that does not complete
// within the timeout ends the job naming the ranks that never arrived.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/dtype.h"

namespace zerotune {

// An operation in flight. After wait(), later work may use the buffers: host code for host
// buffers (MPI); for GPU buffers (NCCL) wait() makes the compute stream wait for the collective,
// so later kernels see its result, and host code that reads them synchronises the device first.
class CommRequest {
 public:
  virtual ~CommRequest() = default;
  virtual void wait() = 0;
};

// Bytes handed to collectives by this rank, by kind, for comparing with ZeRO's theory.
struct CommVolume {
  int64_t all_gather = 0;      // the gathered (full) buffer's bytes
  int64_t reduce_scatter = 0;  // the reduced (full) buffer's bytes
  int64_t all_reduce = 0;      // the buffer's bytes
  int64_t other = 0;           // broadcast, gather to rank 0, scalars
  int64_t total() const { return all_gather + reduce_scatter + all_reduce + other; }
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const char* backend() const = 0;  // "single", "mpi", "nccl"

  // full[size * shard_count] <- every rank's shard[shard_count], in rank order. `shard` may point
  // into `full` at rank() * shard_count (in place).
  virtual std::unique_ptr<CommRequest> all_gather_async(const void* shard, void* full,
                                                        int64_t shard_count, DType dtype) = 0;
  // shard[shard_count] <- sum over ranks of their full[rank() * shard_count + i].
  virtual std::unique_ptr<CommRequest> reduce_scatter_async(const void* full, void* shard,
                                                            int64_t shard_count, DType dtype) = 0;
  // data[count] <- sum over ranks, in place.
  virtual std::unique_ptr<CommRequest> all_reduce_async(void* data, int64_t count, DType dtype) = 0;
  // data[bytes] on every rank <- root's.
  virtual void broadcast(void* data, int64_t bytes, int root) = 0;
  // Rank 0's out[sum of counts] <- each rank r's data[counts[r]] in rank order; `counts` has
  // size() entries on every rank; `out` is ignored elsewhere.
  virtual void gather_to_root(const void* data, const int64_t* counts, void* out, DType dtype) = 0;
  virtual void barrier() = 0;

  void all_gather(const void* shard, void* full, int64_t shard_count, DType dtype) {
    all_gather_async(shard, full, shard_count, dtype)->wait();
  }
  void reduce_scatter(const void* full, void* shard, int64_t shard_count, DType dtype) {
    reduce_scatter_async(full, shard, shard_count, dtype)->wait();
  }
  void all_reduce(void* data, int64_t count, DType dtype) {
    all_reduce_async(data, count, dtype)->wait();
  }
  double all_reduce_sum(double value) {
    all_reduce(&value, 1, DType::f64);
    return value;
  }

  const CommVolume& volume() const { return volume_; }
  void reset_volume() { volume_ = {}; }

 protected:
  CommVolume volume_;
};

struct CommOptions {
  double timeout_s = 600.0;  // --collective-timeout
  // Largest element count one library call carries; smaller values exercise message splitting.
  int64_t max_message_elements = int64_t{1} << 30;
};

std::unique_ptr<Communicator> make_single_communicator();
// The MPI communicator (MPI is initialised here and finalised when it is destroyed); only under an
// MPI launch (distributed/launch.h decides).
std::unique_ptr<Communicator> make_mpi_communicator(const CommOptions& options);

// How a torchrun-style launch reaches rank 0 to bootstrap NCCL: its address and this rank.
struct TcpBootstrap {
  int rank = 0, size = 1;
  std::string master_addr, master_port;
};
// The NCCL communicator for GPU `device` (CUDA builds): the unique id comes from rank 0 through
// `mpi` when given, else over TCP as `tcp` describes.
std::unique_ptr<Communicator> make_nccl_communicator(const CommOptions& options, int device,
                                                     Communicator* mpi, const TcpBootstrap& tcp);

}  // namespace zerotune
