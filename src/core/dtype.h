// Element types and the conversions between them. bf16/f16 are stored as raw 16-bit patterns;
// conversion to f32 is exact, conversion from f32 rounds to nearest even.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace zerotune {

enum class DType : uint8_t { f32, bf16, f16, i32, i64, f64 };

int64_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);              // "f32", "bf16", ...
const char* dtype_safetensors_name(DType dtype);  // "F32", "BF16", ...
// Parses either spelling ("f32"/"F32", "bf16"/"BF16", "float32", ...); false when unknown.
bool parse_dtype(std::string_view name, DType* out);

inline float bf16_to_f32(uint16_t bits) {
  uint32_t word = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &word, sizeof(value));
  return value;
}

inline uint16_t f32_to_bf16(float value) {
  uint32_t word;
  std::memcpy(&word, &value, sizeof(word));
  if ((word & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((word >> 16) | 0x40);  // NaN
  const uint32_t rounding = 0x7fffu + ((word >> 16) & 1u);
  return static_cast<uint16_t>((word + rounding) >> 16);
}

float f16_to_f32(uint16_t bits);
uint16_t f32_to_f16(float value);

// Converts n elements between floating dtypes (f32, bf16, f16); same dtype is a copy.
void convert(void* dst, DType dst_dtype, const void* src, DType src_dtype, int64_t n);

}  // namespace zerotune
