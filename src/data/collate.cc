#include "data/collate.h"

#include <algorithm>

#include "core/check.h"

namespace zerotune {

PaddedRows pad_examples(const std::vector<std::vector<int32_t>>& examples, int32_t pad_id,
                        int64_t ctx_len, PadMode mode) {
  ZT_CHECK(!examples.empty(), "collate: empty batch");
  ZT_CHECK(ctx_len > 0, "collate: ctx_len must be positive, got ", ctx_len);
  ZT_CHECK(pad_id >= 0, "collate: pad id must be a token id (>= 0), got ", pad_id);
  int64_t longest = 0;
  for (size_t r = 0; r < examples.size(); ++r) {
    const int64_t length = static_cast<int64_t>(examples[r].size());
    ZT_CHECK(length > 0, "collate: example ", r, " is empty");
    ZT_CHECK(length <= ctx_len, "collate: example ", r, " has ", length, " tokens but ctx_len is ",
             ctx_len, "; the tokenizer should have truncated it");
    for (size_t t = 0; t < examples[r].size(); ++t) {
      ZT_CHECK(examples[r][t] >= 0, "collate: example ", r, " has id ", examples[r][t],
               " at position ", t, "; token ids are non-negative");
    }
    longest = std::max(longest, length);
  }
  const size_t batch_len = static_cast<size_t>(mode == PadMode::to_ctx_len ? ctx_len : longest);
  PaddedRows out;
  out.input_ids.reserve(examples.size());
  out.labels.reserve(examples.size());
  for (const std::vector<int32_t>& example : examples) {
    std::vector<int32_t> ids(example);
    ids.resize(batch_len, pad_id);
    std::vector<int32_t> labels(example);
    labels.resize(batch_len, kIgnoreIndex);
    out.input_ids.push_back(std::move(ids));
    out.labels.push_back(std::move(labels));
  }
  return out;
}

TokenBatch collate(const std::vector<std::vector<int32_t>>& examples, int32_t pad_id,
                   int64_t ctx_len, PadMode mode) {
  const PaddedRows rows = pad_examples(examples, pad_id, ctx_len, mode);
  return TokenBatch::from_rows(rows.input_ids, rows.labels);
}

}  // namespace zerotune
