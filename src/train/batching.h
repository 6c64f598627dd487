// From tokenised examples to micro-batches: the epoch's example order, the global batches of an
// optimizer step, and the micro-batch layout (padded rows, or packed rows).
#pragma once

#include <cstdint>
#include <vector>

#include "data/collate.h"
#include "model/llama.h"

namespace zerotune {

enum class Layout : uint8_t { padded, packed };

// The example order of an epoch: 0..n-1, or a permutation seeded by (seed, epoch) alone, so that
// a resumed run sees the same order.
std::vector<int64_t> epoch_order(int64_t n, bool shuffle, uint64_t seed, int64_t epoch);

// Examples concatenated into rows of ctx_len (next-fit, in order, no example split): positions
// restart at 0 per example, segment ids keep attention inside each example, the last token of
// each example predicts nothing, and row tails are padding (their own segment, no targets).
TokenBatch pack_examples(const std::vector<std::vector<int32_t>>& examples, int32_t pad_id,
                         int64_t ctx_len);

// One micro-batch in the requested layout.
TokenBatch make_micro_batch(const std::vector<std::vector<int32_t>>& examples, int32_t pad_id,
                            int64_t ctx_len, Layout layout, PadMode pad_mode);

}  // namespace zerotune
