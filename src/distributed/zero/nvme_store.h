// AdamW moments paged to a file (--offload-optimizer nvme): one file per rank, read and written
// with io_uring so that the next group's state loads while the current one updates. Where the
// kernel refuses io_uring (some container sandboxes), the same calls run as synchronous
// pread/pwrite, and engine() says so.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace zerotune {

class NvmeStore {
 public:
  // Creates `dir`/optimizer-rank-<rank>.bin of `floats` elements (zeros); removed on destruction.
  NvmeStore(const std::string& dir, int rank, int64_t floats);
  ~NvmeStore();
  NvmeStore(const NvmeStore&) = delete;
  NvmeStore& operator=(const NvmeStore&) = delete;

  // Queue a transfer of `count` floats at element `offset`; returns a ticket for wait().
  int64_t read_async(int64_t offset, float* dst, int64_t count);
  int64_t write_async(int64_t offset, const float* src, int64_t count);
  // Returns once the ticket's transfer is complete; errors name the file.
  void wait(int64_t ticket);
  void wait_all();

  const std::string& path() const { return path_; }
  const char* engine() const;
  int64_t bytes() const { return floats_ * 4; }

 private:
  struct Ring;
  // Queues a transfer of `count` floats at element `offset` in pieces of at most 1 GiB.
  int64_t submit(bool write, int64_t offset, char* data, int64_t count);
  void complete_one();
  std::string path_;
  int fd_ = -1;
  int64_t floats_ = 0;
  std::unique_ptr<Ring> ring_;
};

}  // namespace zerotune
