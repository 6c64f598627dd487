// Built-in model shapes shared by `bench` and `init`, and the flags that pick and adjust them.
#pragma once

#include <cstdint>
#include <string>

#include "cli/args.h"
#include "model/config.h"

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

// Declares --preset (default tiny) and the shape flags that override it.
void add_shape_flags(Args& args);
// The preset's shape with the given flags applied (head_dim = dim / heads); `cmd` names the
// command in errors. Other LlamaConfig fields keep their defaults.
LlamaConfig shape_config(const Args& args, const char* cmd);

}  // namespace zerotune
