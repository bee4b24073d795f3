// Affine warp with inverse mapping: one thread per output pixel, all channels (warp_pixel in pixel_ops.cuh).
// Serves the paste (aligned face + mask -> plate bbox) and the crop (plate -> aligned face); sources float or half.
#include "common.cuh"

namespace dfl::cuda {
namespace {

template <typename T, Interp I>
__global__ void warp_kernel(const T* __restrict__ src, int src_h, int src_w, int channels, Affine matrix, Box box,
                            float* __restrict__ dst) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    const int i = blockIdx.y * blockDim.y + threadIdx.y;
    if (j >= box.width() || i >= box.height()) return;
    warp_pixel<T, I>(src, src_h, src_w, channels, matrix, box.x0 + j, box.y0 + i,
                     dst + (static_cast<size_t>(i) * box.width() + j) * channels);
}

template <typename T>
void enqueue_warp(const T* src, int src_h, int src_w, int channels, const Affine& matrix, const Box& box,
                  Interp interp, float* dst, cudaStream_t stream) {
    const dim3 grid = grid_2d(box.width(), box.height());
    switch (interp) {
        case Interp::kBilinear:
            warp_kernel<T, Interp::kBilinear>
                <<<grid, block_2d(), 0, stream>>>(src, src_h, src_w, channels, matrix, box, dst);
            break;
        case Interp::kBicubic:
            warp_kernel<T, Interp::kBicubic>
                <<<grid, block_2d(), 0, stream>>>(src, src_h, src_w, channels, matrix, box, dst);
            break;
        case Interp::kLanczos:
            warp_kernel<T, Interp::kLanczos>
                <<<grid, block_2d(), 0, stream>>>(src, src_h, src_w, channels, matrix, box, dst);
            break;
    }
}

}  // namespace

cudaError_t launch_warp(const void* src, Dtype src_dtype, int src_h, int src_w, int channels, const Affine& matrix,
                        const Box& box, Interp interp, float* dst, cudaStream_t stream) {
    if (box.width() <= 0 || box.height() <= 0 || channels <= 0) return cudaSuccess;
    if (src_dtype == Dtype::kFloat16) {
        enqueue_warp(static_cast<const __half*>(src), src_h, src_w, channels, matrix, box, interp, dst, stream);
    } else {
        enqueue_warp(static_cast<const float*>(src), src_h, src_w, channels, matrix, box, interp, dst, stream);
    }
    return launch_status();
}

}  // namespace dfl::cuda
