#include "distributed/launch.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "core/check.h"
#include "core/device.h"
#include "support/errors.h"

namespace zerotune {
namespace {

// Sets launcher variables for one test and restores a clean environment afterwards.
class LaunchVariables : public ::testing::Test {
 protected:
  void SetUp() override { clear(); }
  void TearDown() override { clear(); }
  static void clear() {
    for (const char* var : {"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK",
                            "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK"}) {
      unsetenv(var);
    }
  }
};

TEST_F(LaunchVariables, AloneWithoutLauncherVariables) {
  const LaunchEnvironment launch = read_launch_environment();
  EXPECT_EQ(launch.launcher, Launcher::single);
  EXPECT_TRUE(launch.first_process);
  EXPECT_EQ(launch.local_rank, 0);
  EXPECT_EQ(launch.local_rank_source, "");
}

TEST_F(LaunchVariables, TorchrunStyleVariablesDescribeTheRank) {
  setenv("RANK", "3", 1);
  setenv("WORLD_SIZE", "4", 1);
  setenv("MASTER_ADDR", "10.1.2.3", 1);
  setenv("MASTER_PORT", "29500", 1);
  setenv("LOCAL_RANK", "1", 1);
  const LaunchEnvironment launch = read_launch_environment();
  EXPECT_EQ(launch.launcher, Launcher::env);
  EXPECT_EQ(launch.env_rank, 3);
  EXPECT_EQ(launch.env_world, 4);
  EXPECT_EQ(launch.master_addr, "10.1.2.3");
  EXPECT_EQ(launch.master_port, "29500");
  EXPECT_EQ(launch.local_rank, 1);
  EXPECT_EQ(launch.local_rank_source, "LOCAL_RANK");
  EXPECT_FALSE(launch.first_process);
}

TEST_F(LaunchVariables, SlurmLocalIdNamesTheGpu) {
  setenv("SLURM_LOCALID", "2", 1);
  const LaunchEnvironment launch = read_launch_environment();
  EXPECT_EQ(launch.local_rank, 2);
  EXPECT_EQ(launch.local_rank_source, "SLURM_LOCALID");
  EXPECT_EQ(gpu_for_rank(launch, 4), 2);
  EXPECT_EQ(gpu_for_rank(launch, 1), 0);  // the launcher gave this rank its own GPU
  EXPECT_NE(error_of([&] { gpu_for_rank(launch, 2); }).find("only 2 GPUs are visible"),
            std::string::npos);
}

TEST_F(LaunchVariables, MalformedRanksAreNamed) {
  setenv("RANK", "4", 1);
  setenv("WORLD_SIZE", "4", 1);
  EXPECT_NE(error_of([] { read_launch_environment(); }).find("RANK=4 is not below WORLD_SIZE=4"),
            std::string::npos);
  setenv("RANK", "one", 1);
  EXPECT_NE(error_of([] { read_launch_environment(); }).find("RANK=one is not a rank number"),
            std::string::npos);
}

TEST_F(LaunchVariables, TorchrunStyleCpuRanksAreRefusedNamingMpirun) {
  setenv("RANK", "0", 1);
  setenv("WORLD_SIZE", "2", 1);
  const LaunchEnvironment launch = read_launch_environment();
  const std::string error = error_of([&] { connect_ranks(CommOptions{}, launch, Device::cpu()); });
  EXPECT_NE(error.find("start CPU ranks with mpirun or -nd"), std::string::npos) << error;
}

TEST_F(LaunchVariables, OneTorchrunStyleCpuRankRunsAlone) {
  setenv("RANK", "0", 1);
  setenv("WORLD_SIZE", "1", 1);
  const RankGroup ranks = connect_ranks(CommOptions{}, read_launch_environment(), Device::cpu());
  EXPECT_EQ(ranks.world(), 1);
  EXPECT_TRUE(ranks.lead());
  EXPECT_EQ(ranks.nccl, nullptr);
}

TEST(NcclCommunicator, CpuBuildsSayHowToGetIt) {
  if (cuda_backend_built()) GTEST_SKIP() << "the CUDA build has NCCL";
  const std::string error = [] {
    try {
      make_nccl_communicator(CommOptions{}, 0, nullptr, TcpBootstrap{});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  }();
  EXPECT_NE(error.find("scripts/build.sh --cuda"), std::string::npos) << error;
}

}  // namespace
}  // namespace zerotune
