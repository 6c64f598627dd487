// Checks of CUDA runtime and cuBLASLt return codes: the error names the call and the library's
// own description.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include "core/check.h"

#define ZT_CUDA_CHECK(call)                                                             \
  do {                                                                                  \
    const cudaError_t zt_status_ = (call);                                              \
    if (zt_status_ != cudaSuccess) {                                                    \
      ::zerotune::fail(::zerotune::str(#call, ": ", cudaGetErrorName(zt_status_), " (", \
                                       cudaGetErrorString(zt_status_), ")"));           \
    }                                                                                   \
  } while (0)

#define ZT_CUBLAS_CHECK(call)                                                                   \
  do {                                                                                          \
    const cublasStatus_t zt_status_ = (call);                                                   \
    if (zt_status_ != CUBLAS_STATUS_SUCCESS) {                                                  \
      ::zerotune::fail(::zerotune::str(#call, ": cuBLAS status ", static_cast<int>(zt_status_), \
                                       " (", cublasGetStatusString(zt_status_), ")"));          \
    }                                                                                           \
  } while (0)

namespace zerotune::cuda {

// The stream every kernel of this backend is queued on (the legacy default stream for now; the
// communication stream of the NCCL communicator will be a second one).
inline cudaStream_t compute_stream() {
  return nullptr;
}

// Checks the launch that was just queued (configuration errors surface here, not later).
inline void check_launch(const char* kernel) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) {
    fail(str(kernel, ": launch failed: ", cudaGetErrorName(status), " (",
             cudaGetErrorString(status), ")"));
  }
}

}  // namespace zerotune::cuda
