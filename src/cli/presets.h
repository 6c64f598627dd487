// Built-in model shapes shared by `bench` and `init`.
#pragma once

#include <cstdint>
#include <string>

namespace zerotune {

struct ModelPreset {
  const char* name;
  int64_t dim, layers, heads, kv_heads, hidden, vocab, seq_len, batch;
};

inline constexpr ModelPreset kModelPresets[] = {
    {"tiny", 288, 6, 6, 6, 768, 32000, 256, 8},
    {"small", 512, 8, 8, 8, 1376, 32000, 512, 4},
    {"gqa", 768, 12, 12, 4, 2048, 32000, 512, 2},
};

// The preset called `name`, or an error listing the known ones.
const ModelPreset& model_preset(const std::string& name);

}  // namespace zerotune
