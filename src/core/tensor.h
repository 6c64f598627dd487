// Non-owning tensor views and owning buffers. Views are contiguous row-major; sizes and offsets
// are int64_t because a flat 70B shard exceeds 2^31 elements.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "core/check.h"
#include "core/device.h"
#include "core/dtype.h"

namespace zerotune {

class Shape {
 public:
  static constexpr int kMaxDims = 5;

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);

  int ndim() const { return ndim_; }
  int64_t operator[](int i) const { return dims_[static_cast<size_t>(i)]; }
  int64_t numel() const;
  void push_back(int64_t dim);
  bool operator==(const Shape& other) const;
  bool operator!=(const Shape& other) const { return !(*this == other); }
  std::string str() const;  // "[4, 288]"

 private:
  std::array<int64_t, kMaxDims> dims_{};
  int ndim_ = 0;
};

std::ostream& operator<<(std::ostream& os, const Shape& shape);

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::f32;
  Shape shape;
  Device device;

  Tensor() = default;
  Tensor(void* data, DType dtype, Shape shape, Device device = Device::cpu())
      : data(data), dtype(dtype), shape(shape), device(device) {}

  int64_t numel() const { return shape.numel(); }
  int64_t nbytes() const { return numel() * dtype_size(dtype); }
  int ndim() const { return shape.ndim(); }
  int64_t dim(int i) const { return shape[i]; }

  template <typename T>
  T* ptr() const {
    return static_cast<T*>(data);
  }
  float* f32() const;          // checks dtype f32
  const int32_t* i32() const;  // checks dtype i32

  // Rows [start, start + count) along the first dimension.
  Tensor rows(int64_t start, int64_t count) const;
  // The same memory seen with another shape of equal numel.
  Tensor reshape(Shape new_shape) const;
  // A flat range of elements [offset, offset + count), shape [count].
  Tensor flat(int64_t offset, int64_t count) const;
};

std::string describe(const Tensor& t);  // "f32[4, 288]"

// Always-on shape/dtype checks used at kernel boundaries; `op` and `name` go in the message.
void check_shape(const char* op, const char* name, const Tensor& t, const Shape& expected);
void check_dtype(const char* op, const char* name, const Tensor& t, DType expected);
void check_same_device(const char* op, const Tensor& a, const Tensor& b);

// dst <- src (same dtype and shape), between any two devices; returns when done.
void copy(const Tensor& dst, const Tensor& src);
// dst <- src (same shape) converted between floating dtypes (f32, bf16, f16; rounding to nearest
// even), between any two devices; the conversion runs on the host.
void convert_copy(const Tensor& dst, const Tensor& src);

// An owning, 64-byte aligned allocation on a device. Move-only.
class Buffer {
 public:
  Buffer() = default;
  Buffer(DType dtype, Shape shape, Device device = Device::cpu());
  ~Buffer();
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  // A buffer that refers to memory owned elsewhere (a sharding engine's gathered copy) and frees
  // nothing; the owner keeps the memory alive for as long as the borrowed buffer is used.
  static Buffer borrow(const Tensor& view);
  bool owns_memory() const { return owned_; }

  const Tensor& view() const { return view_; }
  operator const Tensor&() const { return view_; }  // NOLINT: a buffer is usable as its view
  float* f32() const { return view_.f32(); }
  int64_t numel() const { return view_.numel(); }
  void zero();

 private:
  void release();
  Tensor view_;
  bool owned_ = true;
};

}  // namespace zerotune
