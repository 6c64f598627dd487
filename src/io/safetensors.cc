#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <numeric>
#include <unordered_set>
#include <utility>

#include "core/check.h"
#include "core/json.h"

namespace zerotune {

namespace {

constexpr int64_t kLengthBytes = 8;  // the little-endian u64 header length
constexpr std::string_view kMetadataKey = "__metadata__";

[[noreturn]] void fail_file(const std::string& path, const std::string& message) {
  fail(str("[safetensors] ", path, ": ", message));
}

std::string tensor_label(const std::string& name) {
  return str("tensor ", json::quote(name));
}

// Only the exact safetensors spellings: parse_dtype also takes "f32" or "float32", which a
// conforming writer never produces.
bool parse_safetensors_dtype(const std::string& name, DType* out) {
  for (DType dtype : {DType::f32, DType::bf16, DType::f16, DType::i32, DType::i64}) {
    if (name == dtype_safetensors_name(dtype)) {
      *out = dtype;
      return true;
    }
  }
  return false;
}

const json::Value& require_member(const std::string& path, const std::string& name,
                                  const json::Value& entry, std::string_view key) {
  const json::Value* value = entry.find(key);
  if (value == nullptr) {
    fail_file(path, str(tensor_label(name), " has no \"", key, "\" (header entry is ", entry.dump(),
                        ")"));
  }
  return *value;
}

DType parse_entry_dtype(const std::string& path, const std::string& name,
                        const json::Value& entry) {
  const std::string what = str("[safetensors] ", path, ": ", tensor_label(name), ": \"dtype\"");
  const std::string& text = require_member(path, name, entry, "dtype").as_string(what);
  DType dtype;
  if (!parse_safetensors_dtype(text, &dtype)) {
    fail_file(path, str(tensor_label(name), " has dtype ", json::quote(text),
                        ", which zerotune does not support (expected F32, BF16, F16, I32 or I64)"));
  }
  return dtype;
}

Shape parse_entry_shape(const std::string& path, const std::string& name,
                        const json::Value& entry) {
  const std::string what = str("[safetensors] ", path, ": ", tensor_label(name), ": \"shape\"");
  const json::Value& shape_value = require_member(path, name, entry, "shape");
  const std::vector<json::Value>& dims = shape_value.as_array(what);
  if (dims.size() > static_cast<size_t>(Shape::kMaxDims)) {
    fail_file(path, str(tensor_label(name), " shape ", shape_value.dump(), " has ", dims.size(),
                        " dimensions, at most ", Shape::kMaxDims, " are supported"));
  }
  Shape shape;
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t dim = dims[i].as_int64(str(what, "[", i, "]"));
    if (dim < 0) {
      fail_file(path, str(tensor_label(name), " shape ", shape_value.dump(),
                          " has a negative dimension"));
    }
    shape.push_back(dim);
  }
  return shape;
}

// numel * element size, or -1 when it does not fit in int64.
int64_t checked_nbytes(const Shape& shape, DType dtype) {
  int64_t bytes = dtype_size(dtype);
  for (int i = 0; i < shape.ndim(); ++i) {
    if (__builtin_mul_overflow(bytes, shape[i], &bytes)) return -1;
  }
  return bytes;
}

SafetensorsEntry parse_entry(const std::string& path, const std::string& name,
                             const json::Value& entry, int64_t data_bytes) {
  entry.as_object(str("[safetensors] ", path, ": ", tensor_label(name), " header entry"));
  SafetensorsEntry result;
  result.name = name;
  result.dtype = parse_entry_dtype(path, name, entry);
  result.shape = parse_entry_shape(path, name, entry);

  const std::string what =
      str("[safetensors] ", path, ": ", tensor_label(name), ": \"data_offsets\"");
  const json::Value& offsets_value = require_member(path, name, entry, "data_offsets");
  const std::vector<json::Value>& offsets = offsets_value.as_array(what);
  if (offsets.size() != 2) {
    fail_file(path, str(tensor_label(name), " data_offsets ", offsets_value.dump(),
                        " must be [begin, end]"));
  }
  result.begin = offsets[0].as_int64(str(what, "[0]"));
  result.end = offsets[1].as_int64(str(what, "[1]"));
  const std::string label =
      str(tensor_label(name), " data_offsets [", result.begin, ", ", result.end, "]");
  if (result.begin < 0 || result.end < 0) fail_file(path, str(label, " are negative"));
  if (result.begin > result.end) fail_file(path, str(label, " begin after end"));
  if (result.end > data_bytes) {
    fail_file(path, str(label, " past the end of the data section (", data_bytes, " bytes)"));
  }
  const int64_t expected = checked_nbytes(result.shape, result.dtype);
  if (expected < 0) {
    fail_file(path, str(tensor_label(name), " shape ", result.shape, " is too large"));
  }
  if (result.end - result.begin != expected) {
    fail_file(path,
              str(label, " hold ", result.end - result.begin, " bytes but ",
                  dtype_safetensors_name(result.dtype), " ", result.shape, " needs ", expected));
  }
  return result;
}

std::map<std::string, std::string> parse_metadata(const std::string& path,
                                                  const json::Value& value) {
  const std::string what = str("[safetensors] ", path, ": \"__metadata__\"");
  std::map<std::string, std::string> metadata;
  for (const auto& [key, item] : value.as_object(what)) {
    metadata[key] = item.as_string(str(what, " ", json::quote(key)));
  }
  return metadata;
}

void check_no_overlap(const std::string& path, const std::vector<SafetensorsEntry>& entries) {
  std::vector<const SafetensorsEntry*> sorted;
  for (const SafetensorsEntry& entry : entries) {
    if (entry.end > entry.begin) sorted.push_back(&entry);  // empty ranges overlap nothing
  }
  std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  for (size_t i = 1; i < sorted.size(); ++i) {
    // Sorted by begin, the ranges are disjoint iff each ends at or before the next begins.
    const SafetensorsEntry& a = *sorted[i - 1];
    const SafetensorsEntry& b = *sorted[i];
    if (b.begin < a.end) {
      fail_file(path, str(tensor_label(a.name), " [", a.begin, ", ", a.end, "] and ",
                          tensor_label(b.name), " [", b.begin, ", ", b.end,
                          "] overlap in the data section"));
    }
  }
}

uint64_t read_u64_le(const char* bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  return value;
}

void write_u64_le(char* bytes, uint64_t value) {
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((value >> (8 * i)) & 0xFF);
}

bool is_aligned(const void* p, int64_t alignment) {
  return reinterpret_cast<uintptr_t>(p) % static_cast<uintptr_t>(alignment) == 0;
}

// Closes a file descriptor on scope exit.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Reading

SafetensorsFile::Mapping::Mapping(Mapping&& other) noexcept
    : address_(std::exchange(other.address_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SafetensorsFile::Mapping& SafetensorsFile::Mapping::operator=(Mapping&& other) noexcept {
  if (this != &other) {
    if (address_) ::munmap(address_, size_);
    address_ = std::exchange(other.address_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SafetensorsFile::Mapping::~Mapping() {
  if (address_) ::munmap(address_, size_);
}

void SafetensorsFile::FreeDeleter::operator()(char* p) const {
  std::free(p);
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile file;
  file.path_ = path;
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) fail_file(path, str("cannot open: ", std::strerror(errno)));
  struct stat info;
  if (::fstat(fd.get(), &info) != 0) fail_file(path, str("cannot stat: ", std::strerror(errno)));
  if (!S_ISREG(info.st_mode)) fail_file(path, "is not a regular file");
  const int64_t file_bytes = static_cast<int64_t>(info.st_size);
  if (file_bytes < kLengthBytes) {
    fail_file(path, str("file is ", file_bytes,
                        " bytes, shorter than the 8-byte header length that starts the format"));
  }
  void* address =
      ::mmap(nullptr, static_cast<size_t>(file_bytes), PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (address == MAP_FAILED) fail_file(path, str("cannot mmap: ", std::strerror(errno)));
  file.mapping_ = Mapping(address, static_cast<size_t>(file_bytes));
  const char* bytes = file.mapping_.data();

  const uint64_t header_bytes = read_u64_le(bytes);
  if (header_bytes > static_cast<uint64_t>(kMaxHeaderBytes)) {
    fail_file(path, str("header length ", header_bytes,
                        " exceeds the 100 MiB limit"
                        " (not a safetensors file, or corrupt)"));
  }
  if (static_cast<int64_t>(header_bytes) > file_bytes - kLengthBytes) {
    fail_file(path, str("header length ", header_bytes, " runs past the end of the file (",
                        file_bytes, " bytes)"));
  }
  const int64_t header_size = static_cast<int64_t>(header_bytes);
  file.data_bytes_ = file_bytes - kLengthBytes - header_size;

  json::Value header;
  try {
    header = json::parse(std::string_view(bytes + kLengthBytes, header_bytes), "header");
  } catch (const Error& e) {
    fail_file(path, str("invalid JSON header: ", e.what()));
  }
  for (const auto& [name, value] : header.as_object(str("[safetensors] ", path, ": header"))) {
    if (name == kMetadataKey) {
      file.metadata_ = parse_metadata(path, value);
      continue;
    }
    file.entries_.push_back(parse_entry(path, name, value, file.data_bytes_));
  }
  check_no_overlap(path, file.entries_);

  const char* data = bytes + kLengthBytes + header_size;
  bool aligned = true;
  for (size_t i = 0; i < file.entries_.size(); ++i) {
    const SafetensorsEntry& entry = file.entries_[i];
    file.index_.emplace(entry.name, i);
    file.tensor_data_.push_back(data + entry.begin);
    aligned = aligned && is_aligned(file.tensor_data_.back(), dtype_size(entry.dtype));
  }
  if (!aligned) file.relocate_misaligned_tensors();
  return file;
}

void SafetensorsFile::relocate_misaligned_tensors() {
  constexpr int64_t kAlignment = 64;
  std::vector<int64_t> offsets;
  int64_t total = 0;
  for (const SafetensorsEntry& entry : entries_) {
    offsets.push_back(total);
    total += (entry.end - entry.begin + kAlignment - 1) / kAlignment * kAlignment;
  }
  char* copy = nullptr;
  if (total > 0) {
    copy = static_cast<char*>(std::aligned_alloc(kAlignment, static_cast<size_t>(total)));
    if (copy == nullptr) {
      fail_file(path_, str("out of memory copying ", total, " bytes of misaligned tensors"));
    }
  }
  aligned_copy_.reset(copy);
  for (size_t i = 0; i < entries_.size(); ++i) {
    const int64_t bytes = entries_[i].end - entries_[i].begin;
    char* destination = copy ? copy + offsets[i] : nullptr;
    if (bytes > 0) std::memcpy(destination, tensor_data_[i], static_cast<size_t>(bytes));
    tensor_data_[i] = destination;
  }
  mapping_ = Mapping();
}

const SafetensorsEntry* SafetensorsFile::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

Tensor SafetensorsFile::tensor(const SafetensorsEntry& entry) const {
  const SafetensorsEntry* first = entries_.data();
  const SafetensorsEntry* last = first + entries_.size();
  const SafetensorsEntry* own = &entry;
  // An entry copied out of entries() (or from another file) is looked up by name.
  if (std::less<const SafetensorsEntry*>()(own, first) ||
      !std::less<const SafetensorsEntry*>()(own, last)) {
    own = find(entry.name);
    if (own == nullptr) fail_file(path_, str("no ", tensor_label(entry.name), " in this file"));
  }
  const size_t i = static_cast<size_t>(own - first);
  // The mapping is PROT_READ; the const_cast only fits Tensor's mutable pointer.
  return Tensor(const_cast<char*>(tensor_data_[i]), own->dtype, own->shape, Device::cpu());
}

// ---------------------------------------------------------------------------------------------
// Writing

namespace {

void check_tensors_writable(const std::string& path, const std::vector<NamedTensor>& tensors) {
  std::unordered_set<std::string_view> names;
  for (const NamedTensor& named : tensors) {
    if (named.name.empty()) fail_file(path, "cannot write a tensor with an empty name");
    if (named.name == kMetadataKey) {
      fail_file(path, "\"__metadata__\" is reserved and cannot name a tensor");
    }
    if (!names.insert(named.name).second) {
      fail_file(path, str("duplicate ", tensor_label(named.name), " in the tensors to write"));
    }
    const Tensor& t = named.tensor;
    if (!t.device.is_cpu()) {
      fail_file(path, str(tensor_label(named.name), " is on ", t.device.name(),
                          "; copy it to the CPU before writing"));
    }
    if (t.data == nullptr && t.numel() > 0) {
      fail_file(path, str(tensor_label(named.name), " ", describe(t), " has no data"));
    }
  }
}

// Data layout: contiguous, by decreasing element size (stable), so each tensor begins at a
// multiple of its element size given an 8-byte aligned data section.
std::vector<int64_t> layout_begins(const std::vector<NamedTensor>& tensors,
                                   std::vector<size_t>* order) {
  order->resize(tensors.size());
  std::iota(order->begin(), order->end(), size_t{0});
  std::stable_sort(order->begin(), order->end(), [&](size_t a, size_t b) {
    return dtype_size(tensors[a].tensor.dtype) > dtype_size(tensors[b].tensor.dtype);
  });
  std::vector<int64_t> begins(tensors.size());
  int64_t offset = 0;
  for (size_t i : *order) {
    begins[i] = offset;
    offset += tensors[i].tensor.nbytes();
  }
  return begins;
}

std::string build_header(const std::vector<NamedTensor>& tensors,
                         const std::vector<int64_t>& begins,
                         const std::map<std::string, std::string>& metadata) {
  json::Value header = json::Value::object();
  if (!metadata.empty()) {
    json::Value meta = json::Value::object();
    for (const auto& [key, value] : metadata) meta.set(key, value);
    header.set(std::string(kMetadataKey), std::move(meta));
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i].tensor;
    json::Value shape = json::Value::array();
    for (int d = 0; d < t.ndim(); ++d) shape.push_back(t.dim(d));
    json::Value offsets = json::Value::array();
    offsets.push_back(begins[i]);
    offsets.push_back(begins[i] + t.nbytes());
    json::Value entry = json::Value::object();
    entry.set("dtype", dtype_safetensors_name(t.dtype));
    entry.set("shape", std::move(shape));
    entry.set("data_offsets", std::move(offsets));
    header.set(tensors[i].name, std::move(entry));
  }
  std::string text = header.dump();
  // Spaces after the JSON are valid trailing whitespace; they put the data section on 8 bytes.
  const size_t padding = (8 - (static_cast<size_t>(kLengthBytes) + text.size()) % 8) % 8;
  text.append(padding, ' ');
  return text;
}

// The temporary file of an atomic write; removed unless committed.
class TempFile {
 public:
  explicit TempFile(std::string final_path)
      : final_path_(std::move(final_path)), path_(final_path_ + ".tmp") {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail_io("cannot create");
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  void write_all(const char* data, int64_t size) {
    constexpr int64_t kMaxChunk = int64_t{1} << 30;  // write() moves at most ~2 GiB per call
    while (size > 0) {
      const ssize_t written = ::write(fd_, data, static_cast<size_t>(std::min(size, kMaxChunk)));
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) fail_io("cannot write");
      data += written;
      size -= written;
    }
  }

  // fsync, close and rename over the final path; only then is the new file visible.
  void commit() {
    if (::fsync(fd_) != 0) fail_io("cannot fsync");
    const int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) fail_io("cannot close");
    if (::rename(path_.c_str(), final_path_.c_str()) != 0) fail_io("cannot rename");
    committed_ = true;
    sync_parent_directory();
  }

 private:
  [[noreturn]] void fail_io(const char* action) const {
    fail_file(final_path_, str(action, " ", path_, ": ", std::strerror(errno)));
  }

  // Makes the rename itself durable. Best effort: some file systems refuse fsync on directories,
  // and the new file is already complete under its name.
  void sync_parent_directory() const {
    const size_t slash = final_path_.find_last_of('/');
    const std::string directory =
        slash == std::string::npos ? "." : final_path_.substr(0, slash + 1);
    FileDescriptor fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() >= 0) (void)::fsync(fd.get());
  }

  std::string final_path_;
  std::string path_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace

void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  check_tensors_writable(path, tensors);
  std::vector<size_t> order;
  const std::vector<int64_t> begins = layout_begins(tensors, &order);
  const std::string header = build_header(tensors, begins, metadata);

  TempFile file(path);
  char length[kLengthBytes];
  write_u64_le(length, header.size());
  file.write_all(length, kLengthBytes);
  file.write_all(header.data(), static_cast<int64_t>(header.size()));
  for (size_t i : order) {
    const Tensor& t = tensors[i].tensor;
    file.write_all(static_cast<const char*>(t.data), t.nbytes());
  }
  file.commit();
}

}  // namespace zerotune
