// From tokenised examples to micro-batches: the epoch's example order, the global batches of an
// optimizer step, and the micro-batch layout (padded rows, or packed rows).
#pragma once

#include <cstdint>
#include <vector>

#include "core/token_batch.h"
#include "data/collate.h"

namespace zerotune {

enum class Layout : uint8_t { padded, packed };

// The example order of an epoch: 0..n-1, or a permutation seeded by (seed, epoch) alone, so that
// a resumed run sees the same order.
std::vector<int64_t> epoch_order(int64_t n, bool shuffle, uint64_t seed, int64_t epoch);

// Examples concatenated into rows of ctx_len (next-fit, in order, no example split): positions
// restart at 0 per example, segment ids keep attention inside each example, the last token of
// each example predicts nothing, and row tails are padding (their own segment, no targets).
// `labels`, when given, holds each example's unshifted labels (empty: its ids).
TokenBatch pack_examples(const std::vector<std::vector<int32_t>>& examples, int32_t pad_id,
                         int64_t ctx_len,
                         const std::vector<std::vector<int32_t>>* labels = nullptr);

// One micro-batch in the requested layout (labels as for pack_examples).
TokenBatch make_micro_batch(const std::vector<std::vector<int32_t>>& examples, int32_t pad_id,
                            int64_t ctx_len, Layout layout, PadMode pad_mode,
                            const std::vector<std::vector<int32_t>>* labels = nullptr);

// The tokenised examples of one file: each "<s> ... </s>", truncated to ctx-len.
struct Examples {
  std::vector<std::vector<int32_t>> rows;
  // Chat rows' unshifted labels (kIgnoreIndex off the assistant turns), one per row once a file
  // has any; an empty entry, and no entries at all, mean "the row's ids" (loss on every token).
  std::vector<std::vector<int32_t>> labels;
  int64_t truncated = 0;  // how many were longer than ctx-len
};

// How this rank turns a range of examples into micro-batches.
struct RankBatching {
  int rank = 0, world = 1;
  int32_t pad_id = 0;
  int64_t ctx_len = 0;
  Layout layout = Layout::padded;
  PadMode pad_mode = PadMode::to_ctx_len;

  // This rank's micro-batches of up to `per_batch` examples taken from order[first, first + n):
  // its contiguous share, as even as possible. Every rank gets the same number of micro-batches
  // (the model's collectives must match): a rank whose share runs out gets micro-batches without
  // counted targets. At most max_batches (0: all).
  std::vector<TokenBatch> micro_batches(const Examples& data, const std::vector<int64_t>& order,
                                        int64_t first, int64_t n, int64_t per_batch,
                                        int64_t max_batches) const;
};

}  // namespace zerotune
