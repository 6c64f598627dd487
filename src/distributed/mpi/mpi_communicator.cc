// Collectives over MPI for CPU buffers. Every operation is posted non-blocking and completed by a
// polling wait with a deadline, so that a dead or hung rank ends the job within the collective
// timeout instead of hanging it: the ranks that time out tell each other they are present, and the
// ones that never answer are named before MPI_Abort.
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <thread>
#include <vector>

#include "core/check.h"
#include "distributed/communicator.h"

namespace zerotune {
namespace {

constexpr int kPresenceTag = 0x5a17;  // "I am waiting in collective #seq"

using Clock = std::chrono::steady_clock;

void check_mpi(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  fail(str(call, " failed: ", std::string(text, static_cast<size_t>(length))));
}

MPI_Datatype mpi_type(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return MPI_FLOAT;
    case DType::f64:
      return MPI_DOUBLE;
    case DType::bf16:
    case DType::f16:
      return MPI_UINT16_T;
    case DType::i32:
      return MPI_INT32_T;
    case DType::i64:
      return MPI_INT64_T;
  }
  return MPI_DATATYPE_NULL;
}

void check_reducible(DType dtype, const char* op) {
  ZT_CHECK(dtype == DType::f32 || dtype == DType::f64 || dtype == DType::i64, op, ": sums ",
           dtype_name(dtype), " buffers, which MPI reduces only as f32, f64 or i64");
}

class MpiCommunicator;

class MpiRequest final : public CommRequest {
 public:
  MpiRequest(MpiCommunicator* comm, std::string what, int64_t seq)
      : comm_(comm), what_(std::move(what)), seq_(seq) {}
  ~MpiRequest() override;
  void wait() override;
  std::vector<MPI_Request> requests;

