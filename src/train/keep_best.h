// Which epoch checkpoints stay on disk: the best N by a metric (perplexity today; an accuracy
// evaluation ranks by its own metric), ties keeping the earlier epoch.
#pragma once

#include <cstdint>
#include <vector>

namespace zerotune {

struct SavedCheckpoint {
  double metric = 0.0;  // what the checkpoints are ranked by
  int64_t epoch = 0;    // the folder epoch-<epoch>
};

enum class MetricOrder : uint8_t { lower_is_better, higher_is_better };

class KeepBest {
 public:
  // keep = 0 keeps every checkpoint.
  KeepBest(int64_t keep, MetricOrder order) : keep_(keep), order_(order) {}

  // Records a new checkpoint and returns the epochs whose checkpoints must now be removed.
  // A non-finite metric (perplexity +inf) ranks below every finite one.
  std::vector<int64_t> add(SavedCheckpoint checkpoint);
  // Restores what a saved run kept (best first, as kept() returned it).
  void restore(std::vector<SavedCheckpoint> kept) { kept_ = std::move(kept); }

  const std::vector<SavedCheckpoint>& kept() const { return kept_; }  // best first
  bool empty() const { return kept_.empty(); }
  const SavedCheckpoint& best() const { return kept_.front(); }

 private:
  bool better(const SavedCheckpoint& a, const SavedCheckpoint& b) const;

  int64_t keep_;
  MetricOrder order_;
  std::vector<SavedCheckpoint> kept_;
};

}  // namespace zerotune
