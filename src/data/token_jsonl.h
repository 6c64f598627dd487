// Reading pre-tokenised batches: one JSON object per line with "input_ids" and, optionally,
// "labels" (integer lists of equal length). Errors name the file and line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace zerotune {

struct TokenRows {
  std::vector<std::vector<int32_t>> input_ids;
  std::vector<std::vector<int32_t>> labels;  // labels = input_ids where a line has none
};

// Reads every non-empty line of `path`. Ids must lie in [0, vocab_size) when vocab_size > 0;
// labels may also be -100.
TokenRows read_token_jsonl(const std::string& path, int64_t vocab_size);

}  // namespace zerotune