 private:
  MpiCommunicator* comm_;
  std::string what_;
  int64_t seq_;
  bool done_ = false;
};

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(const CommOptions& options) : options_(options) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided),
                "MPI_Init_thread");
      owns_mpi_ = true;
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    ZT_CHECK(options_.max_message_elements > 0 &&
                 options_.max_message_elements <= std::numeric_limits<int>::max(),
             "MpiCommunicator: max_message_elements ", options_.max_message_elements,
             " must be in [1, INT_MAX]");
  }

  ~MpiCommunicator() override {
    // A rank leaving on an error must not finalise: MPI_Finalize waits for the other ranks, which
    // may be waiting for this one. Exiting without it makes the launcher end the whole job.
    if (std::uncaught_exceptions() > 0) return;
    MPI_Comm_free(&comm_);
    if (owns_mpi_) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "mpi"; }

  std::unique_ptr<CommRequest> all_gather_async(const void* shard, void* full, int64_t count,
                                                DType dtype) override {
    const int64_t elem = dtype_size(dtype);
    volume_.all_gather += count * size_ * elem;
    auto req = start(str("all_gather of ", count * size_ * elem, " bytes"));
    char* out = static_cast<char*>(full);
    const bool in_place = shard == out + rank_ * count * elem;
    const int64_t max = options_.max_message_elements;
    if (count <= max) {
      req->requests.emplace_back();
      check_mpi(MPI_Iallgather(in_place ? MPI_IN_PLACE : shard, static_cast<int>(count),
                               mpi_type(dtype), out, static_cast<int>(count), mpi_type(dtype),
                               comm_, &req->requests.back()),
                "MPI_Iallgather");
      return req;
    }
    // Above one call's int count: each rank broadcasts its shard in pieces.
    if (!in_place)
      std::memcpy(out + rank_ * count * elem, shard, static_cast<size_t>(count * elem));
    for (int root = 0; root < size_; ++root) {
      for (int64_t begin = 0; begin < count; begin += max) {
        const int64_t n = std::min(max, count - begin);
        req->requests.emplace_back();
        check_mpi(MPI_Ibcast(out + (root * count + begin) * elem, static_cast<int>(n),
                             mpi_type(dtype), root, comm_, &req->requests.back()),
                  "MPI_Ibcast");
      }
    }
    return req;
  }

  std::unique_ptr<CommRequest> reduce_scatter_async(const void* full, void* shard, int64_t count,
                                                    DType dtype) override {
    check_reducible(dtype, "reduce_scatter");
    const int64_t elem = dtype_size(dtype);
    const char* in = static_cast<const char*>(full);
    ZT_CHECK(static_cast<const char*>(shard) + count * elem <= in ||
                 static_cast<const char*>(shard) >= in + count * size_ * elem,
             "reduce_scatter: the shard must not overlap the full buffer");
    volume_.reduce_scatter += count * size_ * elem;
    auto req = start(str("reduce_scatter of ", count * size_ * elem, " bytes"));
    const int64_t max = options_.max_message_elements;
    if (count <= max) {
      req->requests.emplace_back();
      check_mpi(MPI_Ireduce_scatter_block(full, shard, static_cast<int>(count), mpi_type(dtype),
                                          MPI_SUM, comm_, &req->requests.back()),
                "MPI_Ireduce_scatter_block");
      return req;
    }
    // Above one call's int count: one reduction to each rank, in pieces.
    for (int root = 0; root < size_; ++root) {
      for (int64_t begin = 0; begin < count; begin += max) {
        const int64_t n = std::min(max, count - begin);
        req->requests.emplace_back();
        check_mpi(MPI_Ireduce(in + (root * count + begin) * elem,
                              root == rank_ ? static_cast<char*>(shard) + begin * elem : nullptr,
                              static_cast<int>(n), mpi_type(dtype), MPI_SUM, root, comm_,
                              &req->requests.back()),
                  "MPI_Ireduce");
      }
    }
    return req;
  }

  std::unique_ptr<CommRequest> all_reduce_async(void* data, int64_t count, DType dtype) override {
    check_reducible(dtype, "all_reduce");
    const int64_t elem = dtype_size(dtype);
    volume_.all_reduce += count * elem;
    auto req = start(str("all_reduce of ", count * elem, " bytes"));
    for (int64_t begin = 0; begin < count; begin += options_.max_message_elements) {
      const int64_t n = std::min(options_.max_message_elements, count - begin);
      req->requests.emplace_back();
      check_mpi(
          MPI_Iallreduce(MPI_IN_PLACE, static_cast<char*>(data) + begin * elem, static_cast<int>(n),
                         mpi_type(dtype), MPI_SUM, comm_, &req->requests.back()),
          "MPI_Iallreduce");
    }
    return req;
  }

  void broadcast(void* data, int64_t bytes, int root) override {
    ZT_CHECK(root >= 0 && root < size_, "broadcast: root ", root, " of ", size_, " ranks");
    volume_.other += bytes;
    auto req = start(str("broadcast of ", bytes, " bytes"));
    for (int64_t begin = 0; begin < bytes; begin += options_.max_message_elements) {
      const int64_t n = std::min(options_.max_message_elements, bytes - begin);
      req->requests.emplace_back();
      check_mpi(MPI_Ibcast(static_cast<char*>(data) + begin, static_cast<int>(n), MPI_BYTE, root,
                           comm_, &req->requests.back()),
                "MPI_Ibcast");
    }
    req->wait();
  }

  void gather_to_root(const void* data, const int64_t* counts, void* out, DType dtype) override {
    const int64_t elem = dtype_size(dtype);
    const int64_t max = options_.max_message_elements;
    volume_.other += counts[rank_] * elem;
    auto req = start(str("gather to rank 0 of ", counts[rank_] * elem, " bytes"));
    constexpr int kGatherTag = 0x6a7;
    if (rank_ == 0) {
      char* dst = static_cast<char*>(out);
      std::memcpy(dst, data, static_cast<size_t>(counts[0] * elem));
      dst += counts[0] * elem;
      for (int src = 1; src < size_; ++src) {
        for (int64_t begin = 0; begin < counts[src]; begin += max) {
          const int64_t n = std::min(max, counts[src] - begin);
          req->requests.emplace_back();
          check_mpi(MPI_Irecv(dst + begin * elem, static_cast<int>(n), mpi_type(dtype), src,
                              kGatherTag, comm_, &req->requests.back()),
                    "MPI_Irecv");
        }
        dst += counts[src] * elem;
      }
    } else {
      for (int64_t begin = 0; begin < counts[rank_]; begin += max) {
        const int64_t n = std::min(max, counts[rank_] - begin);
        req->requests.emplace_back();
        check_mpi(MPI_Isend(static_cast<const char*>(data) + begin * elem, static_cast<int>(n),
                            mpi_type(dtype), 0, kGatherTag, comm_, &req->requests.back()),
                  "MPI_Isend");
      }
    }
    req->wait();
  }

  void barrier() override {
    auto req = start("barrier");
    req->requests.emplace_back();
    check_mpi(MPI_Ibarrier(comm_, &req->requests.back()), "MPI_Ibarrier");
    req->wait();
  }

  // Completes `requests`, polling; past the deadline, names the absent ranks and aborts the job.
  void wait_for(std::vector<MPI_Request>& requests, const std::string& what, int64_t seq) {
    const auto start = Clock::now();
    const auto deadline = start + std::chrono::duration<double>(options_.timeout_s);
    for (int64_t poll = 0;; ++poll) {
      int done = 0;
      check_mpi(MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done,
                            MPI_STATUSES_IGNORE),
                "MPI_Testall");
      if (done) return;
      if (poll < 200) continue;  // short collectives finish while spinning
      // Waiting ranks sleep so that oversubscribed ranks (more ranks than cores) get the CPU.
      std::this_thread::sleep_for(std::chrono::microseconds(poll < 2000 ? 20 : 200));
      if (poll % 64 == 0 && (presence_pending() || Clock::now() > deadline)) {
        report_timeout(what, seq, std::chrono::duration<double>(Clock::now() - start).count());
      }
    }
  }

  std::unique_ptr<MpiRequest> start(std::string what) {
    ++seq_;
    return std::make_unique<MpiRequest>(this, str("collective #", seq_, " (", what, ")"), seq_);
  }

 private:
  bool presence_pending() {
    int flag = 0;
    MPI_Iprobe(MPI_ANY_SOURCE, kPresenceTag, comm_, &flag, MPI_STATUS_IGNORE);
    return flag != 0;
  }

  // Tells every rank this one is alive and waiting, collects the others' notices for a grace
  // period, names the ranks that never answered, and aborts the job.
  [[noreturn]] void report_timeout(const std::string& what, int64_t seq, double waited_s) {
    std::vector<int64_t> mine(static_cast<size_t>(size_), seq);
    std::vector<MPI_Request> sends(static_cast<size_t>(size_), MPI_REQUEST_NULL);
    for (int r = 0; r < size_; ++r) {
      if (r != rank_) {
        MPI_Isend(&mine[static_cast<size_t>(r)], 1, MPI_INT64_T, r, kPresenceTag, comm_,
                  &sends[static_cast<size_t>(r)]);
      }
    }
    std::vector<int64_t> seen(static_cast<size_t>(size_), -1);
    seen[static_cast<size_t>(rank_)] = seq;
    const double grace_s = std::clamp(options_.timeout_s / 10.0, 1.0, 10.0);
    const auto until = Clock::now() + std::chrono::duration<double>(grace_s);
    while (Clock::now() < until) {
      int flag = 0;
      MPI_Status status;
      MPI_Iprobe(MPI_ANY_SOURCE, kPresenceTag, comm_, &flag, &status);
      if (flag) {
        int64_t their = 0;
        MPI_Recv(&their, 1, MPI_INT64_T, status.MPI_SOURCE, kPresenceTag, comm_, MPI_STATUS_IGNORE);
        seen[static_cast<size_t>(status.MPI_SOURCE)] = their;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    std::string absent, elsewhere;
    for (int r = 0; r < size_; ++r) {
      const int64_t s = seen[static_cast<size_t>(r)];
      if (s < 0) absent += str(absent.empty() ? "" : ", ", r);
      if (s >= 0 && s != seq) elsewhere += str(elsewhere.empty() ? "" : ", ", r, " at #", s);
    }
    const bool self_timed_out = waited_s >= options_.timeout_s;
    std::fprintf(stderr,
                 "zerotune: rank %d: %s %s after %.0f s; %s%s%s; ending the job "
                 "(--collective-timeout %.0f s)\n",
                 rank_, what.c_str(), self_timed_out ? "timed out" : "abandoned (a rank timed out)",
                 waited_s,
                 absent.empty() ? "every rank answered"
                                : str("rank(s) ", absent, " never arrived (dead or hung)").c_str(),
                 elsewhere.empty() ? "" : "; rank(s) waiting in other collectives: ",
                 elsewhere.c_str(), options_.timeout_s);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 3);
    std::_Exit(3);
  }

  CommOptions options_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  bool owns_mpi_ = false;
  int64_t seq_ = 0;
};

MpiRequest::~MpiRequest() {
  // An abandoned request is completed so that its buffers are not written after they are freed.
  if (!done_ && std::uncaught_exceptions() == 0) wait();
}

void MpiRequest::wait() {
  if (done_) return;
  comm_->wait_for(requests, what_, seq_);
  done_ = true;
}

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(const CommOptions& options) {
  CommOptions o = options;
  // Test hook: splitting large messages is otherwise reached only by buffers above 2^30
  // elements; tests set this to exercise it on small models.
  if (const char* max = std::getenv("ZEROTUNE_MAX_MESSAGE_ELEMENTS")) {
    o.max_message_elements = std::strtoll(max, nullptr, 10);
  }
  return std::make_unique<MpiCommunicator>(o);
}

}  // namespace zerotune
