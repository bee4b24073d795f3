// In-place composite of a straight RGB face over a premultiplied float32/float16 plate: one thread per pixel of the
// box clipped to the plate (composite_pixel in pixel_ops.cuh).
#include "common.cuh"

namespace dfl::cuda {
namespace {

template <typename T>
__global__ void composite_kernel(T* __restrict__ plate, int plate_w, int plate_channels, const float* __restrict__ face,
                                 int face_channels, const float* __restrict__ mask, int width, int origin_x,
                                 int origin_y, ClippedBox part, int alpha_channel) {
    const int j = part.j0 + static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
    const int i = part.i0 + static_cast<int>(blockIdx.y * blockDim.y + threadIdx.y);
    if (j >= part.j1 || i >= part.i1) return;
    const size_t at = static_cast<size_t>(i) * width + j;
    composite_pixel(plate + (static_cast<size_t>(origin_y + i) * plate_w + (origin_x + j)) * plate_channels,
                    face + at * face_channels, mask[at], alpha_channel);
}

}  // namespace

cudaError_t launch_composite(void* plate, Dtype plate_dtype, int plate_h, int plate_w, int plate_channels,
                             const float* face, int face_channels, const float* mask, int height, int width,
                             int origin_x, int origin_y, int alpha_channel, cudaStream_t stream) {
    if (plate_channels < 3 || face_channels < 3 || alpha_channel >= plate_channels) return cudaErrorInvalidValue;
    const ClippedBox part = clip_box(plate_h, plate_w, height, width, origin_x, origin_y);
    if (part.empty()) return cudaSuccess;
    const dim3 grid = grid_2d(part.j1 - part.j0, part.i1 - part.i0);
    if (plate_dtype == Dtype::kFloat16) {
        composite_kernel<<<grid, block_2d(), 0, stream>>>(static_cast<__half*>(plate), plate_w, plate_channels, face,
                                                          face_channels, mask, width, origin_x, origin_y, part,
                                                          alpha_channel);
    } else {
        composite_kernel<<<grid, block_2d(), 0, stream>>>(static_cast<float*>(plate), plate_w, plate_channels, face,
                                                          face_channels, mask, width, origin_x, origin_y, part,
                                                          alpha_channel);
    }
    return launch_status();
}

}  // namespace dfl::cuda
