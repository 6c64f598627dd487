#include "distributed/launch.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/check.h"

namespace zerotune {
namespace {

const char* env(const char* name) {
  return std::getenv(name);
}

// A whole number from an environment variable; errors name the variable.
int env_int(const char* name) {
  const char* text = env(name);
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  ZT_CHECK(end != text && *end == '\0' && value >= 0 && value < (1L << 24), "launch: ", name, "=",
           text, " is not a rank number");
  return static_cast<int>(value);
}

bool started_by_mpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"}) {
    if (env(var)) return true;
  }
  return false;
}

// The rank within the whole job as the MPI launchers export it before MPI starts.
bool first_mpi_process() {
  for (const char* var : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"}) {
    if (env(var)) return env_int(var) == 0;
  }
  return true;
}

}  // namespace

LaunchEnvironment read_launch_environment() {
  LaunchEnvironment launch;
  const bool env_ranks = env("RANK") && env("WORLD_SIZE");
  if (started_by_mpi()) {
    launch.launcher = Launcher::mpi;
    launch.first_process = first_mpi_process();
  } else if (env_ranks) {
    launch.launcher = Launcher::env;
    launch.env_rank = env_int("RANK");
    launch.env_world = env_int("WORLD_SIZE");
    ZT_CHECK(launch.env_world >= 1 && launch.env_rank < launch.env_world,
             "launch: RANK=", launch.env_rank, " is not below WORLD_SIZE=", launch.env_world);
    if (const char* addr = env("MASTER_ADDR")) launch.master_addr = addr;
    if (const char* port = env("MASTER_PORT")) launch.master_port = port;
    launch.first_process = launch.env_rank == 0;
  }
  // torchrun, Open MPI, Slurm, MPICH/Hydra, MVAPICH.
  for (const char* var : {"LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID",
                          "MPI_LOCALRANKID", "PMI_LOCAL_RANK", "MV2_COMM_WORLD_LOCAL_RANK"}) {
    if (env(var)) {
      launch.local_rank = env_int(var);
      launch.local_rank_source = var;
      break;
    }
  }
  return launch;
}

RankGroup connect_ranks(const CommOptions& options, const LaunchEnvironment& launch,
                        const Device& compute) {
  RankGroup ranks;
  ranks.launcher = launch.launcher == Launcher::mpi ? make_mpi_communicator(options)
                                                    : make_single_communicator();
  const bool several = ranks.launcher->size() > 1 || launch.launcher == Launcher::env;
  if (compute.is_cpu()) {
    ZT_CHECK(launch.launcher != Launcher::env || launch.env_world <= 1,
             "launch: RANK/WORLD_SIZE "
             "describe ",
             launch.env_world,
             " ranks: such a launch runs over NCCL and needs GPUs "
             "(--device cuda on build-cuda/zerotune); start CPU ranks with mpirun or -nd");
    return ranks;
  }
  // GPU ranks talk over NCCL, also a torchrun-style launch of one rank (which checks the setup).
  if (several) {
    const TcpBootstrap tcp{launch.env_rank, launch.env_world, launch.master_addr,
                           launch.master_port};
    ranks.nccl = make_nccl_communicator(
        options, compute.index, launch.launcher == Launcher::mpi ? ranks.launcher.get() : nullptr,
        tcp);
  }
  return ranks;
}

int gpu_for_rank(const LaunchEnvironment& launch, int visible) {
  ZT_CHECK(visible == 1 || launch.local_rank < visible, "launch: this rank is number ",
           launch.local_rank, " on its machine (", launch.local_rank_source, ") but only ", visible,
           " GPUs are visible: start at most one rank per GPU");
  return visible == 1 ? 0 : launch.local_rank;
}

void relaunch_with_mpirun(int64_t ranks, int argc, char** argv, const char* command) {
  const long cores = std::max(1L, sysconf(_SC_NPROCESSORS_ONLN));
  std::vector<std::string> words = {"mpirun", "-np", std::to_string(ranks), "--bind-to", "none"};
  if (ranks > cores) words.push_back("--oversubscribe");
  if (geteuid() == 0) words.push_back("--allow-run-as-root");
  if (!env("OMP_NUM_THREADS")) {
    setenv("OMP_NUM_THREADS", std::to_string(std::max(1L, cores / ranks)).c_str(), 1);
  }
  for (const char* var : {"OMP_NUM_THREADS", "OMP_WAIT_POLICY", "ZEROTUNE_PROFILE"}) {
    if (env(var)) {
      words.push_back("-x");
      words.push_back(var);
    }
  }
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  ZT_CHECK(n > 0, command, ": cannot find its own executable to start ", ranks, " ranks");
  words.push_back(std::string(self, static_cast<size_t>(n)));
  for (int i = 1; i < argc; ++i) words.push_back(argv[i]);
  std::vector<char*> exec_argv;
  for (std::string& w : words) exec_argv.push_back(w.data());
  exec_argv.push_back(nullptr);
  std::fprintf(stderr, "%s: starting %lld ranks with mpirun\n", command,
               static_cast<long long>(ranks));
  std::fflush(stderr);
  execvp("mpirun", exec_argv.data());
  fail(str(command, ": -nd ", ranks,
           " needs mpirun (Debian: openmpi-bin), which could not be "
           "started: ",
           std::strerror(errno)));
}

}  // namespace zerotune
