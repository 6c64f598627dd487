#include "distributed/zero/nvme_store.h"

#include <fcntl.h>
#include <liburing.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#include "core/check.h"

namespace zerotune {

namespace {
constexpr int64_t kMaxPieceBytes = int64_t{1} << 30;  // one submission moves at most 1 GiB
constexpr unsigned kQueueDepth = 64;

struct Piece {
  int64_t ticket;
  bool write;
  char* data;
  int64_t bytes, offset;
};
}  // namespace

struct NvmeStore::Ring {
  io_uring ring{};
  bool active = false;
  int64_t next_ticket = 1;
  std::map<int64_t, int64_t> pending;  // ticket -> pieces in flight
  std::map<uint64_t, Piece> pieces;    // user_data -> piece
  uint64_t next_piece = 1;
};

NvmeStore::NvmeStore(const std::string& dir, int rank, int64_t floats)
    : floats_(floats), ring_(std::make_unique<Ring>()) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  ZT_CHECK(!ec, dir, ": cannot create the optimizer-state folder (--nvme-path): ", ec.message());
  path_ = (std::filesystem::path(dir) / str("optimizer-rank-", rank, ".bin")).string();
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ZT_CHECK(fd_ >= 0, path_, ": cannot create: ", std::strerror(errno));
  ZT_CHECK(::ftruncate(fd_, floats * 4) == 0, path_, ": cannot size to ", floats * 4,
           " bytes: ", std::strerror(errno));
  ring_->active = io_uring_queue_init(kQueueDepth, &ring_->ring, 0) == 0;
}

NvmeStore::~NvmeStore() {
  if (ring_->active) {
    while (!ring_->pieces.empty()) complete_one();
    io_uring_queue_exit(&ring_->ring);
  }
  if (fd_ >= 0) ::close(fd_);
  ::unlink(path_.c_str());
}

const char* NvmeStore::engine() const {
  return ring_->active ? "io_uring" : "pread/pwrite (io_uring unavailable)";
}

namespace {

// Synchronous transfer of the whole range (also finishes a short asynchronous one).
void transfer_sync(int fd, const std::string& path, bool write, char* data, int64_t bytes,
                   int64_t offset) {
  while (bytes > 0) {
    const size_t n = static_cast<size_t>(std::min(bytes, kMaxPieceBytes));
    const ssize_t done = write ? ::pwrite(fd, data, n, offset) : ::pread(fd, data, n, offset);
    if (done < 0 && errno == EINTR) continue;
    ZT_CHECK(done > 0, path, ": cannot ", write ? "write" : "read", " ", n, " bytes at ", offset,
             ": ", done < 0 ? std::strerror(errno) : "end of file");
    data += done;
    bytes -= done;
    offset += done;
  }
}

}  // namespace

int64_t NvmeStore::read_async(int64_t offset, float* dst, int64_t count) {
  return submit(false, offset, reinterpret_cast<char*>(dst), count);
}

int64_t NvmeStore::write_async(int64_t offset, const float* src, int64_t count) {
  return submit(true, offset, reinterpret_cast<char*>(const_cast<float*>(src)), count);
}

int64_t NvmeStore::submit(bool write, int64_t offset, char* data, int64_t count) {
  ZT_CHECK(offset >= 0 && count >= 0 && offset + count <= floats_, path_, ": ",
           write ? "write" : "read", " of [", offset, ", ", offset + count, ") outside its ",
           floats_, " elements");
  const int64_t ticket = ring_->next_ticket++;
  if (!ring_->active) {
    transfer_sync(fd_, path_, write, data, count * 4, offset * 4);
    return ticket;
  }
  for (int64_t done = 0; done < count * 4; done += kMaxPieceBytes) {
    const int64_t n = std::min(kMaxPieceBytes, count * 4 - done);
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_->ring);
    while (!sqe) {
      complete_one();
      sqe = io_uring_get_sqe(&ring_->ring);
    }
    if (write) {
      io_uring_prep_write(sqe, fd_, data + done, static_cast<unsigned>(n), offset * 4 + done);
    } else {
      io_uring_prep_read(sqe, fd_, data + done, static_cast<unsigned>(n), offset * 4 + done);
    }
    const uint64_t id = ring_->next_piece++;
    io_uring_sqe_set_data64(sqe, id);
    ring_->pieces[id] = Piece{ticket, write, data + done, n, offset * 4 + done};
    ++ring_->pending[ticket];
  }
  io_uring_submit(&ring_->ring);
  return ticket;
}

void NvmeStore::complete_one() {
  io_uring_cqe* cqe = nullptr;
  int rc = io_uring_wait_cqe(&ring_->ring, &cqe);
  while (rc == -EINTR) rc = io_uring_wait_cqe(&ring_->ring, &cqe);
  ZT_CHECK(rc == 0, path_, ": io_uring wait failed: ", std::strerror(-rc));
  const uint64_t id = io_uring_cqe_get_data64(cqe);
  const int res = cqe->res;
  io_uring_cqe_seen(&ring_->ring, cqe);
  auto it = ring_->pieces.find(id);
  ZT_CHECK(it != ring_->pieces.end(), path_, ": unknown io_uring completion ", id);
  const Piece piece = it->second;
  ring_->pieces.erase(it);
  ZT_CHECK(res >= 0, path_, ": cannot ", piece.write ? "write" : "read", " ", piece.bytes,
           " bytes at ", piece.offset, ": ", std::strerror(-res));
  if (res < piece.bytes) {  // short transfer: finish the rest here
    transfer_sync(fd_, path_, piece.write, piece.data + res, piece.bytes - res, piece.offset + res);
  }
  if (--ring_->pending[piece.ticket] == 0) ring_->pending.erase(piece.ticket);
}

void NvmeStore::wait(int64_t ticket) {
  if (!ring_->active) return;
  while (ring_->pending.count(ticket)) complete_one();
}

void NvmeStore::wait_all() {
  if (!ring_->active) return;
  while (!ring_->pieces.empty()) complete_one();
}

}  // namespace zerotune
