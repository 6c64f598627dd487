#include "train/keep_best.h"

#include <gtest/gtest.h>

#include <cmath>

namespace zerotune {
namespace {

std::vector<int64_t> epochs_of(const KeepBest& k) {
  std::vector<int64_t> out;
  for (const SavedCheckpoint& c : k.kept()) out.push_back(c.epoch);
  return out;
}

TEST(KeepBest, KeepsTheLowestPerplexitiesAndNamesWhatToRemove) {
  KeepBest keep(2, MetricOrder::lower_is_better);
  EXPECT_TRUE(keep.add({5.0, 0}).empty());
  EXPECT_TRUE(keep.add({3.0, 1}).empty());
  EXPECT_EQ(keep.add({4.0, 2}), std::vector<int64_t>{0});
  EXPECT_EQ(keep.add({9.0, 3}), std::vector<int64_t>{3});  // worse than both: removed at once
  EXPECT_EQ(epochs_of(keep), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(keep.best().epoch, 1);
}

TEST(KeepBest, TiesKeepTheEarlierEpochAndInfinityRanksLast) {
  KeepBest keep(1, MetricOrder::lower_is_better);
  EXPECT_TRUE(keep.add({INFINITY, 0}).empty());
  EXPECT_EQ(keep.add({2.0, 1}), std::vector<int64_t>{0});
  EXPECT_EQ(keep.add({2.0, 2}), std::vector<int64_t>{2});
  EXPECT_EQ(keep.best().epoch, 1);
}

TEST(KeepBest, HigherIsBetterForAccuracyAndZeroKeepsAll) {
  KeepBest accuracy(2, MetricOrder::higher_is_better);
  accuracy.add({0.2, 0});
  accuracy.add({0.5, 1});
  EXPECT_EQ(accuracy.add({0.3, 2}), std::vector<int64_t>{0});
  EXPECT_EQ(epochs_of(accuracy), (std::vector<int64_t>{1, 2}));

  KeepBest all(0, MetricOrder::lower_is_better);
  for (int64_t e = 0; e < 5; ++e) EXPECT_TRUE(all.add({static_cast<double>(5 - e), e}).empty());
  EXPECT_EQ(epochs_of(all), (std::vector<int64_t>{4, 3, 2, 1, 0}));
}

TEST(KeepBest, RestoredStateRanksNewCheckpointsAsBefore) {
  KeepBest keep(2, MetricOrder::lower_is_better);
  keep.restore({{1.5, 3}, {2.5, 1}});
  EXPECT_EQ(keep.add({2.0, 4}), std::vector<int64_t>{1});
  EXPECT_EQ(epochs_of(keep), (std::vector<int64_t>{3, 4}));
}

}  // namespace
}  // namespace zerotune
