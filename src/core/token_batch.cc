#include "core/token_batch.h"

#include "core/check.h"

namespace zerotune {

TokenBatch TokenBatch::from_rows(const std::vector<std::vector<int32_t>>& input_ids,
                                 const std::vector<std::vector<int32_t>>& labels) {
  ZT_CHECK(!input_ids.empty(), "TokenBatch: empty batch");
  ZT_CHECK(input_ids.size() == labels.size(), "TokenBatch: ", input_ids.size(),
           " rows of input_ids but ", labels.size(), " rows of labels");
  TokenBatch b;
  b.batch = static_cast<int64_t>(input_ids.size());
  b.seq_len = static_cast<int64_t>(input_ids[0].size());
  ZT_CHECK(b.seq_len > 0, "TokenBatch: row 0 is empty");
  const int64_t n = b.batch * b.seq_len;
  b.ids = Buffer(DType::i32, Shape{n});
  b.targets = Buffer(DType::i32, Shape{n});
  b.positions = Buffer(DType::i32, Shape{n});
  int32_t* ids = b.ids.view().ptr<int32_t>();
  int32_t* targets = b.targets.view().ptr<int32_t>();
  int32_t* positions = b.positions.view().ptr<int32_t>();
  for (int64_t r = 0; r < b.batch; ++r) {
    const auto& row = input_ids[static_cast<size_t>(r)];
    const auto& lab = labels[static_cast<size_t>(r)];
    ZT_CHECK(static_cast<int64_t>(row.size()) == b.seq_len && lab.size() == row.size(),
             "TokenBatch: row ", r, " has ", row.size(), " input_ids and ", lab.size(),
             " labels, expected ", b.seq_len, " of each");
    for (int64_t t = 0; t < b.seq_len; ++t) {
      const int64_t i = r * b.seq_len + t;
      ids[i] = row[static_cast<size_t>(t)];
      targets[i] = t + 1 < b.seq_len ? lab[static_cast<size_t>(t + 1)] : kIgnoreIndex;
      positions[i] = static_cast<int32_t>(t);
    }
  }
  return b;
}

int64_t TokenBatch::count_targets() const {
  const int32_t* t = targets.view().ptr<const int32_t>();
  int64_t count = 0;
  for (int64_t i = 0; i < targets.numel(); ++i) count += t[i] != kIgnoreIndex;
  return count;
}

}  // namespace zerotune
