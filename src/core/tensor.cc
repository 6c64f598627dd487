#include "core/tensor.h"

#include "core/device_memory.h"
#include "core/memory.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ostream>

namespace zerotune {

std::string Device::name() const {
  return type == DeviceType::cpu ? std::string("cpu") : str("cuda:", index);
}

Shape::Shape(std::initializer_list<int64_t> dims) {
  ZT_CHECK(dims.size() <= kMaxDims, "Shape: at most ", kMaxDims, " dims, got ", dims.size());
  for (int64_t d : dims) push_back(d);
}

void Shape::push_back(int64_t dim) {
  ZT_CHECK(ndim_ < kMaxDims, "Shape: at most ", kMaxDims, " dims");
  ZT_CHECK(dim >= 0, "Shape: negative dimension ", dim);
  dims_[static_cast<size_t>(ndim_++)] = dim;
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < ndim_; ++i) n *= dims_[static_cast<size_t>(i)];
  return n;
}

bool Shape::operator==(const Shape& other) const {
  if (ndim_ != other.ndim_) return false;
  for (int i = 0; i < ndim_; ++i) {
    if (dims_[static_cast<size_t>(i)] != other.dims_[static_cast<size_t>(i)]) return false;
  }
  return true;
}

std::string Shape::str() const {
  std::string s = "[";
  for (int i = 0; i < ndim_; ++i) {
    if (i) s += ", ";
    s += std::to_string(dims_[static_cast<size_t>(i)]);
  }
  return s + "]";
}

std::ostream& operator<<(std::ostream& os, const Shape& shape) {
  return os << shape.str();
}

float* Tensor::f32() const {
  ZT_CHECK(dtype == DType::f32, "expected an f32 tensor, got ", describe(*this));
  return static_cast<float*>(data);
}

const int32_t* Tensor::i32() const {
  ZT_CHECK(dtype == DType::i32, "expected an i32 tensor, got ", describe(*this));
  return static_cast<const int32_t*>(data);
}

Tensor Tensor::rows(int64_t start, int64_t count) const {
  ZT_CHECK(ndim() >= 1 && start >= 0 && count >= 0 && start + count <= dim(0), "Tensor::rows: [",
           start, ", ", start + count, ") out of ", describe(*this));
  Shape s;
  s.push_back(count);
  for (int i = 1; i < ndim(); ++i) s.push_back(dim(i));
  const int64_t row_bytes = dim(0) ? nbytes() / dim(0) : 0;
  return Tensor(static_cast<char*>(data) + start * row_bytes, dtype, s, device);
}

Tensor Tensor::reshape(Shape new_shape) const {
  ZT_CHECK(new_shape.numel() == numel(), "Tensor::reshape: ", describe(*this),
           " cannot be seen as ", new_shape);
  return Tensor(data, dtype, new_shape, device);
}

Tensor Tensor::flat(int64_t offset, int64_t count) const {
  ZT_CHECK(offset >= 0 && count >= 0 && offset + count <= numel(), "Tensor::flat: [", offset, ", ",
           offset + count, ") out of ", describe(*this));
  return Tensor(static_cast<char*>(data) + offset * dtype_size(dtype), dtype, Shape{count}, device);
}

std::string describe(const Tensor& t) {
  return str(dtype_name(t.dtype), t.shape.str());
}

void check_shape(const char* op, const char* name, const Tensor& t, const Shape& expected) {
  ZT_CHECK(t.shape == expected, op, ": ", name, " is ", t.shape, " but expected ", expected);
}

void check_dtype(const char* op, const char* name, const Tensor& t, DType expected) {
  ZT_CHECK(t.dtype == expected, op, ": ", name, " is ", dtype_name(t.dtype), " but expected ",
           dtype_name(expected));
}

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  ZT_CHECK(a.device == b.device, op, ": tensors on ", a.device.name(), " and ", b.device.name());
}

Buffer::Buffer(DType dtype, Shape shape, Device device) {
  view_ = Tensor(nullptr, dtype, shape, device);
  view_.data = device.is_cpu() ? host_alloc(static_cast<size_t>(view_.nbytes()))
                               : device_alloc(view_.nbytes(), device);
  zero();
}

Buffer::~Buffer() {
  release();
}

Buffer::Buffer(Buffer&& other) noexcept : view_(other.view_), owned_(other.owned_) {
  other.view_.data = nullptr;
}

Buffer Buffer::borrow(const Tensor& view) {
  Buffer b;
  b.view_ = view;
  b.owned_ = false;
  return b;
}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    release();
    view_ = other.view_;
    owned_ = other.owned_;
    other.view_.data = nullptr;
  }
  return *this;
}

void Buffer::zero() {
  if (!view_.data) return;
  if (view_.device.is_cpu()) {
    // Large buffers in parallel pieces: the first touch of their pages is most of the cost.
    const int64_t bytes = view_.nbytes(), piece = int64_t{1} << 24;
    const int64_t pieces = (bytes + piece - 1) / piece;
    char* base = static_cast<char*>(view_.data);
#pragma omp parallel for schedule(static) if (pieces > 4)
    for (int64_t i = 0; i < pieces; ++i) {
      std::memset(base + i * piece, 0, static_cast<size_t>(std::min(piece, bytes - i * piece)));
    }
  } else {
    device_memset_zero(view_.data, view_.nbytes(), view_.device);
  }
}

void copy(const Tensor& dst, const Tensor& src) {
  ZT_CHECK(dst.dtype == src.dtype && dst.shape == src.shape, "copy: ", describe(src), " into ",
           describe(dst));
  copy_bytes(dst.data, dst.device, src.data, src.device, src.nbytes());
}

void convert_copy(const Tensor& dst, const Tensor& src) {
  ZT_CHECK(dst.shape == src.shape, "convert_copy: ", describe(src), " into ", describe(dst));
  if (dst.dtype == src.dtype) {
    copy(dst, src);
    return;
  }
  Buffer host_src;
  const void* values = src.data;
  if (!src.device.is_cpu()) {
    host_src = Buffer(src.dtype, src.shape);
    copy(host_src, src);
    values = host_src.view().data;
  }
  if (dst.device.is_cpu()) {
    convert(dst.data, dst.dtype, values, src.dtype, src.numel());
    return;
  }
  Buffer staged(dst.dtype, dst.shape);
  convert(staged.view().data, dst.dtype, values, src.dtype, src.numel());
  copy(dst, staged);
}

void Buffer::release() {
  if (owned_ && view_.data) {
    if (view_.device.is_cpu()) {
      host_free(view_.data);
    } else {
      device_free(view_.data, view_.device);
    }
  }
  view_.data = nullptr;
  owned_ = true;
}

}  // namespace zerotune
