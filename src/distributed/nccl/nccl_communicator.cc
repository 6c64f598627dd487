// The Communicator over NCCL for GPU buffers. Collectives run on their own non-blocking stream,
// ordered after the compute stream's work by events; a request's wait() makes the compute stream
// wait for it on the device (no host block), so communication overlaps compute. Host buffers
// (loss sums, norms, metrics) are staged through a device scratch buffer. The NCCL unique id comes
// from rank 0 over MPI when MPI launched the job, else over TCP from the torchrun-style
// environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT).
#include <arpa/inet.h>
#include <cuda_runtime.h>
#include <nccl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <thread>
#include <vector>

#include "backends/cuda/cuda_check.h"
#include "distributed/communicator.h"

#define ZT_NCCL_CHECK(call)                                                           \
  do {                                                                                \
    const ncclResult_t zt_status_ = (call);                                           \
    if (zt_status_ != ncclSuccess) {                                                  \
      ::zerotune::fail(::zerotune::str(#call, ": ", ncclGetErrorString(zt_status_))); \
    }                                                                                 \
  } while (0)

namespace zerotune {
namespace {

using Clock = std::chrono::steady_clock;

ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return ncclFloat32;
    case DType::bf16:
      return ncclBfloat16;
    case DType::f16:
      return ncclFloat16;
    case DType::i32:
      return ncclInt32;
    case DType::i64:
      return ncclInt64;
    case DType::f64:
      return ncclFloat64;
  }
  return ncclFloat32;
}

bool on_host(const void* p) {
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, p) != cudaSuccess) {
    cudaGetLastError();
    return true;
  }
  return attributes.type != cudaMemoryTypeDevice && attributes.type != cudaMemoryTypeManaged;
}

class NcclCommunicator;

class NcclRequest final : public CommRequest {
 public:
  NcclRequest(NcclCommunicator* comm, cudaEvent_t done) : comm_(comm), done_(done) {}
  ~NcclRequest() override;
  void wait() override;

 private:
  NcclCommunicator* comm_;
  cudaEvent_t done_;
  bool waited_ = false;
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(const CommOptions& options, int device, int rank, int size,
                   const ncclUniqueId& id)
      : options_(options), device_(device), rank_(rank), size_(size) {
    ZT_CUDA_CHECK(cudaSetDevice(device));
    ZT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    ZT_CUDA_CHECK(cudaEventCreateWithFlags(&compute_done_, cudaEventDisableTiming));
    ZT_NCCL_CHECK(ncclCommInitRank(&comm_, size, id, rank));
  }

