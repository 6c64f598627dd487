#include "core/dtype.h"

#include <cmath>
#include <limits>

#include "core/check.h"

namespace zerotune {

int64_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return 4;
    case DType::bf16:
      return 2;
    case DType::f16:
      return 2;
    case DType::i32:
      return 4;
    case DType::i64:
    case DType::f64:
      return 8;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return "f32";
    case DType::bf16:
      return "bf16";
    case DType::f16:
      return "f16";
    case DType::i32:
      return "i32";
    case DType::i64:
      return "i64";
    case DType::f64:
      return "f64";
  }
  return "?";
}

const char* dtype_safetensors_name(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return "F32";
    case DType::bf16:
      return "BF16";
    case DType::f16:
      return "F16";
    case DType::i32:
      return "I32";
    case DType::i64:
      return "I64";
    case DType::f64:
      return "F64";
  }
  return "?";
}

bool parse_dtype(std::string_view name, DType* out) {
  struct Alias {
    const char* name;
    DType dtype;
  };
  static const Alias aliases[] = {
      {"f32", DType::f32},       {"F32", DType::f32},   {"float32", DType::f32},
      {"fp32", DType::f32},      {"bf16", DType::bf16}, {"BF16", DType::bf16},
      {"bfloat16", DType::bf16}, {"f16", DType::f16},   {"F16", DType::f16},
      {"float16", DType::f16},   {"fp16", DType::f16},  {"i32", DType::i32},
      {"I32", DType::i32},       {"int32", DType::i32}, {"i64", DType::i64},
      {"I64", DType::i64},       {"int64", DType::i64},
      {"f64", DType::f64},       {"F64", DType::f64},   {"float64", DType::f64},
  };
  for (const Alias& alias : aliases) {
    if (name == alias.name) {
      *out = alias.dtype;
      return true;
    }
  }
  return false;
}

// IEEE half <-> single, round to nearest even, subnormals and infinities handled.
float f16_to_f32(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1fu;
  const uint32_t mantissa = bits & 0x3ffu;
  float magnitude;
  if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -24);
  } else if (exponent == 31) {
    magnitude =
        mantissa ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else {
    magnitude = std::ldexp(static_cast<float>(mantissa | 0x400u), static_cast<int>(exponent) - 25);
  }
  uint32_t word;
  std::memcpy(&word, &magnitude, sizeof(word));
  word |= sign;
  float value;
  std::memcpy(&value, &word, sizeof(value));
  return value;
}

uint16_t f32_to_f16(float value) {
  uint32_t word;
  std::memcpy(&word, &value, sizeof(word));
  const uint16_t sign = static_cast<uint16_t>((word >> 16) & 0x8000u);
  const float magnitude = std::fabs(value);
  if (std::isnan(value)) return sign | 0x7e00u;
  if (magnitude >= 65520.0f) return sign | 0x7c00u;  // rounds to infinity
  if (magnitude < 6.103515625e-05f) {                // subnormal half: multiples of 2^-24
    const float scaled = magnitude * 16777216.0f;    // exact
    return sign | static_cast<uint16_t>(std::nearbyint(scaled));
  }
  uint32_t abs_word = word & 0x7fffffffu;
  // Rebias exponent from 127 to 15 and round the 23-bit mantissa to 10 bits, nearest even.
  const uint32_t rounding = 0xfffu + ((abs_word >> 13) & 1u);
  abs_word += rounding;
  const uint32_t half = ((abs_word >> 13) - ((127u - 15u) << 10));
  return sign | static_cast<uint16_t>(half);
}

// Conversions of whole models' groups (loading, the host optimizer's rounding) use every core.
constexpr int64_t kParallelElements = int64_t{1} << 20;

void convert(void* dst, DType dst_dtype, const void* src, DType src_dtype, int64_t n) {
  if (dst_dtype == src_dtype) {
    std::memcpy(dst, src, static_cast<size_t>(n * dtype_size(dst_dtype)));
    return;
  }
  // Checked here: nothing may throw inside the parallel loops below.
  ZT_CHECK(src_dtype == DType::f32 || src_dtype == DType::bf16 || src_dtype == DType::f16,
           "convert: source dtype ", dtype_name(src_dtype), " is not floating");
  auto load = [&](int64_t i) -> float {
    switch (src_dtype) {
      case DType::f32:
        return static_cast<const float*>(src)[i];
      case DType::bf16:
        return bf16_to_f32(static_cast<const uint16_t*>(src)[i]);
      case DType::f16:
        return f16_to_f32(static_cast<const uint16_t*>(src)[i]);
      default:
        return 0.0f;  // not reached: checked above
    }
  };
  switch (dst_dtype) {
    case DType::f32: {
      float* out = static_cast<float*>(dst);
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
      for (int64_t i = 0; i < n; ++i) out[i] = load(i);
      return;
    }
    case DType::bf16: {
      uint16_t* out = static_cast<uint16_t*>(dst);
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
      for (int64_t i = 0; i < n; ++i) out[i] = f32_to_bf16(load(i));
      return;
    }
    case DType::f16: {
      uint16_t* out = static_cast<uint16_t*>(dst);
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
      for (int64_t i = 0; i < n; ++i) out[i] = f32_to_f16(load(i));
      return;
    }
    default:
      fail(str("convert: destination dtype ", dtype_name(dst_dtype), " is not floating"));
  }
}

}  // namespace zerotune
