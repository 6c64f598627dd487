#include "train/batching.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "train/lr_schedule.h"

namespace zerotune {
namespace {

TEST(EpochOrder, FileOrderOrASeededPermutationPerEpoch) {
  const std::vector<int64_t> plain = epoch_order(10, false, 42, 3);
  for (int64_t i = 0; i < 10; ++i) EXPECT_EQ(plain[size_t(i)], i);
  const std::vector<int64_t> a = epoch_order(1000, true, 42, 0);
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[size_t(i)], i);  // a permutation
  EXPECT_EQ(a, epoch_order(1000, true, 42, 0));                        // reproducible
  EXPECT_NE(a, epoch_order(1000, true, 42, 1));                        // new each epoch
  EXPECT_NE(a, epoch_order(1000, true, 43, 0));                        // and per seed
  EXPECT_NE(a, epoch_order(1000, false, 42, 0));                       // shuffled at all
}

TEST(PackExamples, NextFitRowsWithRestartedPositionsAndSegments) {
  const std::vector<std::vector<int32_t>> ex = {{1, 5, 6, 2}, {1, 7, 2}, {1, 8, 9, 10, 11, 2}};
  const TokenBatch b = pack_examples(ex, 2, 8);
  ASSERT_EQ(b.batch, 2);  // 4 + 3 fit in 8; the 6-token example starts a new row
  ASSERT_EQ(b.seq_len, 8);
  const int32_t* ids = b.ids.view().ptr<int32_t>();
  const int32_t* tg = b.targets.view().ptr<int32_t>();
  const int32_t* pos = b.positions.view().ptr<int32_t>();
  const int32_t* seg = b.segments.view().ptr<int32_t>();
  const std::vector<int32_t> want_ids = {1, 5, 6, 2, 1, 7, 2, 2, 1, 8, 9, 10, 11, 2, 2, 2};
  const std::vector<int32_t> want_tg = {5, 6, 2,  -100, 7, 2,    -100, -100,
                                        8, 9, 10, 11,   2, -100, -100, -100};
  const std::vector<int32_t> want_pos = {0, 1, 2, 3, 0, 1, 2, 0, 0, 1, 2, 3, 4, 5, 0, 1};
  const std::vector<int32_t> want_seg = {0, 0, 0, 0, 1, 1, 1, 2, 0, 0, 0, 0, 0, 0, 1, 1};
  for (size_t i = 0; i < 16; ++i) {
    EXPECT_EQ(ids[i], want_ids[i]) << i;
    EXPECT_EQ(tg[i], want_tg[i]) << i;
    EXPECT_EQ(pos[i], want_pos[i]) << i;
    EXPECT_EQ(seg[i], want_seg[i]) << i;
  }
  // Same counted tokens as the padded layout: the loss is over the same positions.
  EXPECT_EQ(b.count_targets(),
            make_micro_batch(ex, 2, 8, Layout::padded, PadMode::to_ctx_len).count_targets());
  EXPECT_THROW(pack_examples({{1, 2, 3, 4, 5, 6, 7, 8, 9}}, 2, 8), Error);
}

TEST(LinearWarmupDecay, MatchesTransformersSchedule) {
  EXPECT_EQ(linear_warmup_decay(0, 3, 10), 0.0);
  EXPECT_DOUBLE_EQ(linear_warmup_decay(2, 3, 10), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(linear_warmup_decay(3, 3, 10), 1.0);
  EXPECT_DOUBLE_EQ(linear_warmup_decay(9, 3, 10), 1.0 / 7.0);
  EXPECT_EQ(linear_warmup_decay(10, 3, 10), 0.0);
  EXPECT_DOUBLE_EQ(linear_warmup_decay(0, 0, 4), 1.0);
}

// Seven examples over three ranks, two per micro-batch: shares of 3, 3 and 1; every rank gets the
// same two micro-batches, the last rank's second one without counted targets; together the ranks
// cover the examples once, in order.
TEST(RankBatching, ContiguousSharesAndMatchedMicroBatchCounts) {
  Examples data;
  for (int32_t e = 0; e < 7; ++e) data.rows.push_back({1, 10 + e, 2});
  const std::vector<int64_t> order = epoch_order(7, false, 0, 0);
  std::vector<int32_t> seen;
  for (int rank = 0; rank < 3; ++rank) {
    const RankBatching batching{
        rank, 3, /*pad_id=*/2, /*ctx_len=*/4, Layout::padded, PadMode::to_ctx_len};
    const std::vector<TokenBatch> micro = batching.micro_batches(data, order, 0, 7, 2, 0);
    ASSERT_EQ(micro.size(), 2u) << "rank " << rank;
    for (const TokenBatch& b : micro) {
      for (int64_t r = 0; r < b.batch; ++r) {
        const int32_t id = b.ids.view().ptr<int32_t>()[r * b.seq_len + 1];
        if (b.count_targets() > 0) seen.push_back(id);
      }
    }
    if (rank == 2) {
      EXPECT_EQ(micro[1].count_targets(), 0);
    }
  }
  EXPECT_EQ(seen, (std::vector<int32_t>{10, 11, 12, 13, 14, 15, 16}));
  const RankBatching first{0, 3, 2, 4, Layout::padded, PadMode::to_ctx_len};
  EXPECT_EQ(first.micro_batches(data, order, 0, 7, 2, 1).size(), 1u);  // at most max_batches
}

}  // namespace
}  // namespace zerotune
