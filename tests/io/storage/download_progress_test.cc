// The download's progress line: bytes held (a resumed download's earlier ones too), the share of
// a known total, the rate of this run's bytes and the time left at that rate. Expected lines are
// worked out by hand from the numbers below.
#include <gtest/gtest.h>

#include "io/storage/download.h"

namespace zerotune::storage {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;
constexpr int64_t kGiB = int64_t{1} << 30;

TEST(DownloadProgress, KnownTotalShowsShareRateAndTimeLeft) {
  // 1.25 GiB of 10 GiB held; 500 MiB fetched in 10 s = 50 MiB/s; 8960 MiB left = 179.2 s.
  EXPECT_EQ(
      format_download_progress("model.safetensors", kGiB + kGiB / 4, 10 * kGiB, 500 * kMiB, 10.0),
      "model.safetensors: 1.25 GiB of 10.00 GiB (12%), 50.00 MiB/s, ETA 2m59s");
  // Resumed at 9 GiB: the rate counts only this run's 100 MiB in 4 s; 1 GiB left at 25 MiB/s.
  EXPECT_EQ(format_download_progress("m", 9 * kGiB, 10 * kGiB, 100 * kMiB, 4.0),
            "m: 9.00 GiB of 10.00 GiB (90%), 25.00 MiB/s, ETA 0m41s");
  // 102400 s left at 1 MiB/s: hours and minutes.
  EXPECT_EQ(format_download_progress("m", 0, 100 * kGiB, kMiB, 1.0),
            "m: 0 B of 100.00 GiB (0%), 1.00 MiB/s, ETA 28h26m");
}

TEST(DownloadProgress, UnknownTotalShowsBytesAndRateOnly) {
  EXPECT_EQ(format_download_progress("tokenizer.model", 2048, -1, 2048, 2.0),
            "tokenizer.model: 2.00 KiB, 1.00 KiB/s");
  EXPECT_EQ(format_download_progress("x", 100, 100, 100, 2.0), "x: 100 B of 100 B (100%), 50 B/s");
  EXPECT_EQ(format_download_progress("x", 0, 100, 0, 0.0), "x: 0 B of 100 B (0%), 0 B/s");
}

}  // namespace
}  // namespace zerotune::storage
