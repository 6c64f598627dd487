#include "train/keep_best.h"

#include <algorithm>
#include <cmath>

namespace zerotune {

bool KeepBest::better(const SavedCheckpoint& a, const SavedCheckpoint& b) const {
  const bool a_finite = std::isfinite(a.metric), b_finite = std::isfinite(b.metric);
  if (a_finite != b_finite) return a_finite;
  if (!a_finite) return false;
  return order_ == MetricOrder::lower_is_better ? a.metric < b.metric : a.metric > b.metric;
}

std::vector<int64_t> KeepBest::add(SavedCheckpoint checkpoint) {
  // After every equal or better one: ties keep the earlier epoch ahead.
  const auto at = std::upper_bound(
      kept_.begin(), kept_.end(), checkpoint,
      [this](const SavedCheckpoint& a, const SavedCheckpoint& b) { return better(a, b); });
  kept_.insert(at, checkpoint);
  std::vector<int64_t> dropped;
  while (keep_ > 0 && static_cast<int64_t>(kept_.size()) > keep_) {
    dropped.push_back(kept_.back().epoch);
    kept_.pop_back();
  }
  return dropped;
}

}  // namespace zerotune
