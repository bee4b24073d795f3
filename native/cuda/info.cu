// Facts about the device compilation that only nvcc knows.
#include <string>

#include "dfl_cuda.h"

namespace dfl::cuda {

std::string nvcc_version() {
    return std::to_string(__CUDACC_VER_MAJOR__) + "." + std::to_string(__CUDACC_VER_MINOR__) + "." +
           std::to_string(__CUDACC_VER_BUILD__);
}

}  // namespace dfl::cuda
