#include "train/batching.h"

#include <algorithm>
#include <numeric>

#include "core/rng.h"

namespace zerotune {

std::vector<int64_t> epoch_order(int64_t n, bool shuffle, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (!shuffle) return order;
  Rng rng(seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(epoch) + 1);
  for (int64_t i = n - 1; i > 0; --i) {  // Fisher-Yates
    const int64_t j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(i + 1)));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

TokenBatch pack_examples(const std::vector<std::vector<int32_t>>& examples, int32_t pad_id,
                         int64_t ctx_len, const std::vector<std::vector<int32_t>>* labels) {
  ZT_CHECK(!examples.empty(), "pack_examples: empty micro-batch");
  // Next-fit: a new row starts when the next example does not fit in the current one.
  std::vector<std::vector<size_t>> rows(1);
  int64_t used = 0;
  for (size_t e = 0; e < examples.size(); ++e) {
    const int64_t len = static_cast<int64_t>(examples[e].size());
    ZT_CHECK(len > 0 && len <= ctx_len, "pack_examples: example of ", len,
             " tokens does not fit ctx-len ", ctx_len);
    if (used + len > ctx_len) {
      rows.emplace_back();
      used = 0;
    }
    rows.back().push_back(e);
    used += len;
  }
  TokenBatch b;
  b.batch = static_cast<int64_t>(rows.size());
  b.seq_len = ctx_len;
  const int64_t n = b.batch * ctx_len;
  b.ids = Buffer(DType::i32, Shape{n});
  b.targets = Buffer(DType::i32, Shape{n});
  b.positions = Buffer(DType::i32, Shape{n});
  b.segments = Buffer(DType::i32, Shape{n});
  int32_t* ids = b.ids.view().ptr<int32_t>();
  int32_t* targets = b.targets.view().ptr<int32_t>();
  int32_t* positions = b.positions.view().ptr<int32_t>();
  int32_t* segments = b.segments.view().ptr<int32_t>();
  for (size_t r = 0; r < rows.size(); ++r) {
    int64_t t = 0;
    int32_t segment = 0;
    for (size_t e : rows[r]) {
      const std::vector<int32_t>& ex = examples[e];
      const std::vector<int32_t>& lab = labels && !(*labels)[e].empty() ? (*labels)[e] : ex;
      for (size_t i = 0; i < ex.size(); ++i, ++t) {
        const int64_t k = static_cast<int64_t>(r) * ctx_len + t;
        ids[k] = ex[i];
        targets[k] = i + 1 < ex.size() ? lab[i + 1] : kIgnoreIndex;
        positions[k] = static_cast<int32_t>(i);
        segments[k] = segment;
      }
      ++segment;
    }
    for (int32_t p = 0; t < ctx_len; ++t, ++p) {
      const int64_t k = static_cast<int64_t>(r) * ctx_len + t;
      ids[k] = pad_id;
      targets[k] = kIgnoreIndex;
      positions[k] = p;
      segments[k] = segment;
    }
  }
  return b;
}

TokenBatch make_micro_batch(const std::vector<std::vector<int32_t>>& examples, int32_t pad_id,
                            int64_t ctx_len, Layout layout, PadMode pad_mode,
                            const std::vector<std::vector<int32_t>>* labels) {
  if (layout == Layout::packed) return pack_examples(examples, pad_id, ctx_len, labels);
  if (!labels) return collate(examples, pad_id, ctx_len, pad_mode);
  PaddedRows rows = pad_examples(examples, pad_id, ctx_len, pad_mode);
  for (size_t e = 0; e < examples.size(); ++e) {
    const std::vector<int32_t>& lab = (*labels)[e];
    ZT_CHECK(lab.empty() || lab.size() == examples[e].size(), "make_micro_batch: example ", e,
             " has ", examples[e].size(), " ids but ", lab.size(), " labels");
    std::copy(lab.begin(), lab.end(), rows.labels[e].begin());  // the padding keeps its ignore
  }
  return TokenBatch::from_rows(rows.input_ids, rows.labels);
}

std::vector<TokenBatch> RankBatching::micro_batches(const Examples& data,
                                                    const std::vector<int64_t>& order,
                                                    int64_t first, int64_t n, int64_t per_batch,
                                                    int64_t max_batches) const {
  const int64_t per_rank = (n + world - 1) / world;
  const int64_t begin = first + std::min(n, per_rank * rank);
  const int64_t end = first + std::min(n, per_rank * (rank + 1));
  int64_t count = (per_rank + per_batch - 1) / per_batch;
  if (max_batches > 0) count = std::min(count, max_batches);
  std::vector<TokenBatch> out;
  for (int64_t b = 0; b < count; ++b) {
    const int64_t lo = begin + b * per_batch, hi = std::min(end, lo + per_batch);
    if (lo >= hi) {
      out.push_back(TokenBatch::from_rows({{pad_id, pad_id}}, {{kIgnoreIndex, kIgnoreIndex}}));
      continue;
    }
    std::vector<std::vector<int32_t>> examples, labels;
    for (int64_t i = lo; i < hi; ++i) {
      const size_t row = static_cast<size_t>(order[static_cast<size_t>(i)]);
      examples.push_back(data.rows[row]);
      if (!data.labels.empty()) labels.push_back(data.labels[row]);
    }
    out.push_back(make_micro_batch(examples, pad_id, ctx_len, layout, pad_mode,
                                   data.labels.empty() ? nullptr : &labels));
  }
  return out;
}

}  // namespace zerotune
