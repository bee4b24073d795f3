// Launch helpers shared by the kernel files: launch geometry and the status of the launches just enqueued.
#pragma once
#include <cuda_runtime.h>

#include "pixel_ops.cuh"

namespace dfl::cuda {

constexpr int kBlockX = 32;
constexpr int kBlockY = 8;
constexpr unsigned int kThreads1d = 256;

inline dim3 grid_2d(int width, int height) {
    return dim3((width + kBlockX - 1) / kBlockX, (height + kBlockY - 1) / kBlockY);
}

inline dim3 block_2d() { return dim3(kBlockX, kBlockY); }

inline unsigned int blocks_1d(std::size_t count, unsigned int threads) {
    return static_cast<unsigned int>((count + threads - 1) / threads);
}

// The status of the launches just enqueued (configuration errors surface here, execution errors later).
inline cudaError_t launch_status() { return cudaGetLastError(); }

}  // namespace dfl::cuda
