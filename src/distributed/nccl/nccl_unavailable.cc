// NCCL needs the CUDA build.
#include <cstdlib>

#include "core/check.h"
#include "distributed/communicator.h"

namespace zerotune {

bool launched_by_env() {
  return std::getenv("RANK") && std::getenv("WORLD_SIZE");
}

std::unique_ptr<Communicator> make_nccl_communicator(const CommOptions&, int, Communicator*) {
  fail("nccl: GPU collectives need the CUDA build (scripts/build.sh --cuda)");
}

}  // namespace zerotune
