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

TEST(CheckpointPublisher, DefaultLocalDirIsTheSameForEveryRank) {
  ::setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "secret-for-the-test", 1);
  ::setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1", 1);
  std::string first, second, other;
  {
    CheckpointPublisher a("s3://bucket/runs/1", "");
    CheckpointPublisher b("s3://bucket/runs/1", "");
    CheckpointPublisher c("s3://bucket/runs/2", "");
    first = a.local_dir();
    second = b.local_dir();
    other = c.local_dir();
    EXPECT_TRUE(a.remote());
    a.finish();  // nothing queued: no request is made
  }
  EXPECT_EQ(first, second);
  EXPECT_NE(first, other);
  EXPECT_NE(first.find("zerotune-output-"), std::string::npos);
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  ::unsetenv("AWS_ENDPOINT_URL");
}

TEST(CheckpointPublisher, BadS3DestinationIsRefusedUpFront) {
  EXPECT_THROW(CheckpointPublisher("s3://Not_A_Bucket/x", ""), Error);
}

}  // namespace
}  // namespace zerotune::storage
