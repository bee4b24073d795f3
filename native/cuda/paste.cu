// The fused per-face paste on device buffers: pack face + mask, warp them into the plate bbox, clip, erode/dilate,
// blur, zero below 1/255, composite. All steps are enqueued on one stream; nothing returns to the host.
#include <algorithm>
#include <cmath>

#include "common.cuh"

namespace dfl::cuda {
namespace {

constexpr float kMaskFloor = 1.0f / 255.0f;

template <typename TF, typename TM>
__global__ void pack_face_mask_kernel(const TF* __restrict__ face, const TM* __restrict__ mask,
                                      float* __restrict__ packed, size_t count) {
    const size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= count) return;
    float* out = packed + i * 4;
    out[0] = load_float(face + i * 3);
    out[1] = load_float(face + i * 3 + 1);
    out[2] = load_float(face + i * 3 + 2);
    out[3] = load_float(mask + i);
}

template <typename TF, typename TM>
void enqueue_pack(const void* face, const void* mask, float* packed, size_t count, cudaStream_t stream) {
    pack_face_mask_kernel<<<blocks_1d(count, kThreads1d), kThreads1d, 0, stream>>>(
        static_cast<const TF*>(face), static_cast<const TM*>(mask), packed, count);
}

void enqueue_pack(const PasteFace& job, float* packed, cudaStream_t stream) {
    const size_t count = static_cast<size_t>(job.size) * job.size;
    const bool half_face = job.face_dtype == Dtype::kFloat16;
    const bool half_mask = job.mask_dtype == Dtype::kFloat16;
    if (half_face && half_mask) {
        enqueue_pack<__half, __half>(job.face, job.mask, packed, count, stream);
    } else if (half_face) {
        enqueue_pack<__half, float>(job.face, job.mask, packed, count, stream);
    } else if (half_mask) {
        enqueue_pack<float, __half>(job.face, job.mask, packed, count, stream);
    } else {
        enqueue_pack<float, float>(job.face, job.mask, packed, count, stream);
    }
}

struct PasteLayout {
    size_t packed, warped, plane, tail;
    size_t total() const { return packed + warped + 2 * plane + tail; }
};

PasteLayout paste_layout(int size, const Box& box, double erode_px, double blur_sigma) {
    const size_t plane = static_cast<size_t>(std::max(box.width(), 0)) * std::max(box.height(), 0);
    return PasteLayout{static_cast<size_t>(size) * size * 4, plane * 4, plane,
                       std::max(erode_dilate_workspace(box.height(), box.width(), erode_px),
                                gaussian_blur_workspace(box.height(), box.width(), blur_sigma))};
}

}  // namespace

std::size_t paste_face_workspace(int size, const Box& box, double erode_px, double blur_sigma) {
    return paste_layout(size, box, erode_px, blur_sigma).total();
}

cudaError_t launch_paste_face(void* plate, Dtype plate_dtype, int plate_h, int plate_w, int plate_channels,
                              const PasteFace& job, float* final_mask, float* workspace, cudaStream_t stream) {
    const Box& box = job.box;
    if (box.width() <= 0 || box.height() <= 0 || job.size <= 0) return cudaSuccess;
    const PasteLayout layout = paste_layout(job.size, box, job.erode_px, job.blur_sigma);
    float* packed = workspace;
    float* warped = packed + layout.packed;
    float* clipped = warped + layout.warped;
    float* shaped = clipped + layout.plane;
    float* tail = shaped + layout.plane;

    enqueue_pack(job, packed, stream);
    cudaError_t status = launch_status();
    if (status == cudaSuccess) {
        status = launch_warp(packed, Dtype::kFloat32, job.size, job.size, 4, job.plate_to_aligned, box, job.interp,
                             warped, stream);
    }
    if (status == cudaSuccess) status = launch_clip_channel(warped, 4, 3, clipped, layout.plane, stream);
    const bool shapes = std::fabs(job.erode_px) >= 1.0;
    if (status == cudaSuccess && shapes) {
        status = launch_erode_dilate(clipped, shaped, box.height(), box.width(), job.erode_px, tail, stream);
    }
    if (status == cudaSuccess) {
        status = launch_gaussian_blur(shapes ? shaped : clipped, final_mask, box.height(), box.width(),
                                      job.blur_sigma, kMaskFloor, tail, stream);
    }
    if (status == cudaSuccess) {
        status = launch_composite(plate, plate_dtype, plate_h, plate_w, plate_channels, warped, 4, final_mask,
                                  box.height(), box.width(), box.x0, box.y0, job.alpha_channel, stream);
    }
    return status;
}

}  // namespace dfl::cuda
