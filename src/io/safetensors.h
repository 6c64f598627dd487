// The safetensors format: an 8-byte little-endian header length N, N bytes of JSON header
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the
// data section; offsets are relative to the data section. Files are untrusted: open() validates
// every size and offset before any tensor is handed out.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"

namespace zerotune {

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  int64_t begin = 0;  // byte offsets in the data section, as written in the header
  int64_t end = 0;
};

// A read-only memory mapping of a validated safetensors file. Move-only.
class SafetensorsFile {
 public:
  static constexpr int64_t kMaxHeaderBytes = int64_t{100} << 20;

  // Maps `path` and validates it; throws zerotune::Error naming the file, the tensor and what was
  // expected. Supported dtypes: F32, BF16, F16, I32, I64.
  static SafetensorsFile open(const std::string& path);

  SafetensorsFile(SafetensorsFile&&) noexcept = default;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept = default;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile() = default;

  const std::vector<SafetensorsEntry>& entries() const { return entries_; }  // header order
  const SafetensorsEntry* find(std::string_view name) const;                 // nullptr when absent
  // A CPU view of the tensor's bytes, aligned to its element size. The memory is mapped
  // read-only and lives as long as this object: callers must not write through it.
  Tensor tensor(const SafetensorsEntry& entry) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return path_; }
  int64_t data_section_bytes() const { return data_bytes_; }

 private:
  // Owns the mmap of the file; munmaps on destruction.
  class Mapping {
   public:
    Mapping() = default;
    Mapping(void* address, size_t size) : address_(address), size_(size) {}
    Mapping(Mapping&& other) noexcept;
    Mapping& operator=(Mapping&& other) noexcept;
    ~Mapping();
    const char* data() const { return static_cast<const char*>(address_); }

   private:
    void* address_ = nullptr;
    size_t size_ = 0;
  };
  struct FreeDeleter {
    void operator()(char* p) const;
  };
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view name) const { return std::hash<std::string_view>{}(name); }
  };

  SafetensorsFile() = default;
  void relocate_misaligned_tensors();

  std::string path_;
  Mapping mapping_;
  // Only when some tensor would sit at an address not aligned to its element size (a writer
  // that did not pad the header): all tensors are copied here, each aligned.
  std::unique_ptr<char, FreeDeleter> aligned_copy_;
  int64_t data_bytes_ = 0;
  std::vector<SafetensorsEntry> entries_;
  std::vector<const char*> tensor_data_;  // parallel to entries_
  std::unordered_map<std::string, size_t, NameHash, std::equal_to<>> index_;
  std::map<std::string, std::string> metadata_;
};

struct NamedTensor {
  std::string name;
  Tensor tensor;  // CPU, any supported dtype
};

// Writes tensors (header in the given order) and metadata to `path` + ".tmp", fsyncs it and
// renames it over `path`, so that a crash never leaves a half-written file under the real name.
// The data section starts 8-byte aligned (the header is padded with spaces, as HF does) and is
// laid out contiguously by decreasing element size, so every tensor is aligned and HF's loader,
// which rejects gaps, accepts the file. Duplicate or reserved names throw before anything is
// written.
void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace zerotune
