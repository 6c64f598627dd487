// How this process was started and how it reaches the job's other ranks. Every environment
// variable a launcher sets is read here and nowhere else: MPI (Open MPI, MPICH/Hydra, MVAPICH,
// Slurm's srun with PMI/PMIx) and torchrun-style launchers (torchrun, Ray, Kubernetes: RANK,
// WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/device.h"
#include "distributed/communicator.h"

namespace zerotune {

enum class Launcher : uint8_t {
  single,  // started alone
  mpi,     // mpirun / srun: MPI carries host collectives and bootstraps NCCL
  env,     // RANK/WORLD_SIZE without MPI: GPU ranks bootstrap NCCL over TCP
};

struct LaunchEnvironment {
  Launcher launcher = Launcher::single;
  // Launcher::env: this rank and the job's size from RANK and WORLD_SIZE, and rank 0's address.
  int env_rank = 0, env_world = 1;
  std::string master_addr, master_port;
  // This process's index among the ranks of its machine (one GPU per rank), and the variable
  // that said so (empty: none did; 0 is assumed).
  int local_rank = 0;
  std::string local_rank_source;
  // Whether this process is the job's first rank, known before any communicator exists (for
  // warnings printed once).
  bool first_process = true;
};

// Reads the launcher's variables; errors name the variable and its value.
LaunchEnvironment read_launch_environment();

// The job's ranks, connected. `launcher` is MPI under an MPI launch, else a single rank; GPU
// ranks of a job with several ranks (or of any torchrun-style launch) talk over NCCL instead,
// bootstrapped over MPI or TCP.
struct RankGroup {
  std::unique_ptr<Communicator> launcher;
  std::unique_ptr<Communicator> nccl;  // null on CPU ranks
  Communicator& comm() const { return nccl ? *nccl : *launcher; }
  int rank() const { return comm().rank(); }
  int world() const { return comm().size(); }
  bool lead() const { return rank() == 0; }  // prints and writes the shared files
};

// Starts the launcher's communicator. A torchrun-style launch of CPU ranks is refused (it would
// need MPI); `compute` is where this rank computes.
RankGroup connect_ranks(const CommOptions& options, const LaunchEnvironment& launch,
                        const Device& compute);

// The GPU this rank uses among `visible` GPUs: its local rank, or the only one when the launcher
// gave each rank its own (CUDA_VISIBLE_DEVICES). More ranks than GPUs is refused.
int gpu_for_rank(const LaunchEnvironment& launch, int visible);

// `-nd N` outside an MPI launch: re-executes this process's command line under mpirun with N
// ranks on this machine, each with its share of the cores unless OMP_NUM_THREADS says otherwise.
[[noreturn]] void relaunch_with_mpirun(int64_t ranks, int argc, char** argv, const char* command);

}  // namespace zerotune
