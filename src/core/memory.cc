#include "core/memory.h"

#include <sys/mman.h>

#include <cstdlib>

#include "core/check.h"

namespace zerotune {

namespace {
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kHugeFrom = size_t{4} << 20;
}  // namespace

void* host_alloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  const size_t align = bytes >= kHugeFrom ? kHugePage : 64;
  const size_t rounded = (bytes + align - 1) / align * align;
  void* p = std::aligned_alloc(align, rounded);
  ZT_CHECK(p != nullptr, "out of host memory allocating ", bytes, " bytes");
  // Best effort: without THP in madvise mode this is a no-op.
  if (align == kHugePage) madvise(p, rounded, MADV_HUGEPAGE);
  return p;
}

void host_free(void* p) {
  std::free(p);
}

}  // namespace zerotune