  ~NcclCommunicator() override {
    if (std::uncaught_exceptions() > 0) {
      ncclCommAbort(comm_);  // peers may be waiting for this rank: do not wait for them
    } else {
      cudaStreamSynchronize(stream_);
      ncclCommDestroy(comm_);
    }
    if (scratch_) cudaFree(scratch_);
    cudaEventDestroy(compute_done_);
    cudaStreamDestroy(stream_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "nccl"; }

  std::unique_ptr<CommRequest> all_gather_async(const void* shard, void* full, int64_t count,
                                                DType dtype) override {
    volume_.all_gather += count * size_ * dtype_size(dtype);
    after_compute();
    ZT_NCCL_CHECK(
        ncclAllGather(shard, full, static_cast<size_t>(count), nccl_type(dtype), comm_, stream_));
    return finish();
  }

  std::unique_ptr<CommRequest> reduce_scatter_async(const void* full, void* shard, int64_t count,
                                                    DType dtype) override {
    volume_.reduce_scatter += count * size_ * dtype_size(dtype);
    after_compute();
    ZT_NCCL_CHECK(ncclReduceScatter(full, shard, static_cast<size_t>(count), nccl_type(dtype),
                                    ncclSum, comm_, stream_));
    return finish();
  }

  std::unique_ptr<CommRequest> all_reduce_async(void* data, int64_t count, DType dtype) override {
    const int64_t bytes = count * dtype_size(dtype);
    volume_.all_reduce += bytes;
    if (on_host(data)) {  // small host values: through the scratch buffer, synchronously
      void* staged = scratch(bytes);
      after_compute();
      ZT_CUDA_CHECK(cudaMemcpyAsync(staged, data, static_cast<size_t>(bytes),
                                    cudaMemcpyHostToDevice, stream_));
      ZT_NCCL_CHECK(ncclAllReduce(staged, staged, static_cast<size_t>(count), nccl_type(dtype),
                                  ncclSum, comm_, stream_));
      ZT_CUDA_CHECK(cudaMemcpyAsync(data, staged, static_cast<size_t>(bytes),
                                    cudaMemcpyDeviceToHost, stream_));
      wait_host("all_reduce");
      return finish();
    }
    after_compute();
    ZT_NCCL_CHECK(ncclAllReduce(data, data, static_cast<size_t>(count), nccl_type(dtype), ncclSum,
                                comm_, stream_));
    return finish();
  }

  void broadcast(void* data, int64_t bytes, int root) override {
    volume_.other += bytes;
    const bool host = on_host(data);
    void* buffer = host ? scratch(bytes) : data;
    after_compute();
    if (host) {
      ZT_CUDA_CHECK(cudaMemcpyAsync(buffer, data, static_cast<size_t>(bytes),
                                    cudaMemcpyHostToDevice, stream_));
    }
    ZT_NCCL_CHECK(
        ncclBroadcast(buffer, buffer, static_cast<size_t>(bytes), ncclUint8, root, comm_, stream_));
    if (host) {
      ZT_CUDA_CHECK(cudaMemcpyAsync(data, buffer, static_cast<size_t>(bytes),
                                    cudaMemcpyDeviceToHost, stream_));
    }
    wait_host("broadcast");
  }

  void gather_to_root(const void* data, const int64_t* counts, void* out, DType dtype) override {
    const int64_t elem = dtype_size(dtype);
    int64_t total = 0;
    for (int r = 0; r < size_; ++r) total += counts[r];
    volume_.other += counts[rank_] * elem;
    // Through device memory: [this rank's piece | rank 0's whole result] (the result part on rank
    // 0 only). Checkpoints gather whole tensors (the embedding: hundreds of MB), so pieces above
    // the persistent scratch's size get a buffer of their own that is freed on return.
    const int64_t need = (counts[rank_] + (rank_ == 0 ? total : 0)) * elem;
    constexpr int64_t kScratchBytes = int64_t{16} << 20;
    struct DeviceBlock {  // freed on every way out
      void* p = nullptr;
      ~DeviceBlock() {
        if (p) cudaFree(p);
      }
    } own;
    if (need > kScratchBytes) ZT_CUDA_CHECK(cudaMalloc(&own.p, static_cast<size_t>(need)));
    char* staged = static_cast<char*>(own.p ? own.p : scratch(need));
    char* gathered = staged + counts[rank_] * elem;
    after_compute();  // `data` may come from kernels still queued on the compute stream
    ZT_CUDA_CHECK(cudaMemcpyAsync(staged, data, static_cast<size_t>(counts[rank_] * elem),
                                  cudaMemcpyDefault, stream_));
    ZT_NCCL_CHECK(ncclGroupStart());
    if (rank_ == 0) {
      int64_t offset = 0;
      for (int r = 0; r < size_; ++r) {
        if (r == 0) {
          ZT_CUDA_CHECK(cudaMemcpyAsync(gathered, staged, static_cast<size_t>(counts[0] * elem),
                                        cudaMemcpyDeviceToDevice, stream_));
        } else if (counts[r] > 0) {
          ZT_NCCL_CHECK(ncclRecv(gathered + offset * elem, static_cast<size_t>(counts[r]),
                                 nccl_type(dtype), r, comm_, stream_));
        }
        offset += counts[r];
      }
    } else if (counts[rank_] > 0) {
      ZT_NCCL_CHECK(ncclSend(staged, static_cast<size_t>(counts[rank_]), nccl_type(dtype), 0, comm_,
                             stream_));
    }
    ZT_NCCL_CHECK(ncclGroupEnd());
    if (rank_ == 0) {
      ZT_CUDA_CHECK(cudaMemcpyAsync(out, gathered, static_cast<size_t>(total * elem),
                                    cudaMemcpyDefault, stream_));
    }
    wait_host("gather_to_root");
  }

  void barrier() override {
    int32_t one = 1;
    all_reduce(&one, 1, DType::i32);
  }

  // The compute stream waits (on the device) for the collective recorded in `done`.
  void order_after(cudaEvent_t done) {
    ZT_CUDA_CHECK(cudaStreamWaitEvent(cuda::compute_stream(), done, 0));
  }

  // Blocks the host until the communication stream is idle, within the collective timeout.
  void wait_host(const char* what) {
    const auto deadline = Clock::now() + std::chrono::duration<double>(options_.timeout_s);
    for (;;) {
      const cudaError_t status = cudaStreamQuery(stream_);
      if (status == cudaSuccess) return;
      ZT_CHECK(status == cudaErrorNotReady, "nccl ", what, ": ", cudaGetErrorString(status));
      if (Clock::now() > deadline) {
        ncclCommAbort(comm_);
        std::fprintf(stderr,
                     "zerotune: rank %d: NCCL %s did not complete within --collective-timeout "
                     "%.0f s (a rank is dead or hung); ending the job\n",
                     rank_, what, options_.timeout_s);
        std::fflush(stderr);
        std::_Exit(3);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

 private:
  // The collective starts after everything the compute stream has queued so far.
  void after_compute() {
    ZT_CUDA_CHECK(cudaEventRecord(compute_done_, cuda::compute_stream()));
    ZT_CUDA_CHECK(cudaStreamWaitEvent(stream_, compute_done_, 0));
  }

  std::unique_ptr<CommRequest> finish() {
    cudaEvent_t done = nullptr;
    ZT_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    ZT_CUDA_CHECK(cudaEventRecord(done, stream_));
    return std::make_unique<NcclRequest>(this, done);
  }

  void* scratch(int64_t bytes) {
    if (bytes > scratch_bytes_) {
      if (scratch_) ZT_CUDA_CHECK(cudaFree(scratch_));
      ZT_CUDA_CHECK(cudaMalloc(&scratch_, static_cast<size_t>(bytes)));
      scratch_bytes_ = bytes;
    }
    return scratch_;
  }

  CommOptions options_;
  int device_, rank_, size_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t compute_done_ = nullptr;
  void* scratch_ = nullptr;
  int64_t scratch_bytes_ = 0;
};

NcclRequest::~NcclRequest() {
  if (!waited_ && std::uncaught_exceptions() == 0) wait();
  cudaEventDestroy(done_);
}

void NcclRequest::wait() {
  if (waited_) return;
  comm_->order_after(done_);
  waited_ = true;
}

// The unique id from rank 0 over TCP: rank 0 listens on MASTER_PORT and sends it to each peer.
ncclUniqueId tcp_bootstrap(const TcpBootstrap& tcp, const CommOptions& options) {
  const int rank = tcp.rank, size = tcp.size;
  const char* addr = tcp.master_addr.c_str();
  const char* port = tcp.master_port.c_str();
  ZT_CHECK(!tcp.master_addr.empty() && !tcp.master_port.empty(),
           "nccl bootstrap: RANK and WORLD_SIZE are set but MASTER_ADDR and "
           "MASTER_PORT are not");
  ncclUniqueId id{};
  const auto deadline = Clock::now() + std::chrono::duration<double>(options.timeout_s);
  if (rank == 0) {
    ZT_NCCL_CHECK(ncclGetUniqueId(&id));
    const int server = ::socket(AF_INET, SOCK_STREAM, 0);
    ZT_CHECK(server >= 0, "nccl bootstrap: socket: ", std::strerror(errno));
    const int yes = 1;
    ::setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    sockaddr_in bind_addr{};
    bind_addr.sin_family = AF_INET;
    bind_addr.sin_addr.s_addr = htonl(INADDR_ANY);
    bind_addr.sin_port = htons(static_cast<uint16_t>(std::atoi(port)));
    ZT_CHECK(::bind(server, reinterpret_cast<sockaddr*>(&bind_addr), sizeof(bind_addr)) == 0,
             "nccl bootstrap: cannot listen on port ", port, ": ", std::strerror(errno));
    ZT_CHECK(::listen(server, size) == 0, "nccl bootstrap: listen: ", std::strerror(errno));
    for (int peer = 1; peer < size; ++peer) {
      const int client = ::accept(server, nullptr, nullptr);
      ZT_CHECK(client >= 0, "nccl bootstrap: accept: ", std::strerror(errno));
      ZT_CHECK(::send(client, &id, sizeof(id), 0) == static_cast<ssize_t>(sizeof(id)),
               "nccl bootstrap: send: ", std::strerror(errno));
      ::close(client);
    }
    ::close(server);
    return id;
  }
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  for (;;) {  // rank 0 may not be listening yet
    addrinfo* found = nullptr;
    if (::getaddrinfo(addr, port, &hints, &found) == 0) {
      const int sock = ::socket(AF_INET, SOCK_STREAM, 0);
      const bool connected = sock >= 0 && ::connect(sock, found->ai_addr, found->ai_addrlen) == 0;
      ::freeaddrinfo(found);
      if (connected) {
        size_t got = 0;
        while (got < sizeof(id)) {
          const ssize_t n = ::recv(sock, reinterpret_cast<char*>(&id) + got, sizeof(id) - got, 0);
          ZT_CHECK(n > 0, "nccl bootstrap: the connection to ", addr, ":", port, " closed early");
          got += static_cast<size_t>(n);
        }
        ::close(sock);
        return id;
      }
      if (sock >= 0) ::close(sock);
    }
    ZT_CHECK(Clock::now() < deadline, "nccl bootstrap: rank 0 at ", addr, ":", port,
             " did not answer within ", options.timeout_s, " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(const CommOptions& options, int device,
                                                     Communicator* mpi, const TcpBootstrap& tcp) {
  int rank = 0, size = 1;
  ncclUniqueId id{};
  if (mpi) {
    rank = mpi->rank();
    size = mpi->size();
    if (rank == 0) ZT_NCCL_CHECK(ncclGetUniqueId(&id));
    mpi->broadcast(&id, sizeof(id), 0);
  } else {
    rank = tcp.rank;
    size = tcp.size;
    ZT_CHECK(size >= 1 && rank >= 0 && rank < size, "nccl: RANK ", rank, " of WORLD_SIZE ", size);
    id = tcp_bootstrap(tcp, options);
  }
  return std::make_unique<NcclCommunicator>(options, device, rank, size, id);
}

}  // namespace zerotune
