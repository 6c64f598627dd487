// NCCL needs the CUDA build: this build's stand-in refuses, naming how to get it.
#include "core/check.h"
#include "distributed/communicator.h"

namespace zerotune {

std::unique_ptr<Communicator> make_nccl_communicator(const CommOptions&, int, Communicator*,
                                                     const TcpBootstrap&) {
  fail("nccl: GPU collectives need the CUDA build (scripts/build.sh --cuda)");
}

}  // namespace zerotune
