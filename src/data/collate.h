// Collation: tokenised examples (each already "<s> ... </s>" and truncated to ctx_len by the
// tokenizer) to one right-padded micro-batch with HF-style labels.
#pragma once

#include <cstdint>
#include <vector>

#include "core/token_batch.h"

namespace zerotune {

// to_ctx_len: every batch is [B, ctx_len], the shape the job it replaces uses (padding
// "max_length"), so that activation memory is the same for every step. to_longest: [B, longest
// row], less compute for short examples.
enum class PadMode { to_ctx_len, to_longest };

struct PaddedRows {
  std::vector<std::vector<int32_t>> input_ids;  // [B][T]
  std::vector<std::vector<int32_t>> labels;     // [B][T], unshifted; kIgnoreIndex on padding
};

// Right-pads each example with pad_id to the batch length. Labels are the ids on each example's
// own positions and kIgnoreIndex after its length: they come from lengths, never from comparing
// ids with pad_id, because Llama pads with </s> and the example's real </s> must keep its label.
PaddedRows pad_examples(const std::vector<std::vector<int32_t>>& examples, int32_t pad_id,
                        int64_t ctx_len, PadMode mode = PadMode::to_ctx_len);

// pad_examples, then TokenBatch::from_rows (which shifts labels by one, as HF causal LM does).
TokenBatch collate(const std::vector<std::vector<int32_t>>& examples, int32_t pad_id,
                   int64_t ctx_len, PadMode mode = PadMode::to_ctx_len);

}  // namespace zerotune
