// Entry point of dfl_vfx._native_cuda: each concept's binding file adds its functions to the module.
#include "bind_common.h"

PYBIND11_MODULE(_native_cuda, m) {
    m.doc() =
        "dfl_vfx CUDA kernels (docs/dev/merge-ops.md). Functions take raw device pointers, shapes and a CUDA stream "
        "handle as integers and only enqueue work; dfl_vfx.merge.cuda_ops wraps them for torch tensors.";
    dfl::cuda::bind_device(m);
    dfl::cuda::bind_warp(m);
    dfl::cuda::bind_mask(m);
    dfl::cuda::bind_composite(m);
    dfl::cuda::bind_paste(m);
    dfl::cuda::bind_host(m);
}
