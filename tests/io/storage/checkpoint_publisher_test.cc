// The publisher for a local --output_dir is a pass-through; S3 behaviour is checked against
// servers by tests/storage/check_train_s3.py.
#include "io/storage/checkpoint_publisher.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/check.h"

namespace zerotune::storage {
namespace {

TEST(CheckpointPublisher, LocalOutputIsAPassThrough) {
  const std::string out = ::testing::TempDir() + "/zt_publisher_local";
  CheckpointPublisher p(out, "/ignored/for/local");
  EXPECT_FALSE(p.remote());
  EXPECT_EQ(p.local_dir(), out);
  p.publish_folder("epoch-1");  // nothing to do, even though the folder does not exist
  p.publish_file("metrics.jsonl");
  p.remove_folder("epoch-1");
  p.refuse_existing_run();
  p.finish();
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST(CheckpointPublisher, BadS3DestinationIsRefusedUpFront) {
  EXPECT_THROW(CheckpointPublisher("s3://Not_A_Bucket/x", ""), Error);
}

}  // namespace
}  // namespace zerotune::storage
